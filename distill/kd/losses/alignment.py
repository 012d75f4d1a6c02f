"""Bring student and teacher maps to one resolution before a KD loss compares them.

The teacher predicts at ``H/4 x W/4``; a student may predict at another resolution. Every loss
takes one ``align`` option and calls :func:`align_logits` (or :func:`align_maps` for feature
maps) first, so a size mismatch is resolved the same explicit way everywhere:

- ``"upsample_student"``: the loss is computed at the **teacher's** resolution; the student's
  map is resized (bilinear) to the teacher's size.
- ``"downsample_teacher"``: the loss is computed at the **student's** resolution; the teacher's
  map is resized (bilinear) to the student's size.

The names describe the usual case (a coarse student, a finer teacher); the resize works in either
direction. Bilinear resizing uses ``align_corners=False`` and no antialiasing, as mmsegmentation
resizes logits. The valid mask may come at any resolution (the student's, the teacher's or the
labels'); it is resized to the loss's resolution with nearest-neighbour sampling.

The teacher's map is returned detached: every KD loss treats the teacher as a fixed target, so a
teacher that requires grad receives no gradient from distillation.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

AlignMode = Literal["upsample_student", "downsample_teacher"]
ALIGN_MODES: tuple[str, ...] = ("upsample_student", "downsample_teacher")


def check_align_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`ALIGN_MODES`, else raise a ValueError naming them."""
    if mode not in ALIGN_MODES:
        raise ValueError(f"align must be one of {', '.join(ALIGN_MODES)}; got {mode!r}")
    return mode


def align_maps(
    student: torch.Tensor,
    teacher: torch.Tensor,
    valid_mask: torch.Tensor | None,
    mode: str = "upsample_student",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Resize ``student [B, Cs, hs, ws]`` and ``teacher [B, Ct, ht, wt]`` to one spatial size.

    Channel counts may differ (feature maps); see :func:`align_logits` for class logits.

    Args:
        student: the student's map; keeps its graph.
        teacher: the teacher's map; returned detached.
        valid_mask: bool ``[B, h, w]`` at any resolution, False at ignored pixels; None means
            every pixel is valid.
        mode: ``"upsample_student"`` (teacher's resolution) or ``"downsample_teacher"``
            (student's resolution).

    Returns:
        ``(student, teacher, valid_mask)`` at one resolution. Half precision becomes float32 (the
        losses need it for stable softmaxes); otherwise both take the wider dtype of the two.
    """
    check_align_mode(mode)
    if student.ndim != 4 or teacher.ndim != 4:
        raise ValueError(
            f"KD losses take [B, C, H, W] maps; got student {tuple(student.shape)}, teacher {tuple(teacher.shape)}"
        )
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(f"student batch has {student.shape[0]} images, teacher batch {teacher.shape[0]}")
    dtype = torch.promote_types(student.dtype, teacher.dtype)
    if dtype not in (torch.float32, torch.float64):
        dtype = torch.float32
    size = tuple(teacher.shape[-2:]) if mode == "upsample_student" else tuple(student.shape[-2:])
    student = _resize_bilinear(student.to(dtype), size)
    teacher = _resize_bilinear(teacher.detach().to(dtype), size)
    return student, teacher, _resize_mask(valid_mask, student.shape[0], size, student.device)


def align_logits(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    valid_mask: torch.Tensor | None,
    mode: str = "upsample_student",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`align_maps` for class logits, which must have the same number of classes ``C``."""
    if student_logits.ndim == 4 and teacher_logits.ndim == 4 and student_logits.shape[1] != teacher_logits.shape[1]:
        raise ValueError(
            f"teacher has {teacher_logits.shape[1]} classes, student {student_logits.shape[1]}: logit KD compares "
            "class distributions, so both must predict the same classes in the same order"
        )
    return align_maps(student_logits, teacher_logits, valid_mask, mode)


def _resize_bilinear(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _resize_mask(
    valid_mask: torch.Tensor | None, batch: int, size: tuple[int, ...], device: torch.device
) -> torch.Tensor:
    if valid_mask is None:
        return torch.ones((batch, *size), dtype=torch.bool, device=device)
    if valid_mask.dtype != torch.bool:
        raise ValueError(f"valid_mask must be a bool tensor (True where a pixel is distilled); got {valid_mask.dtype}")
    if valid_mask.ndim != 3 or valid_mask.shape[0] != batch:
        raise ValueError(f"valid_mask must be [B, H, W] with B = {batch}; got {tuple(valid_mask.shape)}")
    if tuple(valid_mask.shape[-2:]) == size:
        return valid_mask
    resized = F.interpolate(valid_mask[:, None].float(), size=size, mode="nearest")
    return resized[:, 0] > 0.5
