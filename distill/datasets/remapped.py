"""A dataset's labels read in another label space: ``camvid:PATH@map=camvid_to_cityscapes.csv,to=cityscapes``.

The label-space unification work trains one model on several datasets by mapping each one's
labels into a master label space. Here any reader's spec takes ``@map=FILE,to=TAXONOMY``: the
master-labels CSV (``prompt_kit.label_space``, checked against the reader's classes and the
target taxonomy on load) and the taxonomy the labels become. A source class with exactly one
target becomes that target; one under several targets, or under none (void), becomes the
ignore id, because the label alone cannot decide it (``distill pseudo-label --priors`` can).
Mixed with a dataset of the target taxonomy (``camvid:A@map=M,to=cityscapes+cityscapes:B``),
both train one student.
"""

from __future__ import annotations

import torch

from distill.datasets.segmentation_dataset import SegmentationDataset
from distill.datasets.unlabelled import is_labelled
from prompt_kit.errors import PromptKitError
from prompt_kit.label_space import LabelSpaceMap, read_label_map
from prompt_kit.taxonomy import Taxonomy

MAP_OPTIONS = ("map", "to")


class RemappedLabels(SegmentationDataset):
    """``dataset`` with every label passed through ``label_map``; its taxonomy is the map's target one."""

    def __init__(self, dataset: SegmentationDataset, label_map: LabelSpaceMap, taxonomy: Taxonomy, name: str) -> None:
        if tuple(taxonomy.class_names) != tuple(label_map.target_classes):
            raise PromptKitError(f"{name}: the label map's target classes are not taxonomy {taxonomy.name!r}'s")
        self.dataset = dataset
        self.label_map = label_map
        self.taxonomy = taxonomy
        self.name = name
        self.split = dataset.split
        self.files = dataset.files
        self._table = torch.as_tensor(label_map.label_table)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.dataset[index]
        return image, self._table[label.long().clamp(0, 255)]

    def is_labelled(self, index: int) -> bool:
        return is_labelled(self.dataset, index)

    def validate(self, max_files: int | None = None) -> None:
        self.dataset.validate(max_files)


def split_map_options(spec: str) -> tuple[str, dict[str, str] | None]:
    """``camvid:P@map=M,to=T`` -> ``("camvid:P", {"map": "M", "to": "T"})``; without ``@map=``: ``(spec, None)``."""
    base, separator, tail = spec.rpartition("@")
    if not separator or not tail.strip().startswith(tuple(f"{key}=" for key in MAP_OPTIONS)):
        return spec, None
    options: dict[str, str] = {}
    for item in tail.split(","):
        key, equals, value = item.partition("=")
        key = key.strip()
        if key not in MAP_OPTIONS or not equals or not value.strip():
            raise PromptKitError(f"{spec}: {item.strip()!r} is not a label-map option; write @map=FILE.csv,to=TAXONOMY")
        options[key] = value.strip()
    missing = [key for key in MAP_OPTIONS if key not in options]
    if missing:
        raise PromptKitError(f"{spec}: the label map needs {missing[0]}=; write @map=FILE.csv,to=TAXONOMY")
    return base, options


def remapped(dataset: SegmentationDataset, options: dict[str, str], target: Taxonomy, spec: str) -> RemappedLabels:
    """``dataset`` read through the map file ``options["map"]`` into ``target``'s classes."""
    label_map = read_label_map(
        options["map"],
        dataset.taxonomy.class_names,
        target.class_names,
        source_ignore=dataset.ignore_index,
        target_ignore=target.ignore_index,
    )
    return RemappedLabels(dataset, label_map, target, spec)


__all__ = ["RemappedLabels", "remapped", "split_map_options"]
