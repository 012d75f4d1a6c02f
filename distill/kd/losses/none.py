"""The no-distillation baseline: the student trains on its labels alone."""

from __future__ import annotations

from typing import ClassVar

import torch

from distill.kd.losses.alignment import AlignMode
from distill.kd.losses.base import KDLoss


class NoDistillation(KDLoss):
    """``L = 0``, as a tensor connected to the student's graph (its gradient is all zeros).

    Args:
        align: accepted and checked so that one config serves every loss; nothing is compared.
    """

    name: ClassVar[str] = "none"

    def __init__(self, align: AlignMode = "upsample_student") -> None:
        super().__init__(align)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return (student_logits * 0).sum()
