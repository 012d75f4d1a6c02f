"""`distill pseudo-label`: a teacher's predictions, kept only where it is sure, as a dataset to train on.

Each pixel's class is the argmax of the (test-time-augmented) probabilities at the image's own
resolution; a pixel is kept when it passes every filter given, else it gets the ignore id:

- ``min_confidence``: the winning probability is at least this (DAFormer uses 0.968);
- ``max_entropy``: the entropy of the probabilities, in nats, is at most this (the
  incremental-learning work ignores pixels above 0.3);
- ``class_balanced``: CBST's per-class thresholds: for each class, the confidence at the top
  ``P`` share of the pixels predicted as that class over all images, so a rare class the teacher
  is less sure of keeps as large a share of its pixels as a frequent one.

``min_image_share`` then judges whole images: one whose kept pixels are under that share of its
pixels is left out of the dataset altogether (the teacher is unsure of most of it), and the record
lists it; its pixels count as predicted, not kept.

With ``priors`` (a master-labels CSV from the images' own labels to the model's classes, as the
label-space unification work has it) the probabilities are first restricted, pixel by pixel, to
the classes the pixel's source label allows; a void source label keeps nothing.

The output folder is a ``folder:`` dataset (``images/``, ``labels/``, ``classes.yaml``) that
``distill run --data folder:DIR`` trains on directly; as for any folder dataset without
``train/``/``val/``, every 5th image is its val split. ``pseudo_labels.json`` holds the filters,
the thresholds, the kept share per class and provenance. Files are written atomically and the
record last; a killed run is run again with the same command (it starts over: the thresholds of
``class_balanced`` depend on every image). A folder that holds anything else is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from distill.evaluation.test_time_augmentation import TestTimeAugmentation
from distill.unlabelled.prediction import (
    ImageSource,
    full_resolution,
    image_source,
    load_finished_model,
    png_bytes,
    predicted_probabilities,
    run_record,
    source_taxonomy,
    taxonomy_for,
)
from prompt_kit.bounds import check_number
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes, atomic_write_text

RECORD = "pseudo_labels.json"
IN_PROGRESS = ".pseudo-label-in-progress"  # a killed run leaves it: running again starts that folder over
BINS = 1000  # confidence histogram bins per class: thresholds are exact to 0.001


def confidence_and_entropy(probabilities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(classes, confidence, entropy in nats)``, each ``[H, W]``, of probabilities ``[C, H, W]``."""
    confidence, classes = probabilities.max(0)
    entropy = -(probabilities * probabilities.clamp_min(1e-12).log()).sum(0)
    return classes, confidence, entropy


def class_balanced_thresholds(histograms: np.ndarray, share: float) -> np.ndarray:
    """Per class, the confidence above which the top ``share`` of its predicted pixels lie.

    ``histograms[c, b]`` counts pixels predicted as ``c`` with confidence in bin ``b`` of
    ``BINS`` equal bins over [0, 1]; the threshold is the lower edge of the bin where the
    running count from the top reaches ``share`` of the class's pixels (a class never predicted
    gets threshold 1, which nothing below certainty passes).
    """
    thresholds = np.ones(histograms.shape[0])
    for index, histogram in enumerate(histograms):
        total = histogram.sum()
        if total == 0:
            continue
        from_top = np.cumsum(histogram[::-1])
        bins_needed = int(np.searchsorted(from_top, share * total, side="left")) + 1
        thresholds[index] = (histograms.shape[1] - bins_needed) / histograms.shape[1]
    return thresholds


def keep_mask(
    classes: torch.Tensor,
    confidence: torch.Tensor,
    entropy: torch.Tensor,
    min_confidence: float | None,
    max_entropy: float | None,
    thresholds: np.ndarray | None,
) -> torch.Tensor:
    """Bool ``[H, W]``: the pixels that pass every filter given."""
    keep = torch.ones_like(confidence, dtype=torch.bool)
    if min_confidence is not None:
        keep &= confidence >= min_confidence
    if max_entropy is not None:
        keep &= entropy <= max_entropy
    if thresholds is not None:
        keep &= confidence >= torch.as_tensor(thresholds, dtype=confidence.dtype)[classes]
    return keep


def check_filters(
    min_confidence: float | None,
    max_entropy: float | None,
    class_balanced: float | None,
    min_image_share: float | None = None,
) -> None:
    """Each threshold finite and in its range (NaN compares false with everything, so it would keep nothing)."""
    check_number(min_confidence, "--min-confidence", 0.0, 1.0, hint="a probability; DAFormer uses 0.968")
    check_number(max_entropy, "--max-entropy", 0.0, 100.0, hint="an entropy in nats, e.g. 0.3")
    check_number(class_balanced, "--class-balanced", 0.0, 1.0, low_open=True, hint="the share of each class kept")
    check_number(min_image_share, "--min-image-share", 0.0, 1.0, hint="the share of an image's pixels kept")


@torch.no_grad()
def pseudo_label(
    model_path: str | Path,
    images: str | ImageSource,
    out: str | Path,
    augmentation: TestTimeAugmentation | None = None,
    split: str = "train",
    min_confidence: float | None = None,
    max_entropy: float | None = None,
    class_balanced: float | None = None,
    priors: str | Path | None = None,
    prompts: str | Path | None = None,
    batch_size: int = 4,
    min_image_share: float | None = None,
) -> dict[str, Any]:
    """Write a ``folder:`` dataset of ``model_path``'s filtered predictions for ``images`` into ``out``.

    ``priors``: a master-labels CSV from the images' own (source) classes to the model's; each
    pixel's probabilities are restricted to the classes its source label allows (``images`` must
    be a dataset spec with labels). Returns ``pseudo_labels.json``'s content.
    """
    from distill.training.core import make_accelerator
    from distill.training.provenance import provenance

    check_filters(min_confidence, max_entropy, class_balanced, min_image_share)
    augmentation = augmentation or TestTimeAugmentation()
    model, size = load_finished_model(model_path, prompts)
    source = images if isinstance(images, ImageSource) else image_source(images, split)
    images = images if isinstance(images, str) else f"{len(source.images)} images"
    mapping = None
    if priors is not None:
        if source.dataset is None:
            raise PromptKitError("--priors needs --images to be a dataset spec with labels (camvid:PATH, ...)")
        from prompt_kit.label_space import read_label_map

        mapping = read_label_map(priors, source.dataset.taxonomy.class_names, model.class_names)
        taxonomy = taxonomy_for(model.class_names)
    else:
        taxonomy = source_taxonomy(source, model, images)
    out = Path(out)
    claim_folder(out)
    accelerator = make_accelerator("auto")
    model = model.to(accelerator.device).eval()
    classes_count = model.num_classes

    def with_priors(index: int, probs: torch.Tensor, array: np.ndarray) -> torch.Tensor:
        full = full_resolution(probs, array)
        if mapping is None:
            return full
        labels = source.dataset[index][1]
        return mapping.restrict(full[None], labels[None].to(full.device))[0]

    def probabilities():
        return tqdm(
            predicted_probabilities(model, source.images, size, augmentation, accelerator, batch_size),
            total=len(source.images),
            desc="pseudo-label",
            disable=not accelerator.is_local_main_process,
        )

    thresholds = None
    kept_probabilities: list[torch.Tensor] | None = None
    if class_balanced is not None:  # the thresholds need every image first; keep the model-size maps meanwhile
        histograms = np.zeros((classes_count, BINS), dtype=np.int64)
        kept_probabilities = []
        for index, (_, array, probs) in enumerate(probabilities()):
            classes, confidence, _ = confidence_and_entropy(with_priors(index, probs, array))
            bins = (confidence * BINS).long().clamp_(0, BINS - 1)
            flat = (classes * BINS + bins).flatten()
            histograms += torch.bincount(flat, minlength=classes_count * BINS).reshape(classes_count, BINS).numpy()
            kept_probabilities.append(probs.half())
        thresholds = class_balanced_thresholds(histograms, class_balanced)

    predicted = np.zeros(classes_count, dtype=np.int64)
    kept = np.zeros(classes_count, dtype=np.int64)
    dropped: list[str] = []
    for folder in ("images", "labels"):  # present even when every image is dropped
        (out / folder).mkdir(exist_ok=True)
    stream = (
        ((item, item.read(), probs.float()) for item, probs in zip(source.images, kept_probabilities, strict=True))
        if kept_probabilities is not None
        else probabilities()
    )
    for index, (item, array, probs) in enumerate(stream):
        restricted = with_priors(index, probs, array)
        classes, confidence, entropy = confidence_and_entropy(restricted)
        keep = keep_mask(classes, confidence, entropy, min_confidence, max_entropy, thresholds)
        if mapping is not None:
            keep &= restricted.sum(0) > 0  # a void source label allows no class
        predicted += torch.bincount(classes.flatten(), minlength=classes_count).numpy()
        if min_image_share is not None and keep.float().mean().item() < min_image_share:
            dropped.append(item.name)
            continue
        kept += torch.bincount(classes[keep], minlength=classes_count).numpy()
        label = torch.where(keep, classes, torch.full_like(classes, taxonomy.ignore_index))
        atomic_write_bytes(
            out / "labels" / f"{item.name}.png", png_bytes(label.numpy().astype(np.uint8)), durable=False
        )
        _write_image(item, array, out / "images")
    atomic_write_text(out / "classes.yaml", yaml.safe_dump(taxonomy.model_dump(mode="json"), sort_keys=False))
    per_class = {
        name: {
            "predicted_pixels": int(predicted[index]),
            "kept_pixels": int(kept[index]),
            "kept_share": round(float(kept[index] / predicted[index]), 4) if predicted[index] else None,
            **({"threshold": round(float(thresholds[index]), 4)} if thresholds is not None else {}),
        }
        for index, name in enumerate(model.class_names)
    }
    record = {
        **run_record(model_path, model, images, split, source, augmentation),
        "min_confidence": min_confidence,
        "max_entropy": max_entropy,
        "class_balanced": class_balanced,
        "priors": None if priors is None else str(priors),
        "min_image_share": min_image_share,
        "images_written": len(source.images) - len(dropped),
        "images_dropped": dropped,
        "kept_share": round(float(kept.sum() / max(1, predicted.sum())), 4),
        "per_class": per_class,
        "ignore_index": taxonomy.ignore_index,
        "provenance": provenance(stage="pseudo-label", teacher_identity=model.identity, device=str(accelerator.device)),
    }
    atomic_write_text(out / RECORD, json.dumps(record, indent=2) + "\n")
    (out / IN_PROGRESS).unlink(missing_ok=True)
    return record


def claim_folder(out: Path) -> None:
    """Refuse a folder that holds anything but a killed pseudo-label run; mark it as being written."""
    if out.is_dir() and any(out.iterdir()):
        if (out / RECORD).is_file():
            raise PromptKitError(f"{out} already holds finished pseudo-labels: choose another --out or remove it")
        if not (out / IN_PROGRESS).is_file():
            raise PromptKitError(f"{out} is not empty and holds no pseudo-labels: choose a new or empty --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / IN_PROGRESS, "a pseudo-label run is writing this folder; run it again to finish\n")


def _write_image(item, array: np.ndarray, folder: Path) -> None:
    """The image beside its label: the original file when there is one, else a PNG of the drawn image."""
    if item.path is not None:
        target = folder / f"{item.name}{item.path.suffix.lower()}"
        staging = target.with_name(f".{target.name}.tmp")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.path, staging)
        staging.replace(target)
    else:
        atomic_write_bytes(folder / f"{item.name}.png", png_bytes(array), durable=False)


def summary_table(record: dict[str, Any]) -> str:
    """The per-class kept share as a Markdown table (what the command prints)."""
    lines = ["| class | predicted pixels | kept | share | threshold |", "|---|---:|---:|---:|---:|"]
    for name, row in record["per_class"].items():
        share = "-" if row["kept_share"] is None else f"{row['kept_share']:.3f}"
        threshold = f"{row['threshold']:.3f}" if "threshold" in row else "-"
        lines.append(f"| {name} | {row['predicted_pixels']} | {row['kept_pixels']} | {share} | {threshold} |")
    return "\n".join(lines)


__all__ = ["class_balanced_thresholds", "confidence_and_entropy", "keep_mask", "pseudo_label", "summary_table"]
