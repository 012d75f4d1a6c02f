"""A weighted sum of KD losses, built from a spec such as ``"kl=1.0,cwd=3.0"``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class WeightedSum(nn.Module):
    """``L = sum_k w_k L_k(student_logits, teacher_logits, valid_mask)``.

    Each term aligns its inputs itself (its own ``align`` option). After a call, ``last_terms``
    holds every term's unweighted value for logging.

    Args:
        terms: ``(name, weight, loss)`` triples; names must be distinct.
    """

    def __init__(self, terms: Sequence[tuple[str, float, nn.Module]]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("WeightedSum needs at least one term")
        self.losses = nn.ModuleDict({name: loss for name, _, loss in terms})
        if len(self.losses) != len(terms):
            raise ValueError(f"WeightedSum terms must have distinct names; got {[name for name, _, _ in terms]}")
        self.weights: dict[str, float] = {name: float(weight) for name, weight, _ in terms}
        self._last_values: dict[str, torch.Tensor] = {}

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        values = {name: loss(student_logits, teacher_logits, valid_mask) for name, loss in self.losses.items()}
        self._last_values = {name: value.detach() for name, value in values.items()}
        weighted = [self.weights[name] * value for name, value in values.items()]
        total = weighted[0]
        for term in weighted[1:]:
            total = total + term
        return total

    @property
    def last_terms(self) -> dict[str, float]:
        """The unweighted value of each term in the last call (empty before the first call).

        Kept as tensors until read, so training steps that do not log pay no device sync.
        """
        return {name: float(value) for name, value in self._last_values.items()}
