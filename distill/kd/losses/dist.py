"""DIST: knowledge distillation from a stronger teacher (Huang et al., NeurIPS 2022, arXiv:2205.10536)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from distill.kd.losses.alignment import AlignMode, align_logits
from distill.kd.losses.base import KDLoss

EPS = 1e-8  # added to the product of the norms, as the official code does


def pearson(a: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    """Pearson correlation along ``dim``: ``sum(a' b') / (|a'| |b'| + 1e-8)`` of the centred ``a'``, ``b'``.

    The epsilon is added to the product of the norms, as in the official DIST code
    (hunto/DIST_KD ``segmentation/losses/dist_kd.py``), not used as a floor on each norm as
    ``F.cosine_similarity`` does: the two differ by ~1e-9 on ordinary logits but by up to 2% when
    the probabilities are nearly uniform (large ``tau``). A constant vector gives 0.
    """
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim) + EPS)


class DIST(KDLoss):
    """Relations instead of exact probabilities: inter-class (per pixel) and intra-class (per class).

    With ``p = softmax(z / tau)`` over classes and ``P_s, P_t [N, C]`` the probabilities of the
    ``N`` valid pixels of the whole mini-batch:

    - inter-class: ``1 - mean_n pearson(P_s[n, :], P_t[n, :])`` (across classes, per pixel);
    - intra-class: ``1 - mean_c pearson(P_s[:, c], P_t[:, c])`` (across the batch's valid pixels,
      per class: the official segmentation code flattens ``[B, H, W]`` into one pixel axis);
    - ``L = tau^2 (beta * inter + gamma * intra)``.

    With no valid pixel the loss is 0; the intra-class term needs at least two.

    Args:
        beta: weight of the inter-class relation.
        gamma: weight of the intra-class relation.
        tau: softmax temperature ``> 0`` (the official segmentation code uses 1).
        align: how a resolution mismatch is resolved (see ``distill.kd.losses.alignment``).
    """

    name: ClassVar[str] = "dist"

    def __init__(
        self, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0, align: AlignMode = "upsample_student"
    ) -> None:
        super().__init__(align)
        if tau <= 0:
            raise ValueError(f"dist: tau must be > 0; got {tau}")
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.tau = float(tau)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        student, teacher, valid = align_logits(student_logits, teacher_logits, valid_mask, self.align)
        if not valid.any():
            return (student * 0).sum()
        p_s = F.softmax(student / self.tau, dim=1).permute(0, 2, 3, 1)[valid]  # [N, C]
        p_t = F.softmax(teacher / self.tau, dim=1).permute(0, 2, 3, 1)[valid]
        inter = 1 - pearson(p_s, p_t, dim=1).mean()
        intra = 1 - pearson(p_s, p_t, dim=0).mean()
        return self.tau**2 * (self.beta * inter + self.gamma * intra)
