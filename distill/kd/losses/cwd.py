"""Channel-wise distillation (Shu et al., ICCV 2021, arXiv:2011.13256)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from distill.kd.losses.alignment import AlignMode, align_logits
from distill.kd.losses.base import KDLoss


class ChannelWiseDivergence(KDLoss):
    """Each channel's map becomes a distribution over the valid positions; KL aligns them.

    ``L = tau^2 / (B C) * sum_{b,c} sum_{i in V_b} p_t[b,c,i] (log p_t[b,c,i] - log p_s[b,c,i])``
    with ``p[b,c,:] = softmax(z[b,c,:] / tau)`` over the valid positions ``V_b`` of image ``b``
    (invalid positions are set to ``-inf`` before the softmax, so they get probability 0 and no
    gradient). As in mmrazor's ``ChannelWiseDivergence``, the sum over positions is divided by
    ``B C`` only; ``B`` counts the images with at least one valid pixel (0 if there are none).

    Args:
        tau: spatial softmax temperature ``> 0`` (the paper uses 4 for logits).
        align: how a resolution mismatch is resolved (see ``distill.kd.losses.alignment``).
    """

    name: ClassVar[str] = "cwd"

    def __init__(self, tau: float = 4.0, align: AlignMode = "upsample_student") -> None:
        super().__init__(align)
        if tau <= 0:
            raise ValueError(f"cwd: tau must be > 0; got {tau}")
        self.tau = float(tau)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        student, teacher, valid = align_logits(student_logits, teacher_logits, valid_mask, self.align)
        valid = valid.flatten(1)[:, None, :]  # [B, 1, HW]
        image_valid = valid.any(dim=2, keepdim=True)  # [B, 1, 1]
        # An image with no valid pixel keeps its full softmax (finite) and is left out below.
        hidden = ~valid & image_valid
        log_p_s = F.log_softmax((student.flatten(2) / self.tau).masked_fill(hidden, float("-inf")), dim=2)
        log_p_t = F.log_softmax((teacher.flatten(2) / self.tau).masked_fill(hidden, float("-inf")), dim=2)
        log_ratio = torch.where(valid, log_p_t - log_p_s, 0.0)  # -inf - -inf is never used
        kl_per_channel = (log_p_t.exp() * log_ratio).sum(dim=2)  # [B, C]
        images = image_valid.sum().clamp_min(1)
        return self.tau**2 * kl_per_channel.sum() / (images * student.shape[1])
