"""Mean squared error between student and teacher logits."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from distill.kd.losses.alignment import align_logits, check_align_mode


class LogitMSE(nn.Module):
    """``L = 1 / (|V| C) * sum_{(b,h,w) in V} sum_c (z_s[c] - z_t[c])^2`` over the valid pixels ``V``.

    With no valid pixel the loss is 0.

    Args:
        align: how a resolution mismatch is resolved (see ``distill.kd.losses.alignment``).
    """

    name: ClassVar[str] = "mse"

    def __init__(self, align: str = "upsample_student") -> None:
        super().__init__()
        self.align = check_align_mode(align)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        student, teacher, valid = align_logits(student_logits, teacher_logits, valid_mask, self.align)
        per_pixel = (student - teacher).pow(2).sum(dim=1)  # [B, H, W]
        return (per_pixel * valid).sum() / (valid.sum().clamp_min(1) * student.shape[1])
