"""How the values stored in label PNGs become label ids: a 256-entry lookup table per dataset."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from prompt_kit.taxonomy import Taxonomy, load_taxonomy

# Cityscapes label id (what ``*_gtFine_labelIds.png`` and KITTI's ``semantic/`` store) -> train id.
# The 19 evaluated classes; every other label id (0-6, 9, 10, 14-16, 18, 29, 30) is ignored.
CITYSCAPES_LABEL_TO_TRAIN_ID: dict[int, int] = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}

# Cityscapes label id -> the seed project's 11 KITTI classes (taxonomy ``kitti11``). Rider and
# bicycle both become ``cyclist`` (a parked bicycle too: the label ids cannot tell it apart);
# ``sign`` is the traffic sign only; everything else (wall, terrain, truck, bus, ...) is ignored.
CITYSCAPES_LABEL_TO_KITTI11: dict[int, int] = {
    23: 0,  # sky
    11: 1,  # building
    7: 2,  # road
    8: 3,  # sidewalk
    13: 4,  # fence
    21: 5,  # vegetation
    17: 6,  # pole
    26: 7,  # car
    20: 8,  # traffic sign -> sign
    24: 9,  # person -> pedestrian
    25: 10,  # rider -> cyclist
    33: 10,  # bicycle -> cyclist
}

CITYSCAPES_LABEL_IDS = range(34)  # 0 unlabeled .. 33 bicycle; -1 (license plate) is never written


@dataclass(frozen=True, eq=False)
class LabelMapping:
    """A raw-value -> label-id table and the raw values a label file may legally contain.

    Keeping the two apart lets a reader reject a wrong file (a colour PNG, train ids where label
    ids were expected) instead of quietly mapping its values to "ignore".
    """

    table: np.ndarray  # int64 [256]: raw value -> label id (or the taxonomy's ignore index)
    valid: np.ndarray  # bool [256]: raw values that may occur
    description: str  # what valid values are, for error messages

    @classmethod
    def identity(cls, taxonomy: Taxonomy) -> LabelMapping:
        """Labels that already hold the taxonomy's ids: classes 0..C-1 and the ignore index."""
        valid = np.zeros(256, dtype=bool)
        valid[: taxonomy.num_classes] = True
        if 0 <= taxonomy.ignore_index < 256:
            valid[taxonomy.ignore_index] = True
        description = f"{taxonomy.name} label ids 0..{taxonomy.num_classes - 1} and ignore {taxonomy.ignore_index}"
        return cls(np.arange(256, dtype=np.int64), valid, description)

    @classmethod
    def from_ids(
        cls, mapping: dict[int, int], raw_values: Iterable[int], ignore_index: int, description: str
    ) -> LabelMapping:
        """Map the listed raw values, send every other valid raw value to ``ignore_index``."""
        table = np.full(256, ignore_index, dtype=np.int64)
        for raw, label_id in mapping.items():
            table[raw] = label_id
        valid = np.zeros(256, dtype=bool)
        valid[list(raw_values)] = True
        return cls(table, valid, description)

    def invalid_values(self, raw: np.ndarray) -> list[int]:
        """The distinct values of ``raw`` that no label file of this dataset may contain."""
        if raw.size == 0:
            return []
        # 8-bit labels are the usual case, and a bincount is several times faster than unique
        uint8 = raw.dtype == np.uint8
        present = np.flatnonzero(np.bincount(raw.ravel(), minlength=256)) if uint8 else np.unique(raw)
        return [int(value) for value in present if not (0 <= value < 256 and self.valid[value])]

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Label ids (int64) for a raw label array whose values are all valid."""
        return self.table[raw]


def cityscapes_label_mapping(taxonomy: Taxonomy) -> LabelMapping | None:
    """The table from Cityscapes label ids to ``taxonomy`` (cityscapes or kitti11), or None."""
    targets = {
        "cityscapes": (CITYSCAPES_LABEL_TO_TRAIN_ID, 19),
        "kitti11": (CITYSCAPES_LABEL_TO_KITTI11, 11),
    }
    for name, (mapping, num_classes) in targets.items():
        if taxonomy.num_classes == num_classes and taxonomy.class_names == load_taxonomy(name).class_names:
            return LabelMapping.from_ids(
                mapping, CITYSCAPES_LABEL_IDS, taxonomy.ignore_index, "Cityscapes label ids 0..33"
            )
    return None


def cityscapes_reader_setup(
    reader: str, taxonomy: Taxonomy | None, split: str, splits: tuple[str, ...]
) -> tuple[Taxonomy, LabelMapping]:
    """Taxonomy (default cityscapes) and id mapping for a reader of Cityscapes label ids, split checked."""
    from prompt_kit.errors import PromptKitError

    taxonomy = taxonomy if taxonomy is not None else load_taxonomy("cityscapes")
    mapping = cityscapes_label_mapping(taxonomy)
    if mapping is None:
        raise PromptKitError(
            f"{reader} labels map to the cityscapes or the kitti11 taxonomy; {taxonomy.name!r} matches neither"
        )
    if split not in splits:
        raise PromptKitError(f"{reader} has no split {split!r}; choose one of {', '.join(splits)}")
    return taxonomy, mapping
