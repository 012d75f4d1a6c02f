"""Teacher outputs computed once, then cropped like each sample: KD at the cost of training alone.

A frozen teacher's outputs depend only on the image, yet a live teacher costs ~10x a tiny
student's train step on a CPU. So the logits of every whole train image (and, when a KD term
compares features, the teacher's named feature maps it reads) are computed once at the teacher's
size, kept as float16 safetensors in the teacher folder (keyed on the teacher's identity, which
covers its weights and, for a diffusion teacher, the class-embedding tensors it is conditioned on;
the data; the size; and the feature names), and for each sample ``apply_geometry`` replays that
sample's crop, scale and flip on every cached map (roi_align over the fractional box). Two honest
differences from a live teacher: the teacher sees the whole image rather than the crop (a
zoomed-in crop is read from an upsampled map), and colour jitter is not replayed (the cached
outputs are those of the un-jittered image).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from distill.datasets import PairedViews
from distill.datasets.paired_views import apply_geometry
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes
from prompt_kit.readers import read_safetensors
from teacher import Teacher

logger = logging.getLogger(__name__)

CACHE_FOLDER = "output_cache"
CACHE_VERSION = 2  # 2: keyed on Teacher.identity


LOGITS_KEY = "logits"
FEATURE_PREFIX = "feature."


def cache_key(teacher: Teacher, data: str, size: tuple[int, int], features: tuple[str, ...] = ()) -> str:
    """Changes whenever the cached outputs would: the teacher's identity, the data, the size, the feature names."""
    digest = hashlib.sha256(teacher.identity.encode())
    digest.update(json.dumps([CACHE_VERSION, data, list(size)]).encode())
    if features:  # a logits-only entry keeps the key it always had
        digest.update(json.dumps(sorted(features)).encode())
    return digest.hexdigest()[:20]


@torch.no_grad()
def compute_teacher_outputs(
    teacher: Teacher,
    dataset,
    size: tuple[int, int],
    accelerator,
    features: tuple[str, ...] = (),
    batch_size: int = 8,
) -> dict[str, torch.Tensor]:
    """``{"logits": [N, C, h, w], "feature.NAME": [N, F, h', w'], ...}`` (float16, CPU) of every whole image.

    The images of ``dataset`` are resized to ``size``; ``features`` names the teacher's feature
    maps to keep beside the logits (an unknown name is an error listing the teacher's).
    """
    views = PairedViews(dataset, teacher_size=size, student_size=None, train=False)
    # its own generator: a DataLoader without one draws a seed from the global RNG, so a cache miss
    # would shift every later random draw of the run against a cache hit
    loader = DataLoader(views, batch_size=batch_size, generator=torch.Generator().manual_seed(0))
    teacher.eval()
    outputs: dict[str, list[torch.Tensor]] = {LOGITS_KEY: [], **{FEATURE_PREFIX + name: [] for name in features}}
    progress = tqdm(loader, desc="teacher outputs", disable=not accelerator.is_local_main_process)
    for batch in progress:
        with accelerator.autocast():
            logits, named = teacher(batch["teacher_image"].to(accelerator.device), return_features=True)
        outputs[LOGITS_KEY].append(logits.float().cpu().half())
        for name in features:
            if name not in named:
                offered = ", ".join(named) or "none"
                raise PromptKitError(f"the teacher has no feature map {name!r} to cache: it offers {offered}")
            outputs[FEATURE_PREFIX + name].append(named[name].float().cpu().half())
    return {key: torch.cat(parts).contiguous() for key, parts in outputs.items()}


def cached_teacher_outputs(
    teacher: Teacher, teacher_dir: str | Path, data: str, dataset, size, accelerator, features: tuple[str, ...] = ()
) -> dict[str, torch.Tensor]:
    """The cached outputs of ``dataset`` for this teacher, computed (by the main process) on a miss.

    A part of the train split (``holdout``) is another set of images: its split name and size
    join the key (the held-out draw is fixed, so they identify it).
    """
    return cached_teacher_outputs_counted(teacher, teacher_dir, data, dataset, size, accelerator, features)[0]


def cached_teacher_outputs_counted(
    teacher: Teacher, teacher_dir: str | Path, data: str, dataset, size, accelerator, features: tuple[str, ...] = ()
) -> tuple[dict[str, torch.Tensor], int]:
    """:func:`cached_teacher_outputs` and the images the teacher processed for it (0 on a hit)."""
    computed = 0
    if dataset.split != "train":
        data = f"{data} {dataset.split} ({len(dataset)} images)"
    features = tuple(sorted(set(features)))
    path = Path(teacher_dir) / CACHE_FOLDER / f"{cache_key(teacher, data, size, features)}.safetensors"
    expected = {LOGITS_KEY, *(FEATURE_PREFIX + name for name in features)}
    with accelerator.main_process_first():
        outputs = _read_cached(path, len(dataset), expected) if path.is_file() else None
        if outputs is None and accelerator.is_main_process:
            if path.is_file():
                logger.warning("the teacher-output cache entry %s cannot be used: computing it again", path)
            outputs = compute_teacher_outputs(teacher, dataset, size, accelerator, features)
            computed = len(dataset)
            metadata = {"data": data, "size": f"{size[0]}x{size[1]}", "images": str(len(dataset))}
            if features:
                metadata["features"] = ",".join(features)
            atomic_write_bytes(path, safetensors_save(outputs, metadata=metadata))
    if outputs is None:
        raise PromptKitError(f"{path} cannot be read after the main process wrote it: is the disk shared and full?")
    return outputs, computed


def _read_cached(path: Path, images: int, expected: set[str]) -> dict[str, torch.Tensor] | None:
    """The tensors of a cache entry, or None when it is damaged, lacks one, or holds another number of images."""
    try:
        tensors = read_safetensors(path, "teacher-output cache entry")
    except PromptKitError:
        return None
    if set(tensors) != expected:
        return None
    if any(value.ndim != 4 or value.shape[0] != images for value in tensors.values()):
        return None
    return tensors


class CachedTeacherViews(Dataset):
    """``PairedViews`` items plus ``teacher_logits`` (and ``teacher_features``), cropped like the sample.

    ``outputs`` is a logits tensor or :func:`cached_teacher_outputs`' dict; each map is cropped at
    its own resolution, so a feature map at another stride than the logits covers the same box.
    """

    def __init__(self, views: PairedViews, outputs: torch.Tensor | dict[str, torch.Tensor]) -> None:
        outputs = outputs if isinstance(outputs, dict) else {LOGITS_KEY: outputs}
        if len(views) != outputs[LOGITS_KEY].shape[0]:
            raise ValueError(f"{len(views)} views but logits for {outputs[LOGITS_KEY].shape[0]} images")
        self.views = views
        self.logits = outputs[LOGITS_KEY]
        self.features = {
            key.removeprefix(FEATURE_PREFIX): value for key, value in outputs.items() if key.startswith(FEATURE_PREFIX)
        }

    def set_epoch(self, epoch: int) -> None:
        self.views.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.views[index]
        item["teacher_logits"] = self._crop(self.logits[index], item["params"])
        if self.features:
            item["teacher_features"] = {
                name: self._crop(maps[index], item["params"]) for name, maps in self.features.items()
            }
        return item

    @staticmethod
    def _crop(cached: torch.Tensor, params) -> torch.Tensor:
        cached = cached.float()
        return apply_geometry(cached, params, tuple(cached.shape[-2:]))


__all__ = [
    "CachedTeacherViews",
    "cache_key",
    "cached_teacher_outputs",
    "cached_teacher_outputs_counted",
    "compute_teacher_outputs",
]
