"""Mean squared error between student and teacher logits."""

from __future__ import annotations

from typing import ClassVar

import torch

from distill.kd.losses.alignment import AlignMode, align_logits
from distill.kd.losses.base import KDLoss


class LogitMSE(KDLoss):
    """``L = 1 / (|V| C) * sum_{(b,h,w) in V} sum_c (z_s[c] - z_t[c])^2`` over the valid pixels ``V``.

    With no valid pixel the loss is 0.

    Args:
        align: how a resolution mismatch is resolved (see ``distill.kd.losses.alignment``).
    """

    name: ClassVar[str] = "mse"

    def __init__(self, align: AlignMode = "upsample_student") -> None:
        super().__init__(align)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        student, teacher, valid = align_logits(student_logits, teacher_logits, valid_mask, self.align)
        per_pixel = (student - teacher).pow(2).sum(dim=1)  # [B, H, W]
        return (per_pixel * valid).sum() / (valid.sum().clamp_min(1) * student.shape[1])
