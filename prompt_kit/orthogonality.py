"""Inter-class orthogonality metrics: plain typed functions on ``[C, D]`` embedding matrices.

Every metric works on cosine similarities of the class vectors. Raw text-encoder cosines share a
large common component (all prompts look alike to the encoder), so each is also reported after
mean-centring the class vectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _floating(x: torch.Tensor) -> torch.Tensor:
    """Half precision and integers become float32; float32 and float64 stay as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def cos_sim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity matrix ``S[i, j] = a_i . b_j / (|a_i| |b_j|)`` of ``a [N, D]`` and ``b [M, D]``."""
    return F.normalize(_floating(a), dim=-1) @ F.normalize(_floating(b), dim=-1).T


def offdiag(matrix: torch.Tensor) -> torch.Tensor:
    """The ``C (C - 1)`` entries of a square matrix that are not on its diagonal."""
    size = matrix.shape[0]
    return matrix[~torch.eye(size, dtype=torch.bool, device=matrix.device)]


def mean_offdiag(sim: torch.Tensor) -> float:
    """Mean off-diagonal cosine ``sum_{i != j} S_ij / (C (C - 1))``."""
    return float(offdiag(sim).mean())


def max_offdiag(sim: torch.Tensor) -> float:
    """Largest off-diagonal cosine ``max_{i != j} S_ij``: the most confusable pair."""
    return float(offdiag(sim).max())


def centered(embeddings: torch.Tensor) -> torch.Tensor:
    """Class vectors (unit-normalised first) minus their mean: removes the shared component.

    After centring, the mean off-diagonal cosine is close to ``-1 / (C - 1)`` for any set, so
    compare sets by the centred maximum.
    """
    unit = F.normalize(_floating(embeddings), dim=-1)
    return unit - unit.mean(0, keepdim=True)


def min_angle_degrees(sim: torch.Tensor) -> float:
    """Smallest angle between two classes, ``arccos(max_offdiag)`` in degrees."""
    return math.degrees(math.acos(max(-1.0, min(1.0, max_offdiag(sim)))))


def effective_rank(embeddings: torch.Tensor) -> float:
    """``exp(H(p))`` with ``p = s / sum(s)`` over the singular values ``s`` of the unit class vectors.

    Ranges from 1 (all classes on one line) to C (mutually orthogonal classes); Roy & Vetterli 2007.
    """
    singular = torch.linalg.svdvals(F.normalize(embeddings.double(), dim=-1))
    p = singular / singular.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def most_confusable_pairs(sim: torch.Tensor, names: list[str], k: int = 5) -> list[tuple[str, str, float]]:
    """The ``k`` class pairs ``(a, b, cosine)`` with the highest cosine, each unordered pair once."""
    rows, cols = torch.triu_indices(sim.shape[0], sim.shape[0], offset=1)
    values = sim[rows, cols]
    order = torch.argsort(values, descending=True)[:k]
    return [(names[int(rows[i])], names[int(cols[i])], float(values[i])) for i in order]


def nearest_classes(sim: torch.Tensor, names: list[str]) -> list[tuple[str, str, float, float]]:
    """Per class ``(class, nearest other class, its cosine, margin = 1 - that cosine)``."""
    masked = sim.clone().fill_diagonal_(float("-inf"))
    values, indices = masked.max(dim=1)
    return [(names[i], names[int(indices[i])], float(values[i]), 1.0 - float(values[i])) for i in range(len(names))]


@dataclass
class OrthogonalityScores:
    """All figures for one view (pooled or token-level) of one set of class vectors."""

    mean_offdiag: float
    max_offdiag: float
    max_offdiag_centered: float
    mean_offdiag_centered: float
    min_angle_degrees: float
    effective_rank: float
    most_confusable: list[tuple[str, str, float]]
    nearest: list[tuple[str, str, float, float]]
    similarity: torch.Tensor

    def summary(self) -> dict[str, float]:
        return {
            "mean_offdiag": self.mean_offdiag,
            "max_offdiag": self.max_offdiag,
            "max_offdiag_centered": self.max_offdiag_centered,
            "mean_offdiag_centered": self.mean_offdiag_centered,
            "min_angle_degrees": self.min_angle_degrees,
            "effective_rank": self.effective_rank,
        }


def score_vectors(vectors: torch.Tensor, names: list[str], top_k: int = 5) -> OrthogonalityScores:
    """Every orthogonality figure for class vectors ``[C, D]`` named ``names``."""
    if vectors.shape[0] < 2:
        raise ValueError("orthogonality needs at least two classes")
    sim = cos_sim(vectors, vectors)
    centred = centered(vectors)
    sim_centred = cos_sim(centred, centred)
    return OrthogonalityScores(
        mean_offdiag=mean_offdiag(sim),
        max_offdiag=max_offdiag(sim),
        max_offdiag_centered=max_offdiag(sim_centred),
        mean_offdiag_centered=mean_offdiag(sim_centred),
        min_angle_degrees=min_angle_degrees(sim),
        effective_rank=effective_rank(vectors),
        most_confusable=most_confusable_pairs(sim, names, top_k),
        nearest=nearest_classes(sim, names),
        similarity=sim,
    )
