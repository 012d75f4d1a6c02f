"""Pixel-wise KL divergence between the class distributions of teacher and student."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from distill.kd.losses.alignment import AlignMode, align_logits
from distill.kd.losses.base import KDLoss


class KLDivergence(KDLoss):
    """Hinton-style soft-target KD applied at every valid pixel.

    ``L = T^2 / |V| * sum_{(b,h,w) in V} sum_c p_t[c] (log p_t[c] - log p_s[c])``, with
    ``p = softmax(logits / T)`` over the classes and ``V`` the valid pixels. Both log-probabilities
    come from ``log_softmax`` (no clamp, no ``log(softmax)``), so no gradient is cut off. With no
    valid pixel the loss is 0.

    Args:
        temperature: ``T > 0``; the ``T^2`` factor keeps gradient magnitudes comparable across ``T``.
        align: how a resolution mismatch is resolved (see ``distill.kd.losses.alignment``).
    """

    name: ClassVar[str] = "kl"

    def __init__(self, temperature: float = 1.0, align: AlignMode = "upsample_student") -> None:
        super().__init__(align)
        if temperature <= 0:
            raise ValueError(f"kl: temperature must be > 0; got {temperature}")
        self.temperature = float(temperature)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        student, teacher, valid = align_logits(student_logits, teacher_logits, valid_mask, self.align)
        log_p_s = F.log_softmax(student / self.temperature, dim=1)
        log_p_t = F.log_softmax(teacher / self.temperature, dim=1)
        per_pixel = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)  # [B, H, W]
        mean = (per_pixel * valid).sum() / valid.sum().clamp_min(1)
        return self.temperature**2 * mean
