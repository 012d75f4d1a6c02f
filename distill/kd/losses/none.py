"""The no-distillation baseline: the student trains on its labels alone."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from distill.kd.losses.alignment import check_align_mode


class NoDistillation(nn.Module):
    """``L = 0``, as a tensor connected to the student's graph (its gradient is all zeros).

    Args:
        align: accepted and checked so that one config serves every loss; nothing is compared.
    """

    name: ClassVar[str] = "none"

    def __init__(self, align: str = "upsample_student") -> None:
        super().__init__()
        self.align = check_align_mode(align)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return (student_logits * 0).sum()
