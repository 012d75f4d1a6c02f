"""The same random crop seen at the teacher's and at the student's resolution, for distillation.

A distillation loss compares teacher and student pixel by pixel, so both must see the same
part of the same image: one random scale, crop, flip and colour jitter per sample, resampled
twice. The parameters are returned with every sample so that the geometry can be re-applied
later to any other map of the source image (``apply_geometry``), such as cached teacher
outputs.

Views (``views > 0``, FKD's idea for segmentation): each image has ``views`` geometric
augmentations drawn ahead from ``view_seed`` alone (crop box, scale, flip of view ``v`` of image
``i``), and the k-th epoch's visit of image ``i`` reads view ``permutation[k mod views]``, a
permutation of ``0..views-1`` drawn from (``seed``, ``i``, ``k // views``): every view once per
cycle, in an order that depends on the run's seed. A teacher's output for each view can then be
computed once and shared by every run (``distill.kd.view_bank``). Colour jitter is still drawn per
visit and applied to the student's image only: the teacher sees the view un-jittered, live or
banked, so a live and a banked run differ only by the bank's float16 storage. ``views=0``
draws a fresh geometry for every (seed, epoch, image), the way runs without a teacher train.

Geometry, in source pixels: a scale ``s`` drawn from ``scale_range`` gives a crop box of
``round(H / s) x round(W / s)`` (the source's aspect ratio). ``s = 1`` is the whole image (the
eval view), ``s > 1`` zooms in at a random position, ``s < 1`` zooms out and pads: black
image, ignore label. The box is then resized to each output size (so an output size with
another aspect ratio than the source stretches train and eval views alike; prefer sizes with
the source's aspect). Images are resampled bilinearly with antialiasing, labels by nearest
neighbour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.ops import roi_align
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from distill.datasets.segmentation_dataset import SegmentationDataset
from distill.datasets.unlabelled import is_labelled

Size = tuple[int, int]
JITTER_KEYS = ("brightness", "contrast", "saturation")
# the first words of the random streams of views (their geometry, their order, the jitter of a visit), so none
# of them repeats the stream of a fresh draw ([seed, epoch, index])
VIEW_STREAM, VIEW_ORDER_STREAM, JITTER_STREAM = 0x5649, 0x4F52, 0x4A49


class PairedViews(Dataset):
    """Wraps a ``SegmentationDataset``; each item is a dict of teacher and student views.

    Items: ``teacher_image`` ``[3, *teacher_size]``, ``teacher_label`` ``[*teacher_size]``, the
    same for ``student_*``, ``params`` (see ``sample_params``) and ``index``. A size of None leaves
    that role's view out (a student trained from cached teacher outputs, or alone, never reads a
    teacher-size view; resampling one per sample would be wasted work). Deterministic for
    (seed, epoch, index); call ``set_epoch`` before each epoch's iteration starts (a DataLoader
    with ``persistent_workers=True`` keeps its own copies and would not see it).
    """

    def __init__(
        self,
        dataset: SegmentationDataset,
        teacher_size: Size | None,
        student_size: Size | None,
        train: bool = True,
        seed: int = 0,
        scale_range: tuple[float, float] = (0.75, 1.5),
        flip: bool = True,
        color_jitter: float = 0.2,
        views: int = 0,
        view_seed: int = 0,
    ) -> None:
        if teacher_size is None and student_size is None:
            raise ValueError("PairedViews needs a teacher_size, a student_size or both")
        for name, size in (("teacher_size", teacher_size), ("student_size", student_size)):
            if size is not None and (len(size) != 2 or min(size) < 1):
                raise ValueError(f"{name} must be (height, width) with positive sides, got {size}")
        check_augmentation(scale_range, color_jitter)
        if views < 0:
            raise ValueError(f"views must be 0 (a fresh crop every epoch) or a positive count, got {views}")
        self.dataset = dataset
        self.teacher_size = _size_or_none(teacher_size)
        self.student_size = _size_or_none(student_size)
        self.train = train
        self.seed = seed
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip = flip
        self.color_jitter = float(color_jitter)
        self.views = int(views)
        self.view_seed = int(view_seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new augmentations for a new epoch (the same ones again for the same epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def view_of(self, index: int, epoch: int) -> int:
        """The view that epoch ``epoch`` reads of image ``index`` (-1 without views or augmentation)."""
        if not self.train or not self.views:
            return -1
        cycle, within = divmod(int(epoch), self.views)
        order = np.random.default_rng([VIEW_ORDER_STREAM, self.seed, index, cycle]).permutation(self.views)
        return int(order[within])

    def sample_params(self, index: int, source_size: Size) -> dict[str, Any]:
        """The augmentation of sample ``index`` this epoch, as values the default collate stacks.

        Returns:
            ``source_size`` int64 ``[2]`` (H, W), ``crop_box`` int64 ``[4]`` (top, left, height,
            width in source pixels, may reach outside the image), ``scale`` (float), ``flip``
            (bool), ``view`` (int: the view read, -1 for a fresh draw or none) and the colour
            factors ``brightness``, ``contrast``, ``saturation`` (1 = none).
        """
        view = self.view_of(index, self.epoch)
        if not self.train:
            return self._geometry(source_size, None)
        if view >= 0:
            params = self.view_params(index, view, source_size)
            rng = np.random.default_rng([JITTER_STREAM, self.seed, self.epoch, index])
        else:  # geometry and jitter from one stream, as before views existed
            rng = np.random.default_rng([self.seed, self.epoch, index])
            params = self._geometry(source_size, rng)
        for key in JITTER_KEYS:
            params[key] = float(rng.uniform(1.0 - self.color_jitter, 1.0 + self.color_jitter))
        return params

    def view_params(self, index: int, view: int, source_size: Size) -> dict[str, Any]:
        """The geometry of view ``view`` of image ``index`` (no jitter): a function of ``view_seed`` alone."""
        if not self.train:
            return self._geometry(source_size, None)
        if not 0 <= view < self.views:
            raise ValueError(f"image {index} has views 0..{self.views - 1}, not {view}")
        params = self._geometry(source_size, np.random.default_rng([VIEW_STREAM, self.view_seed, index, view]))
        params["view"] = view
        return params

    def _geometry(self, source_size: Size, rng: np.random.Generator | None) -> dict[str, Any]:
        """Crop box, scale and flip drawn from ``rng`` (None: the whole image, unflipped)."""
        height, width = source_size
        params: dict[str, Any] = {
            "source_size": torch.tensor([height, width]),
            "crop_box": torch.tensor([0, 0, height, width]),
            "scale": 1.0,
            "flip": False,
            "view": -1,
            **dict.fromkeys(JITTER_KEYS, 1.0),
        }
        if rng is None:
            return params
        scale = float(rng.uniform(*self.scale_range))
        box_height, box_width = max(1, round(height / scale)), max(1, round(width / scale))
        top = int(rng.integers(min(0, height - box_height), max(0, height - box_height) + 1))
        left = int(rng.integers(min(0, width - box_width), max(0, width - box_width) + 1))
        params["crop_box"] = torch.tensor([top, left, box_height, box_width])
        params["scale"] = scale
        params["flip"] = bool(self.flip and rng.random() < 0.5)
        return params

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, label = self.dataset[index]
        params = self.sample_params(index, (image.shape[-2], image.shape[-1]))
        ignore = self.dataset.ignore_index
        item: dict[str, Any] = {}
        for role, size in (("teacher", self.teacher_size), ("student", self.student_size)):
            if size is None:
                continue
            view = apply_geometry(image, params, size, InterpolationMode.BILINEAR, fill=0.0)
            # with views the teacher reads the view un-jittered, as a bank of its outputs holds it
            item[f"{role}_image"] = view if role == "teacher" and params["view"] >= 0 else apply_jitter(view, params)
            item[f"{role}_label"] = apply_geometry(label, params, size, InterpolationMode.NEAREST_EXACT, fill=ignore)
        item["params"] = params
        item["index"] = index
        item["labelled"] = is_labelled(self.dataset, index)
        return item


def check_augmentation(scale_range: tuple[float, float], color_jitter: float) -> None:
    """Raise ``ValueError`` unless ``0 < low <= high`` and ``0 <= color_jitter < 1``."""
    if not 0 < scale_range[0] <= scale_range[1]:
        raise ValueError(f"scale_range must satisfy 0 < low <= high, got {list(scale_range)}")
    if not 0 <= color_jitter < 1:
        raise ValueError(f"color_jitter must be in [0, 1), got {color_jitter}")


def _size_or_none(size: Size | None) -> Size | None:
    return None if size is None else (int(size[0]), int(size[1]))


def apply_geometry(
    tensor: torch.Tensor,
    params: Mapping[str, Any],
    out_size: Size,
    interpolation: InterpolationMode = InterpolationMode.BILINEAR,
    fill: float = 0.0,
) -> torch.Tensor:
    """Crop, resize and flip ``tensor`` (``[..., h, w]``, a map of the whole source image) as a sample was.

    At the source's resolution this is exactly what ``PairedViews`` did to the image and label
    (torchvision crop, resize, flip). A float map at another resolution (teacher logits at
    1/4 scale) is cropped with ``torchvision.ops.roi_align``, which handles the fractional box
    exactly and averages within each output pixel. Outside the source image the result is
    ``fill`` (use the ignore index for labels).

    Args:
        tensor: ``[h, w]`` or ``[C, h, w]`` covering the whole source image.
        params: one sample's ``params`` (``params_at`` takes them out of a collated batch).
        out_size: (height, width) of the result.
        interpolation: ``BILINEAR`` for images and soft maps, ``NEAREST_EXACT`` for labels.
        fill: value for the area outside the source image.

    Returns:
        ``[..., *out_size]``, same dtype as ``tensor``.
    """
    source = (int(params["source_size"][0]), int(params["source_size"][1]))
    top, left, box_height, box_width = (int(value) for value in params["crop_box"])
    squeeze = tensor.dim() == 2
    maps = tensor[None] if squeeze else tensor
    if tuple(maps.shape[-2:]) == source:
        maps = _crop_with_fill(maps, top, left, box_height, box_width, fill)
        antialias = interpolation == InterpolationMode.BILINEAR
        maps = F.resize(maps, list(out_size), interpolation=interpolation, antialias=antialias)
    elif interpolation == InterpolationMode.BILINEAR and maps.is_floating_point():
        scale_y, scale_x = maps.shape[-2] / source[0], maps.shape[-1] / source[1]
        box = torch.tensor(
            [[0.0, left * scale_x, top * scale_y, (left + box_width) * scale_x, (top + box_height) * scale_y]],
            dtype=maps.dtype,
        )
        flat = maps.reshape(1, -1, *maps.shape[-2:]) - fill  # roi_align pads with 0: shift so it pads with fill
        maps = (roi_align(flat, box, output_size=out_size, sampling_ratio=-1, aligned=True) + fill).reshape(
            *maps.shape[:-2], *out_size
        )
    else:
        raise ValueError(
            f"a map of {tuple(maps.shape[-2:])} pixels differs from the source {source}: only float maps "
            "with bilinear interpolation can be resampled from another resolution (resample labels at the source's)"
        )
    if bool(params["flip"]):
        maps = F.horizontal_flip(maps)
    return maps[0] if squeeze else maps


def apply_jitter(image: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
    """Brightness, contrast, saturation (in that order) of a float ``[3, H, W]`` image in [0, 1]."""
    image = F.adjust_brightness(image, float(params["brightness"]))
    image = F.adjust_contrast(image, float(params["contrast"]))
    return F.adjust_saturation(image, float(params["saturation"]))


def params_at(params: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Sample ``index``'s params out of a batch collated by the default DataLoader collate."""
    return {key: value[index] for key, value in params.items()}


def _crop_with_fill(tensor: torch.Tensor, top: int, left: int, height: int, width: int, fill: float) -> torch.Tensor:
    """``F.crop`` that pads with ``fill`` (not zeros) where the box leaves the image."""
    source_height, source_width = tensor.shape[-2:]
    padding = [max(0, -left), max(0, -top), max(0, left + width - source_width), max(0, top + height - source_height)]
    if any(padding):
        tensor = F.pad(tensor, padding, fill=fill)
        top, left = top + padding[1], left + padding[0]
    return F.crop(tensor, top, left, height, width)
