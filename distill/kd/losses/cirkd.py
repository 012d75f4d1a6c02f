"""CIRKD's mini-batch pixel-to-pixel distillation (Yang et al., CVPR 2022, arXiv:2204.06986)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F

from distill.kd.losses.alignment import AlignMode, align_maps
from distill.kd.losses.base import KDLoss
from prompt_kit.bounds import check_allocation

SOFTMAX_SCOPES: tuple[str, ...] = ("image_pair", "batch")


class CrossImagePixelPairs(KDLoss):
    """Student pixel-to-pixel similarities across the images of a batch mimic the teacher's.

    1. Pool (optional): the official code at its first release (winycg/CIRKD 7e0d21f) never
       pools, the default here; at its HEAD it average-pools 4x4 (stride 4, ceil mode) when both
       sides of the student's map are at least 256, which ``pool_from=256`` reproduces;
       ``max_size`` pools each map to at most ``max_size x max_size`` cells instead (adaptive, the
       setting for logits at full resolution, where the ``(B h w)^2`` similarities would not fit).
       Pooling averages over valid pixels only; a pooled cell is valid if it covers a valid pixel.
       The similarity matrices' memory is estimated before they are made: too big is a one-line
       error that names ``max_size``.
    2. ``f = F / |F|`` per pixel; ``S[(i,a), (j,b)] = f_{i,a} . f_{j,b}`` for pixels ``a`` of image
       ``i`` and ``b`` of image ``j``, for student and teacher (their ``D`` may differ).
    3. ``softmax_over="image_pair"`` (the official code): for each row ``(i, a)`` and each image
       ``j``, ``KL(softmax_b(S_t / tau) || softmax_b(S_s / tau))`` over the valid pixels ``b`` of
       ``j``; ``L`` is the mean over valid rows and images ``j`` (``1 / B^2`` times the sum of the
       per-pair row means when every pixel is valid). ``softmax_over="batch"``: one softmax per
       row over every valid pixel of the batch; ``L`` is the mean over valid rows.

    Args:
        tau: similarity temperature ``> 0`` (0.1 in the paper).
        max_size: pool to at most this many cells per side; None (the official code): no such pooling.
        pool_from: pool 4x4 when both sides are at least this (CIRKD at HEAD: 256); None: never.
        softmax_over: ``"image_pair"`` or ``"batch"`` (see above).
        align: how a resolution mismatch is resolved (see ``distill.kd.losses.alignment``).
    """

    name: ClassVar[str] = "cirkd"

    def __init__(
        self,
        tau: float = 0.1,
        max_size: int | None = None,
        softmax_over: str = "image_pair",
        align: AlignMode = "upsample_student",
        pool_from: int | None = None,
    ) -> None:
        super().__init__(align)
        if pool_from is not None and pool_from < 4:
            raise ValueError(f"cirkd: pool_from must be >= 4 or None; got {pool_from}")
        if tau <= 0:
            raise ValueError(f"cirkd: tau must be > 0; got {tau}")
        if max_size is not None and max_size < 1:
            raise ValueError(f"cirkd: max_size must be >= 1 or None; got {max_size}")
        if softmax_over not in SOFTMAX_SCOPES:
            raise ValueError(f"cirkd: softmax_over must be one of {', '.join(SOFTMAX_SCOPES)}; got {softmax_over!r}")
        self.tau = float(tau)
        self.max_size = max_size
        self.pool_from = pool_from
        self._checked: tuple | None = None  # the (rows, bytes, device) whose memory was checked
        self.softmax_over = softmax_over

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Takes feature maps or logits: ``student [B, Ds, H, W]``, ``teacher [B, Dt, H', W']``."""
        student, teacher, valid = align_maps(student_logits, teacher_logits, valid_mask, self.align)
        if self.pool_from is not None and min(student.shape[-2:]) >= self.pool_from:
            student, teacher, valid = _pool_4x4(student, teacher, valid)
        f_s, cells = self._pool(student, valid)  # [B, P, Ds], [B, P]
        f_t, _ = self._pool(teacher, valid)
        self._check_memory(f_s)
        if self.softmax_over == "batch":  # the whole batch is one "image"
            f_s, f_t, cells = f_s.flatten(0, 1)[None], f_t.flatten(0, 1)[None], cells.flatten()[None]
        columns = cells[None, None]  # [1, 1, G, P]: pixel b of image j
        image_valid = cells.any(dim=1)[None, None, :, None]  # [1, 1, G, 1]
        hidden = ~columns & image_valid  # an image without valid cells keeps a finite softmax
        log_q_s = F.log_softmax(self._similarity(f_s).masked_fill(hidden, float("-inf")), dim=3)
        log_q_t = F.log_softmax(self._similarity(f_t).masked_fill(hidden, float("-inf")), dim=3)
        log_ratio = torch.where(columns, log_q_t - log_q_s, 0.0)
        kl_rows = (log_q_t.exp() * log_ratio).sum(dim=3)  # [G, P, G]: row (i, a) against image j
        rows = cells[:, :, None] & image_valid[0, 0, :, 0][None, None]
        return (kl_rows * rows).sum() / rows.sum().clamp_min(1)

    def _pool(self, features: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked average pooling to at most ``max_size`` per side, then unit-normalised ``[B, P, D]``."""
        if self.max_size is not None:
            height, width = features.shape[-2:]
            size = (min(height, self.max_size), min(width, self.max_size))
            features, valid = _masked_pool(features, valid, lambda maps: F.adaptive_avg_pool2d(maps, size))
        unit = F.normalize((features * valid[:, None]).flatten(2), dim=1).transpose(1, 2)
        return unit, valid.flatten(1)

    def _check_memory(self, features: torch.Tensor) -> None:
        """The similarity matrices' size against the device's free memory, once per shape and device."""
        rows = features.shape[0] * features.shape[1]
        key = (rows, features.element_size(), str(features.device))
        if key != self._checked:
            check_allocation(
                6 * rows * rows * features.element_size(),
                f"cirkd's pixel similarities ({rows:,} x {rows:,})",
                "pool the maps first, e.g. --set kd_params.cirkd.max_size=32",
                device=features.device,
            )
            self._checked = key

    def _similarity(self, features: torch.Tensor) -> torch.Tensor:
        """``S[i, a, j, b] = f_{i,a} . f_{j,b} / tau`` for ``features [G, P, D]``."""
        return torch.einsum("iad,jbd->iajb", features, features) / self.tau


def _masked_pool(
    maps: torch.Tensor, valid: torch.Tensor, pool: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``pool`` averaging over valid pixels only; a cell is valid if it covers one."""
    weight = valid[:, None].to(maps.dtype)
    covered = pool(weight)  # the share of valid pixels per cell
    return pool(maps * weight) / covered.clamp_min(1e-12), covered[:, 0] > 0


def _pool_4x4(
    student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CIRKD's ``AvgPool2d(4, stride 4, ceil_mode=True)``, over valid pixels only."""

    def pool(maps: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(maps, 4, 4, ceil_mode=True)

    student, cells = _masked_pool(student, valid, pool)
    teacher, _ = _masked_pool(teacher, valid, pool)
    return student, teacher, cells
