"""Images nobody labelled, alone or mixed with a labelled dataset: ``images:PATH`` and ``SPEC+SPEC``.

``images:PATH`` reads every image file under ``PATH`` (recursively) with a label of the ignore
id everywhere: a student trained on it learns only from its teacher (KD masks such images by
the teacher's own confidence, ``unlabelled_kd_confidence``). It has no classes of its own, so it
comes mixed with a labelled dataset, ``camvid:DATA+images:PHOTOS``, whose taxonomy it takes: the
train split is every part's, the val and test splits are the labelled parts' only (nothing can
be evaluated on unlabelled images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distill.datasets.file_pairs import IMAGE_SUFFIXES
from distill.datasets.segmentation_dataset import SegmentationDataset, read_image_array
from prompt_kit.errors import PromptKitError
from prompt_kit.taxonomy import Taxonomy


class UnlabelledImages(SegmentationDataset):
    """Every image under a folder, each with an all-ignore label."""

    reader_name = "images"
    splits = ("train",)
    labelled = False

    def __init__(self, root: str | Path, split: str = "train", taxonomy: Taxonomy | None = None) -> None:
        root = Path(root)
        if split != "train":
            raise PromptKitError(f"images:{root} has no labels: it has no {split} split to evaluate on")
        if taxonomy is None:
            raise PromptKitError(
                f"images:{root} has no classes of its own: mix it with a labelled dataset (camvid:DATA+images:{root})"
            )
        if not root.is_dir():
            raise PromptKitError(f"images:{root}: no such folder")
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise PromptKitError(f"images:{root}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.name = "images"
        self.split = split
        self.taxonomy = taxonomy
        self.root = root
        self.images = files
        self.files = []  # no (image, label) pairs

    @classmethod
    def from_spec(cls, argument: str, split: str, taxonomy: Taxonomy | None) -> UnlabelledImages:
        return cls(argument, split, taxonomy)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = read_image_array(self.images[index])
        label = np.full(image.shape[:2], self.ignore_index, dtype=np.int64)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous().float().div_(255.0), torch.from_numpy(label)

    def is_labelled(self, index: int) -> bool:
        return False

    def validate(self, max_files: int | None = None) -> None:
        step = max(1, len(self.images) // max_files) if max_files else 1
        for path in self.images[::step]:
            read_image_array(path)


class MixedDataset(SegmentationDataset):
    """Several datasets of one taxonomy, one after the other; each sample knows whether it is labelled."""

    def __init__(self, parts: list[SegmentationDataset], name: str) -> None:
        taxonomies = {(tuple(p.taxonomy.class_names), p.taxonomy.ignore_index) for p in parts}
        if len(taxonomies) != 1:
            raise PromptKitError(f"{name}: the mixed datasets have other classes; mix datasets of one taxonomy")
        self.parts = parts
        self.name = name
        self.split = parts[0].split
        self.taxonomy = parts[0].taxonomy
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.files = [pair for part in parts for pair in part.files] if all(p.files for p in parts) else []

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _locate(self, index: int) -> tuple[SegmentationDataset, int]:
        index = range(len(self))[index]
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.parts[part], index - int(self.offsets[part])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        part, local = self._locate(index)
        return part[local]

    def is_labelled(self, index: int) -> bool:
        part, local = self._locate(index)
        return is_labelled(part, local)

    def validate(self, max_files: int | None = None) -> None:
        for part in self.parts:
            part.validate(max_files)


def is_labelled(dataset: SegmentationDataset, index: int) -> bool:
    """Whether sample ``index`` has labels (readers that read label files always do)."""
    check = getattr(dataset, "is_labelled", None)
    return True if check is None else bool(check(index))


def has_unlabelled(dataset: SegmentationDataset) -> bool:
    """Whether any sample of ``dataset`` is unlabelled."""
    if isinstance(dataset, UnlabelledImages):
        return True
    if isinstance(dataset, MixedDataset):
        return any(has_unlabelled(part) for part in dataset.parts)
    inner = getattr(dataset, "dataset", None)  # a holdout subset
    return inner is not None and has_unlabelled(inner)


__all__ = ["MixedDataset", "UnlabelledImages", "has_unlabelled", "is_labelled"]
