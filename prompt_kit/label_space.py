"""Label-space mapping: which source classes belong to each target class, read from a master-labels CSV.

The layout is the label-space unification work's (data-priors): one row per target class,
``target id, target name, source label names...``; the row with target id 255 (void) lists the
source labels that belong to no target class. One source label may sit under several targets
(a "vehicle" source class under both car and truck): the mapping is a boolean matrix
``allowed[source, target]``, not a lookup table. Three uses:

- **remap labels** (:meth:`LabelSpaceMap.remap_labels`): a source label with exactly one target
  becomes that target's id; one with several, or none, becomes the ignore id (it cannot be
  decided from the label alone);
- **priors** (:meth:`LabelSpaceMap.restrict`): target probabilities restricted, pixel by pixel, to
  the targets the pixel's source label allows (pseudo-labels that keep the source annotation's
  knowledge);
- **a teacher in another label space** (:meth:`LabelSpaceMap.target_probabilities`): its
  probabilities summed over the source classes mapped to each target class.

Validation on load names the line and column of every problem: an unknown class name, a
repeated target id, a target whose name disagrees with the target taxonomy.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_text
from prompt_kit.readers import read_text

VOID_ID = 255


def _key(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").split())


@dataclass(frozen=True, eq=False)
class LabelSpaceMap:
    """``allowed[s, t]``: source class ``s`` belongs to target class ``t`` (rows of void sources are all False)."""

    source_classes: tuple[str, ...]
    target_classes: tuple[str, ...]
    allowed: np.ndarray  # bool [S, T]
    source_ignore: int = VOID_ID
    target_ignore: int = VOID_ID

    def __post_init__(self) -> None:
        if self.allowed.shape != (len(self.source_classes), len(self.target_classes)):
            raise ValueError(
                f"allowed is {self.allowed.shape}, expected {len(self.source_classes)} x {len(self.target_classes)}"
            )

    # -- labels -----------------------------------------------------------------------------
    @property
    def label_table(self) -> np.ndarray:
        """int64 ``[256]``: a source label id -> its one target id, or the target ignore id."""
        table = np.full(256, self.target_ignore, dtype=np.int64)
        for source, row in enumerate(self.allowed):
            if row.sum() == 1:
                table[source] = int(np.flatnonzero(row)[0])
        return table

    def remap_labels(self, labels: torch.Tensor | np.ndarray):
        """Source label ids -> target ids (ambiguous, void and ignored sources -> the target ignore id)."""
        table = self.label_table
        if isinstance(labels, torch.Tensor):
            return torch.as_tensor(table, device=labels.device)[labels.long().clamp(0, 255)]
        return table[np.clip(labels, 0, 255)]

    # -- probabilities ----------------------------------------------------------------------
    def restrict(self, probabilities: torch.Tensor, source_labels: torch.Tensor) -> torch.Tensor:
        """Target probabilities ``[B, T, H, W]`` restricted to what each pixel's source label allows, renormalised.

        A pixel whose source label allows no target (void, ignore) gets all zeros: the caller's
        pseudo-label gives it the ignore id.
        """
        allowed = torch.as_tensor(self.allowed, device=probabilities.device, dtype=probabilities.dtype)
        allowed = torch.cat([allowed, allowed.new_zeros(256 - allowed.shape[0], allowed.shape[1])])  # ids >= S: none
        masks = allowed[source_labels.long().clamp(0, 255)].permute(0, 3, 1, 2)  # [B, T, H, W]
        restricted = probabilities * masks
        return restricted / restricted.sum(1, keepdim=True).clamp_min(1e-12)

    def target_probabilities(self, source_probabilities: torch.Tensor) -> torch.Tensor:
        """``[B, S, H, W]`` source-class probabilities -> ``[B, T, H, W]``: each target sums its source classes.

        A source class under several targets counts towards each (as the master-labels file says);
        the result is renormalised, so mass on void sources is dropped rather than kept as "other".
        """
        allowed = torch.as_tensor(self.allowed, device=source_probabilities.device, dtype=source_probabilities.dtype)
        summed = torch.einsum("bshw,st->bthw", source_probabilities, allowed)
        return summed / summed.sum(1, keepdim=True).clamp_min(1e-12)

    # -- files ------------------------------------------------------------------------------
    def to_csv(self) -> str:
        """The data-priors layout: ``target id, target name, source names...``; the void row last."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for target, name in enumerate(self.target_classes):
            writer.writerow([target, name, *(self.source_classes[s] for s in np.flatnonzero(self.allowed[:, target]))])
        void = [self.source_classes[s] for s in range(len(self.source_classes)) if not self.allowed[s].any()]
        writer.writerow([VOID_ID, "void", *void])
        return buffer.getvalue()

    def save(self, path: str | Path) -> Path:
        return atomic_write_text(path, self.to_csv())


def read_label_map(
    path: str | Path,
    source_classes: list[str],
    target_classes: list[str],
    source_ignore: int = VOID_ID,
    target_ignore: int = VOID_ID,
) -> LabelSpaceMap:
    """A master-labels CSV checked against both taxonomies; a problem is one line naming its line and column.

    Class names match case-insensitively, with ``_`` and spaces alike. Every target class needs a
    row (its id and its name as the target taxonomy has them); a source class in no row is void.
    """
    path = Path(path)
    text = read_text(path, "label map").removeprefix("\ufeff")  # a BOM, as spreadsheet programs write it
    sources = {_key(name): index for index, name in enumerate(source_classes)}
    allowed = np.zeros((len(source_classes), len(target_classes)), dtype=bool)
    seen: dict[int, int] = {}
    void_sources: set[int] = set()
    rows = [
        (number, row)
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1)
        if any(c.strip() for c in row)
    ]
    if not rows:
        raise PromptKitError(
            f"{path} is empty: write one row per target class (target id, target name, source names...)"
        )
    if rows[0][1] and not rows[0][1][0].strip().lstrip("-").isdigit():
        rows = rows[1:]  # a header line
    for number, row in rows:
        where = f"{path}, line {number}"
        if len(row) < 2:
            raise PromptKitError(f"{where}: expected target id, target name, source names...; got {row!r}")
        try:
            target = int(row[0].strip())
        except ValueError:
            raise PromptKitError(f"{where}, column 1: target id {row[0]!r} is not an integer") from None
        if target in seen:
            raise PromptKitError(f"{where}, column 1: target id {target} repeats line {seen[target]}")
        seen[target] = number
        if target != VOID_ID:
            if not 0 <= target < len(target_classes):
                raise PromptKitError(
                    f"{where}, column 1: target id {target} is outside 0..{len(target_classes) - 1} "
                    f"and not {VOID_ID} (void)"
                )
            if _key(row[1]) != _key(target_classes[target]):
                raise PromptKitError(
                    f"{where}, column 2: target {target} is {target_classes[target]!r} in the target classes, "
                    f"not {row[1].strip()!r}"
                )
        for column, name in enumerate(row[2:], start=3):
            if not name.strip():
                continue
            source = sources.get(_key(name))
            if source is None:
                raise PromptKitError(
                    f"{where}, column {column}: {name.strip()!r} is not a source class "
                    f"(classes: {', '.join(source_classes)})"
                )
            if target == VOID_ID:
                void_sources.add(source)
            else:
                allowed[source, target] = True
    missing = [name for index, name in enumerate(target_classes) if index not in seen]
    if missing:
        raise PromptKitError(f"{path}: no row for target class {missing[0]!r} (id {target_classes.index(missing[0])})")
    both = [source_classes[s] for s in sorted(void_sources) if allowed[s].any()]
    if both:
        raise PromptKitError(f"{path}: source class {both[0]!r} is both void and mapped to a target class")
    return LabelSpaceMap(tuple(source_classes), tuple(target_classes), allowed, source_ignore, target_ignore)


__all__ = ["VOID_ID", "LabelSpaceMap", "read_label_map"]
