"""Attention transfer (Zagoruyko and Komodakis, ICLR 2017, arXiv:1612.03928)."""

from __future__ import annotations

from typing import ClassVar

import torch

from distill.kd.losses.alignment import AlignMode, align_maps
from distill.kd.losses.base import KDLoss


class AttentionTransfer(KDLoss):
    """Match where each network's activations are strong, whatever their channel counts.

    ``a[b, i] = mean_c |f[b, c, i]|^p`` over the valid positions ``i`` of image ``b`` (0 elsewhere),
    ``â[b] = a[b] / |a[b]|_2``, and
    ``L = 1 / B * sum_b 1 / |V_b| * sum_{i in V_b} (â_s[b, i] - â_t[b, i])^2``
    with ``B`` the images with a valid pixel. The paper's ``p`` is 2 and its weight 1000 per
    layer (the squared differences of unit vectors are small: put it in the spec, ``at=1000``).
    Student and teacher may have different channel counts (only the spatial map is compared).

    Args:
        p: exponent of the activations ``> 0`` (the paper: 2).
        align: how a resolution mismatch is resolved (see ``distill.kd.losses.alignment``).
    """

    name: ClassVar[str] = "at"

    def __init__(self, p: float = 2.0, align: AlignMode = "upsample_student") -> None:
        super().__init__(align)
        if p <= 0:
            raise ValueError(f"at: p must be > 0; got {p}")
        self.p = float(p)

    def attention(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``â`` of ``features [B, C, H, W]`` at the valid positions ``[B, HW]`` (unit length, 0 elsewhere)."""
        maps = features.abs().pow(self.p).mean(dim=1).flatten(1) * valid.to(features.dtype)
        return maps / maps.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        student, teacher, valid = align_maps(student_logits, teacher_logits, valid_mask, self.align)
        valid = valid.flatten(1)  # [B, HW]
        squared = (self.attention(student, valid) - self.attention(teacher, valid)).pow(2)
        counts = valid.sum(dim=1)
        per_image = squared.sum(dim=1) / counts.clamp_min(1)
        images = (counts > 0).sum().clamp_min(1)
        return per_image.sum() / images


__all__ = ["AttentionTransfer"]
