"""The contract every KD loss keeps, in one class: ``loss(student, teacher, valid_mask) -> scalar``.

A loss is a module whose constructor takes its own parameters by keyword (checked there, with a
one-line ValueError) and ``align``; ``forward`` takes only the three tensors, aligns them
(:mod:`distill.kd.losses.alignment`) and treats the teacher as a fixed target. ``name`` is its
registry key, the name ``--kd`` and a KD term's ``loss`` use.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

import torch
from torch import nn

from distill.kd.losses.alignment import AlignMode, check_align_mode


class KDLoss(nn.Module):
    """Base class of the KD losses: holds ``align`` and says which parameters the loss takes."""

    name: ClassVar[str]

    def __init__(self, align: AlignMode = "upsample_student") -> None:
        super().__init__()
        self.align = check_align_mode(align)

    def forward(
        self, student: torch.Tensor, teacher: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A scalar: how far ``student`` is from ``teacher`` at the valid pixels (all pixels when None)."""
        raise NotImplementedError

    @classmethod
    def parameter_names(cls) -> list[str]:
        """The keyword parameters its constructor takes (``align`` among them)."""
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]


__all__ = ["KDLoss"]
