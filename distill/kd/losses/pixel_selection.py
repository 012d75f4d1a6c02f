"""Which pixels the KD terms compare: every labelled pixel, or only those the teacher gets right.

A teacher weaker than its student (the usual case for a diffusion teacher trained from scratch on
a CPU) is confidently wrong on many pixels; there its soft labels pull against the ground truth
the cross-entropy term is teaching. ``"teacher_correct"`` keeps the teacher's class distribution
where its argmax agrees with the label (the dark knowledge about *which* wrong classes are
close) and drops its mistakes; ``"valid"`` distils at every labelled pixel, the classic choice.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F

KdPixels = Literal["valid", "teacher_correct"]
KD_PIXELS: tuple[str, ...] = get_args(KdPixels)


def kd_pixel_mask(labels: torch.Tensor, teacher_logits: torch.Tensor, ignore_index: int, mode: str) -> torch.Tensor:
    """Bool ``[B, H, W]`` at the labels' resolution: the pixels a KD term may compare.

    Args:
        labels: ``[B, H, W]`` class ids, ``ignore_index`` where unlabelled.
        teacher_logits: ``[B, C, h, w]`` at any resolution (resized bilinearly to ``H x W`` to
            read the teacher's predicted class).
        ignore_index: the label value of unlabelled pixels.
        mode: one of :data:`KD_PIXELS`.
    """
    if mode not in KD_PIXELS:
        raise ValueError(f"kd_pixels must be one of {', '.join(KD_PIXELS)}; got {mode!r}")
    valid = labels != ignore_index
    if mode == "valid":
        return valid
    logits = teacher_logits.detach().float()
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return valid & (logits.argmax(1) == labels)


__all__ = ["KD_PIXELS", "KdPixels", "kd_pixel_mask"]
