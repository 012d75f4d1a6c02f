"""Channel Group Distillation (SegDistill): CWD over groups of channels, with a channel shuffle."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from distill.kd.losses.alignment import AlignMode, align_logits
from distill.kd.losses.base import KDLoss

SHUFFLE_SCHEDULES: tuple[str, ...] = ("held", "segdistill")


class ChannelGroupDivergence(KDLoss):
    """Channels grouped ``group_size`` at a time; each group over the valid positions is one distribution.

    ``L = 1 / (B G) * sum_b sum_g sum_{c in g, i in V_b} p_t[b,g,c,i] (log p_t[b,g,c,i] - log p_s[b,g,c,i])``
    with ``p[b,g,:,:] = softmax(z[b, channels of g, V_b] / tau)`` taken jointly over the group's
    channels and the valid positions ``V_b`` of image ``b``; ``G`` groups (the last one smaller
    when ``group_size`` does not divide the channels), ``B`` the images with a valid pixel. As in
    SegDistill there is no ``tau^2`` factor (its weight, 3, sits in the KD spec: ``cgd=3``).
    With ``group_size=1`` this is CWD without its ``tau^2``.

    ``shuffle_every=N`` permutes the channels (the same permutation for student and teacher)
    before grouping, on one of two schedules (``shuffle_schedule``):

    - ``"held"`` (the default): every training call is permuted, with a new permutation every
      ``N`` calls, so the groups change over training and every channel meets every other;
    - ``"segdistill"``: as the official code (wzpscott/SegDistill ``KLDLoss.shuffle``,
      ``n_iter % interval == 0`` with interval 1000): only the calls whose 1-based count is a
      multiple of ``N`` are permuted, every other call keeps the natural channel order.

    ``held`` is the default because it does what the shuffle is for: with SegDistill's schedule
    at its interval of 1000, 999 of 1000 calls group the channels exactly as without a shuffle.
    Choose ``segdistill`` to reproduce the official numbers. The permutations are drawn from
    ``shuffle_seed`` and the call count (the official code draws an unseeded ``randperm``); the
    count is a buffer, saved and resumed with the loss's state. Evaluation calls neither shuffle
    nor count.

    Args:
        tau: softmax temperature ``> 0`` (SegDistill: 2).
        group_size: channels per group ``>= 1`` (SegDistill: 10).
        shuffle_every: ``N`` above (0: never shuffle; SegDistill: 1000).
        shuffle_seed: seed of the permutations.
        shuffle_schedule: ``"held"`` or ``"segdistill"`` (see above).
        align: how a resolution mismatch is resolved (see ``distill.kd.losses.alignment``).
    """

    name: ClassVar[str] = "cgd"

    def __init__(
        self,
        tau: float = 2.0,
        group_size: int = 10,
        shuffle_every: int = 0,
        shuffle_seed: int = 0,
        shuffle_schedule: str = "held",
        align: AlignMode = "upsample_student",
    ) -> None:
        super().__init__(align)
        if tau <= 0:
            raise ValueError(f"cgd: tau must be > 0; got {tau}")
        if int(group_size) != group_size or group_size < 1:
            raise ValueError(f"cgd: group_size must be a whole number >= 1; got {group_size}")
        if int(shuffle_every) != shuffle_every or shuffle_every < 0:
            raise ValueError(f"cgd: shuffle_every must be a whole number >= 0 (0: never); got {shuffle_every}")
        if shuffle_schedule not in SHUFFLE_SCHEDULES:
            raise ValueError(
                f"cgd: shuffle_schedule must be one of {', '.join(SHUFFLE_SCHEDULES)}; got {shuffle_schedule!r}"
            )
        self.shuffle_schedule = shuffle_schedule
        self.tau = float(tau)
        self.group_size = int(group_size)
        self.shuffle_every = int(shuffle_every)
        self.shuffle_seed = int(shuffle_seed)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def permutation(self, channels: int) -> torch.Tensor | None:
        """The channel order of the current call (None: the natural order)."""
        if not self.shuffle_every:
            return None
        if self.shuffle_schedule == "segdistill":
            call = int(self.calls) + 1  # SegDistill counts calls from 1
            if call % self.shuffle_every:
                return None
            key = call // self.shuffle_every
        else:
            key = int(self.calls) // self.shuffle_every
        generator = torch.Generator().manual_seed(self.shuffle_seed * 1_000_003 + key)
        return torch.randperm(channels, generator=generator)

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        student, teacher, valid = align_logits(student_logits, teacher_logits, valid_mask, self.align)
        channels = student.shape[1]
        if self.training:
            order = self.permutation(channels)
            if order is not None:
                order = order.to(student.device)
                student, teacher = student[:, order], teacher[:, order]
            self.calls += 1
        valid = valid.flatten(1)[:, None, :]  # [B, 1, HW]
        image_valid = valid.any(dim=2, keepdim=True)  # [B, 1, 1]
        hidden = ~valid & image_valid  # an image with no valid pixel keeps a finite softmax, left out below
        total = student.new_zeros(())
        groups = 0
        for start in range(0, channels, self.group_size):
            size = min(self.group_size, channels - start)
            group_hidden = hidden.expand(-1, size, -1).flatten(1)  # [B, size * HW]
            group_valid = valid.expand(-1, size, -1).flatten(1)
            s = (student[:, start : start + size] / self.tau).flatten(1).masked_fill(group_hidden, -torch.inf)
            t = (teacher[:, start : start + size] / self.tau).flatten(1).masked_fill(group_hidden, -torch.inf)
            log_p_s, log_p_t = F.log_softmax(s, dim=1), F.log_softmax(t, dim=1)
            log_ratio = torch.where(group_valid, log_p_t - log_p_s, 0.0)
            per_image = (log_p_t.exp() * log_ratio).sum(dim=1)  # [B]
            total = total + (per_image * image_valid.flatten().to(per_image.dtype)).sum()
            groups += 1
        images = image_valid.sum().clamp_min(1)
        return total / (images * groups)


__all__ = ["ChannelGroupDivergence"]
