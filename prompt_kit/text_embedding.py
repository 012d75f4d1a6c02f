"""What an encoder gives for one text, and what the embedding cache stores."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TextEmbedding:
    """One text: ``tokens [L, D]``, ``mask [L]`` (1 = a real token), ``pooled [D]``."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor


__all__ = ["TextEmbedding"]
