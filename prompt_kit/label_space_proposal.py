"""A label-space mapping proposed from the class prompts: each source class to its most similar targets.

Unifying two datasets' label spaces is done by hand in the systems promptkit grew from (a
"master labels" CSV). The class prompts already say what each class is, so their embeddings
can propose the mapping for a person to review: each source class goes to the target class
whose prompt embedding is most similar (cosine of the pooled, normalised embeddings), below
``min_similarity`` to void, and every row where the best two targets lie within ``close`` of each
other is flagged (a "rider" between "person" and "bicycle"). The proposal is a
:class:`~prompt_kit.label_space.LabelSpaceMap`, written in the master-labels layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from prompt_kit.bounds import check_number
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.label_space import LabelSpaceMap


@dataclass(frozen=True)
class ProposedMatch:
    """One source class's best and second-best target class, with their cosines."""

    source: str
    best: str
    best_score: float
    second: str
    second_score: float
    void: bool  # best_score < min_similarity: mapped to no target
    close: bool  # best and second within the closeness margin: review this row

    @property
    def margin(self) -> float:
        return self.best_score - self.second_score


def propose_label_map(
    source: ClassEmbeddings, target: ClassEmbeddings, min_similarity: float = 0.3, close: float = 0.05
) -> tuple[LabelSpaceMap, list[ProposedMatch]]:
    """The proposed map (each source under its best target, or void) and every source's match for review."""
    check_number(min_similarity, "--min-similarity", -1.0, 1.0, hint="a cosine similarity")
    check_number(close, "--close", 0.0, 2.0, hint="a difference of two cosines")
    if source.pooled.shape[-1] != target.pooled.shape[-1]:
        raise ValueError("source and target embeddings come from different encoders (their dimensions differ)")
    similarity = similarity_matrix(source, target)
    order = similarity.argsort(dim=1, descending=True)
    allowed = np.zeros(tuple(similarity.shape), dtype=bool)
    matches = []
    for index, name in enumerate(source.class_names):
        best, second = int(order[index, 0]), int(order[index, min(1, order.shape[1] - 1)])
        best_score, second_score = float(similarity[index, best]), float(similarity[index, second])
        void = best_score < min_similarity
        if not void:
            allowed[index, best] = True
        matches.append(
            ProposedMatch(
                source=name,
                best=target.class_names[best],
                best_score=round(best_score, 4),
                second=target.class_names[second],
                second_score=round(second_score, 4),
                void=void,
                close=best_score - second_score < close,
            )
        )
    mapping = LabelSpaceMap(tuple(source.class_names), tuple(target.class_names), allowed)
    return mapping, matches


def review_table(matches: list[ProposedMatch]) -> str:
    """The proposal as a Markdown table: best and second target with cosines, and what to look at."""
    lines = ["| source | best target | cosine | second | cosine | review |", "|---|---|---:|---|---:|---|"]
    for match in matches:
        notes = []
        if match.void:
            notes.append("void: no target is similar")
        if match.close:
            notes.append(f"close (margin {match.margin:.3f})")
        lines.append(
            f"| {match.source} | {match.best} | {match.best_score:.3f} | {match.second} | {match.second_score:.3f} | "
            f"{'; '.join(notes)} |"
        )
    return "\n".join(lines)


def similarity_matrix(source: ClassEmbeddings, target: ClassEmbeddings) -> torch.Tensor:
    """Cosines ``[S, T]`` between the pooled class embeddings."""
    return F.normalize(source.pooled.float(), dim=-1) @ F.normalize(target.pooled.float(), dim=-1).T


__all__ = ["ProposedMatch", "propose_label_map", "review_table", "similarity_matrix"]
