"""Visual DNA (Ramtoula et al., arXiv 2304.10036): a dataset as histograms of every neuron's activations.

For each neuron (channel) of the chosen layers of a frozen model, the histogram of its
activations over all positions of all images, in ``bins`` equal bins (the paper: 1000) over a
per-neuron range normalised to [-1, 1]. Two vDNAs are compared by the Earth Mover's distance per
neuron, which for 1-D histograms on the same bins is the summed absolute difference of their
cumulative distributions times the bin width, averaged over the neurons. The range of each
neuron is fixed once (from a source dataset's first images, with a margin; values outside fall
into the end bins) and stored with the vDNA, so a target's vDNA and each target image's own are
taken on the same bins and can be compared with the source's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prompt_kit.bounds import MAX_BINS, check_allocation
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes
from prompt_kit.readers import read_safetensors_metadata

DEFAULT_BINS = 1000
RANGE_MARGIN = 0.1  # the fixed range is the first images' min..max widened by this share on each side


@dataclass
class VisualDNA:
    """Per layer: neuron ranges ``[N, 2]`` and histograms ``[N, bins]`` (counts, float64)."""

    ranges: dict[str, torch.Tensor]
    histograms: dict[str, torch.Tensor]
    images: int = 0

    @property
    def layers(self) -> list[str]:
        return list(self.ranges)

    def normalized(self) -> dict[str, torch.Tensor]:
        """Each neuron's histogram as a distribution (sums to 1)."""
        return {name: h / h.sum(1, keepdim=True).clamp_min(1e-12) for name, h in self.histograms.items()}

    @property
    def bins(self) -> int:
        return next(iter(self.histograms.values())).shape[1]

    def to_bytes(self, metadata: dict[str, str] | None = None) -> bytes:
        """The vDNA as safetensors bytes: ``range.<layer>`` ``[N, 2]``, ``histogram.<layer>`` ``[N, bins]``."""
        from safetensors.torch import save as safetensors_save

        tensors = {f"range.{name}": value.float() for name, value in self.ranges.items()}
        tensors.update({f"histogram.{name}": value.double() for name, value in self.histograms.items()})
        meta = {"images": str(self.images), "layers": ",".join(self.layers), **(metadata or {})}
        return safetensors_save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta)

    def save(self, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
        return atomic_write_bytes(path, self.to_bytes(metadata))

    @classmethod
    def load(cls, path: str | Path) -> VisualDNA:
        """A vDNA file, checked: each layer's ranges ``[N, 2]`` finite and increasing, histograms ``[N, bins]``."""
        meta, tensors = read_safetensors_metadata(path, "vDNA")
        hint = "write one with distill vdna"
        layers = [name for name in meta.get("layers", "").split(",") if name]
        if not layers or any(f"range.{n}" not in tensors or f"histogram.{n}" not in tensors for n in layers):
            raise PromptKitError(f"{path} is not a vDNA file (no layers recorded): {hint}")
        bins = None
        for name in layers:
            ranges, counts = tensors[f"range.{name}"], tensors[f"histogram.{name}"]
            if ranges.ndim != 2 or ranges.shape[1] != 2 or counts.ndim != 2 or counts.shape[0] != ranges.shape[0]:
                raise PromptKitError(f"{path}: layer {name} has ranges {list(ranges.shape)} and histograms "
                                     f"{list(counts.shape)}, not [N, 2] and [N, bins]: {hint}")  # fmt: skip
            if not ranges.is_floating_point() or not counts.is_floating_point():
                raise PromptKitError(f"{path}: layer {name} does not hold floating-point ranges and counts: {hint}")
            if not torch.isfinite(ranges).all() or not (ranges[:, 1] > ranges[:, 0]).all():
                raise PromptKitError(f"{path}: layer {name} has a non-finite or empty neuron range: {hint}")
            if not torch.isfinite(counts).all() or (counts < 0).any():
                raise PromptKitError(f"{path}: layer {name} has negative or non-finite counts: {hint}")
            if bins is not None and counts.shape[1] != bins or not 2 <= counts.shape[1] <= MAX_BINS:
                expected = bins if bins is not None else f"in [2, {MAX_BINS}]"
                raise PromptKitError(f"{path}: layer {name} has {counts.shape[1]} bins, not {expected}: {hint}")
            bins = counts.shape[1]
        try:
            images = int(meta.get("images", 0))
        except ValueError:
            raise PromptKitError(f"{path}: its image count {meta['images']!r} is not a number: {hint}") from None
        return cls(
            {n: tensors[f"range.{n}"] for n in layers},
            {n: tensors[f"histogram.{n}"].double() for n in layers},
            images,
        )


def neuron_values(features: torch.Tensor) -> torch.Tensor:
    """``[B, N, h, w]`` activations -> ``[N, B*h*w]``: every position's value per neuron."""
    return features.detach().float().transpose(0, 1).reshape(features.shape[1], -1)


def ranges_from(features: torch.Tensor) -> torch.Tensor:
    """``[N, 2]`` per-neuron (low, high) from activations, widened by the margin (never empty)."""
    values = neuron_values(features)
    low, high = values.min(1).values, values.max(1).values
    # a floor on the span relative to the values, so a constant neuron (a ReLU6 stuck at 6) keeps an
    # increasing range in float32 too
    span = torch.maximum(high - low, 1e-5 * torch.maximum(low.abs(), high.abs()).clamp_min(1.0))
    return torch.stack([low - RANGE_MARGIN * span, high + RANGE_MARGIN * span], dim=1)


def histogram(features: torch.Tensor, ranges: torch.Tensor, bins: int) -> torch.Tensor:
    """``[N, bins]`` counts of each neuron's activations, in ``bins`` equal bins of its range mapped to [-1, 1]."""
    values = neuron_values(features)
    low, high = ranges[:, :1].to(values), ranges[:, 1:].to(values)
    normalised = (values - low) / (high - low) * 2 - 1  # [-1, 1] within the range
    index = ((normalised + 1) / 2 * bins).long().clamp_(0, bins - 1)
    offsets = torch.arange(values.shape[0], device=values.device)[:, None] * bins
    counts = torch.bincount((index + offsets).flatten(), minlength=values.shape[0] * bins)
    return counts.reshape(values.shape[0], bins).double().cpu()


def earth_movers_distance(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per neuron, the EMD between two ``[N, bins]`` distributions on [-1, 1]: ``sum |CDF_1 - CDF_2| * 2 / bins``."""
    bins = first.shape[-1]
    return (first.cumsum(-1) - second.cumsum(-1)).abs().sum(-1) * (2.0 / bins)


def vdna_distance(first: VisualDNA, second: VisualDNA) -> float:
    """The mean over every neuron of every shared layer of the per-neuron EMD (the bins must agree)."""
    if first.layers != second.layers:
        raise PromptKitError(f"the vDNAs have other layers ({first.layers} against {second.layers})")
    a, b = first.normalized(), second.normalized()
    distances = []
    for name in first.layers:
        if a[name].shape != b[name].shape or not torch.allclose(first.ranges[name], second.ranges[name]):
            raise PromptKitError(f"layer {name}: the vDNAs were not taken on the same bins (use --against SOURCE)")
        distances.append(earth_movers_distance(a[name], b[name]))
    return float(torch.cat(distances).mean())


@torch.no_grad()
def compute_vdna(
    features_of: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    batches: Iterable[torch.Tensor],
    layers: list[str],
    bins: int = DEFAULT_BINS,
    reference: VisualDNA | None = None,
    range_images: int = 32,
    per_image_against: VisualDNA | None = None,
) -> tuple[VisualDNA, list[float]]:
    """The vDNA of the images in ``batches``; with ``per_image_against``, each image's own distance to it.

    Args:
        features_of: images ``[B, 3, H, W]`` in [0, 1] -> the model's named feature maps.
        batches: image batches at the model's input size.
        layers: the feature maps to take.
        bins: histogram bins per neuron (the paper: 1000).
        reference: take its ranges (bins) instead of fixing new ones: needed to compare with it.
        range_images: without a reference, the ranges come from this many first images.
        per_image_against: also return each image's distance to this vDNA (same bins).
    """
    ranges = dict(reference.ranges) if reference is not None else None
    if per_image_against is not None:
        ranges = dict(per_image_against.ranges)
    if ranges is not None and sorted(ranges) != sorted(layers):
        raise PromptKitError(f"the reference vDNA has layers {sorted(ranges)}, not {sorted(layers)}")
    against = per_image_against.normalized() if per_image_against is not None else None
    pending: list[torch.Tensor] = []  # the first images, held until the ranges are fixed from them
    histograms: dict[str, torch.Tensor] = {}
    distances: list[float] = []
    count = 0

    def add(images: torch.Tensor) -> None:
        named = _pick(features_of(images), layers)
        if not histograms:  # the first batch: the neurons are known, the histograms not yet made
            for name in layers:
                if ranges[name].shape[0] != named[name].shape[1]:
                    raise PromptKitError(
                        f"layer {name}: the reference vDNA has {ranges[name].shape[0]} neurons, the model "
                        f"{named[name].shape[1]}: take both vDNAs with the same model"
                    )
            neurons = sum(named[name].shape[1] for name in layers)
            check_allocation(
                neurons * bins * 8 * 3, f"{neurons:,} neurons x {bins:,} bins", "give fewer --bins or --layers"
            )
        for name in layers:
            counts = histogram(named[name], ranges[name], bins)
            histograms[name] = histograms.get(name, 0) + counts
        if against is not None:
            for index in range(images.shape[0]):
                per_image = []
                for name in layers:
                    own = histogram(named[name][index : index + 1], ranges[name], bins)
                    own = own / own.sum(1, keepdim=True).clamp_min(1e-12)
                    per_image.append(earth_movers_distance(own, against[name]))
                distances.append(float(torch.cat(per_image).mean()))

    for images in batches:
        count += images.shape[0]
        if ranges is None:
            pending.append(images)
            if sum(batch.shape[0] for batch in pending) < range_images:
                continue
            ranges = _fix_ranges(features_of, pending, layers)
            for held in pending:
                add(held)
            pending = []
        else:
            add(images)
    if ranges is None:
        if not pending:
            raise PromptKitError("no images to take a vDNA of")
        ranges = _fix_ranges(features_of, pending, layers)
        for held in pending:
            add(held)
    return VisualDNA(ranges, histograms, count), distances


def _fix_ranges(features_of, batches: list[torch.Tensor], layers: list[str]) -> dict[str, torch.Tensor]:
    maps = [_pick(features_of(images), layers) for images in batches]
    return {name: ranges_from(torch.cat([m[name] for m in maps])).cpu() for name in layers}


def _pick(features: dict[str, torch.Tensor], layers: list[str]) -> dict[str, torch.Tensor]:
    missing = [name for name in layers if name not in features]
    if missing:
        raise PromptKitError(f"the model has no feature map {missing[0]!r}: it offers {', '.join(features)}")
    return features


def ranking_csv(names: list[str], distances: list[float]) -> str:
    """``rank,image,distance``, nearest first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "image", "distance"])
    for rank, index in enumerate(np.argsort(distances, kind="stable"), start=1):
        writer.writerow([rank, names[index], f"{distances[index]:.6f}"])
    return buffer.getvalue()


def dataset_vdna(
    model_path: str | Path,
    images: str,
    layers: list[str],
    split: str = "train",
    bins: int | None = None,
    against: str | Path | None = None,
    batch_size: int = 8,
) -> tuple[VisualDNA, list[str], list[float], float | None]:
    """``(vDNA, image names, each image's distance to ``against``, the dataset's distance to it)``.

    ``bins``: default 1000, or ``against``'s own (which a different number contradicts: an error).
    """
    from distill.training.core import make_accelerator
    from distill.unlabelled.prediction import image_source, load_finished_model

    reference = VisualDNA.load(against) if against is not None else None  # a damaged file fails before any work
    if reference is not None:
        if bins is not None and bins != reference.bins:
            raise PromptKitError(
                f"--bins {bins} differs from the {reference.bins} bins of {against}: leave --bins out to use its bins"
            )
        bins = reference.bins
    bins = DEFAULT_BINS if bins is None else bins
    if not 2 <= bins <= MAX_BINS:
        raise PromptKitError(f"--bins {bins} is out of range: give a whole number in [2, {MAX_BINS}]")
    model, size = load_finished_model(model_path)
    accelerator = make_accelerator("auto")
    model = model.to(accelerator.device).eval()
    source = image_source(images, split)

    def batches():
        for start in range(0, len(source.images), batch_size):
            arrays = [item.read() for item in source.images[start : start + batch_size]]
            tensors = [torch.from_numpy(a).permute(2, 0, 1).float().div(255)[None] for a in arrays]
            yield torch.cat([F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in tensors]).to(
                accelerator.device
            )

    def features_of(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return model(batch, return_features=True)[1]

    vdna, distances = compute_vdna(features_of, batches(), layers, bins, reference, per_image_against=reference)
    distance = vdna_distance(vdna, reference) if reference is not None else None
    return vdna, [item.name for item in source.images], distances, distance


__all__ = [
    "DEFAULT_BINS",
    "VisualDNA",
    "compute_vdna",
    "dataset_vdna",
    "earth_movers_distance",
    "histogram",
    "ranking_csv",
    "vdna_distance",
]
