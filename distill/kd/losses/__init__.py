"""Knowledge-distillation losses for semantic segmentation.

Every loss is a :class:`KDLoss` called as ``loss(student_logits, teacher_logits, valid_mask)`` with
logits ``[B, C, H, W]`` and a bool ``valid_mask [B, H, W]`` (False at ignored pixels, None for
all valid); it returns a scalar and treats the teacher as a fixed target (detached). Build one
with ``create_loss("kl", temperature=2.0)``; weighted sums of losses are KD terms (``distill.kd.terms``).
"""

from __future__ import annotations

from distill.kd.losses.alignment import ALIGN_MODES, align_logits, align_maps
from distill.kd.losses.attention_transfer import AttentionTransfer
from distill.kd.losses.base import KDLoss
from distill.kd.losses.cgd import ChannelGroupDivergence
from distill.kd.losses.cirkd import CrossImagePixelPairs
from distill.kd.losses.cwd import ChannelWiseDivergence
from distill.kd.losses.dist import DIST
from distill.kd.losses.kl import KLDivergence
from distill.kd.losses.mse import LogitMSE
from distill.kd.losses.none import NoDistillation
from distill.kd.losses.pixel_selection import KD_PIXELS, kd_pixel_mask
from distill.kd.losses.registry import LOSSES, create_loss, list_losses, loss_class, loss_parameters, parse_kd_spec

__all__ = [
    "ALIGN_MODES",
    "DIST",
    "KD_PIXELS",
    "LOSSES",
    "AttentionTransfer",
    "ChannelGroupDivergence",
    "ChannelWiseDivergence",
    "CrossImagePixelPairs",
    "KDLoss",
    "KLDivergence",
    "LogitMSE",
    "NoDistillation",
    "align_logits",
    "align_maps",
    "create_loss",
    "kd_pixel_mask",
    "list_losses",
    "loss_class",
    "loss_parameters",
    "parse_kd_spec",
]
