"""Teacher outputs computed once, then cropped like each sample: KD at the cost of training alone.

A frozen teacher's logits depend only on the image, yet a live teacher costs ~10x a tiny
student's train step on a CPU. So the logits of every whole train image are computed once at
the teacher's size, kept as float16 safetensors in the teacher folder (keyed on the teacher's
identity, which covers its weights and, for a diffusion teacher, the class-embedding tensors it
is conditioned on; the data; and the size), and for each sample
``apply_geometry`` replays that sample's crop, scale and flip on the cached map (roi_align over
the fractional box). Two honest differences from a live teacher: the teacher sees the whole
image rather than the crop (a zoomed-in crop is read from an upsampled map), and colour jitter
is not replayed (the cached logits are those of the un-jittered image).
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


def cache_key(teacher: Teacher, data: str, size: tuple[int, int]) -> str:
    """Changes whenever the cached logits would: the teacher's identity, the data, the size."""
    digest = hashlib.sha256(teacher.identity.encode())
    digest.update(json.dumps([CACHE_VERSION, data, list(size)]).encode())
    return digest.hexdigest()[:20]


@torch.no_grad()
def compute_teacher_logits(
    teacher: Teacher, dataset, size: tuple[int, int], accelerator, batch_size: int = 8
) -> torch.Tensor:
    """Logits ``[N, C, h, w]`` (float16, CPU) of every whole image of ``dataset`` resized to ``size``."""
    views = PairedViews(dataset, teacher_size=size, student_size=None, train=False)
    # its own generator: a DataLoader without one draws a seed from the global RNG, so a cache miss
    # would shift every later random draw of the run against a cache hit
    loader = DataLoader(views, batch_size=batch_size, generator=torch.Generator().manual_seed(0))
    teacher.eval()
    outputs = []
    progress = tqdm(loader, desc="teacher outputs", disable=not accelerator.is_local_main_process)
    for batch in progress:
        with accelerator.autocast():
            logits = teacher(batch["teacher_image"].to(accelerator.device))
        outputs.append(logits.float().cpu().half())
    return torch.cat(outputs).contiguous()


def cached_teacher_logits(
    teacher: Teacher, teacher_dir: str | Path, data: str, dataset, size, accelerator
) -> torch.Tensor:
    """The cached logits of ``dataset`` for this teacher, computed (by the main process) on a miss.

    A part of the train split (``holdout``) is another set of images: its split name and size
    join the key (the held-out draw is fixed, so they identify it).
    """
    if dataset.split != "train":
        data = f"{data} {dataset.split} ({len(dataset)} images)"
    path = Path(teacher_dir) / CACHE_FOLDER / f"{cache_key(teacher, data, size)}.safetensors"
    with accelerator.main_process_first():
        logits = _read_cached(path, len(dataset)) if path.is_file() else None
        if logits is None and accelerator.is_main_process:
            if path.is_file():
                logger.warning("the teacher-output cache entry %s cannot be used: computing it again", path)
            logits = compute_teacher_logits(teacher, dataset, size, accelerator)
            metadata = {"data": data, "size": f"{size[0]}x{size[1]}", "images": str(len(dataset))}
            atomic_write_bytes(path, safetensors_save({"logits": logits}, metadata=metadata))
    if logits is None:
        raise PromptKitError(f"{path} cannot be read after the main process wrote it: is the disk shared and full?")
    return logits


def _read_cached(path: Path, images: int) -> torch.Tensor | None:
    """The logits of a cache entry, or None when it is damaged or holds another number of images."""
    try:
        logits = read_safetensors(path, "teacher-output cache entry").get("logits")
    except PromptKitError:
        return None
    return logits if logits is not None and logits.ndim == 4 and logits.shape[0] == images else None


class CachedTeacherViews(Dataset):
    """``PairedViews`` items plus ``teacher_logits``: the cached map cropped like the sample."""

    def __init__(self, views: PairedViews, logits: torch.Tensor) -> None:
        if len(views) != logits.shape[0]:
            raise ValueError(f"{len(views)} views but logits for {logits.shape[0]} images")
        self.views = views
        self.logits = logits

    def set_epoch(self, epoch: int) -> None:
        self.views.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.views[index]
        cached = self.logits[index].float()
        item["teacher_logits"] = apply_geometry(cached, item["params"], tuple(cached.shape[-2:]))
        return item


__all__ = ["CachedTeacherViews", "cache_key", "cached_teacher_logits", "compute_teacher_logits"]
