"""``create_dataset("camvid:PATH", "train")``: one entry point for every reader, by name."""

from __future__ import annotations

import re

from distill.datasets.camvid import CamVidDataset
from distill.datasets.cityscapes import CityscapesDataset
from distill.datasets.folder import FolderDataset
from distill.datasets.kitti import KittiDataset
from distill.datasets.remapped import remapped, split_map_options
from distill.datasets.segmentation_dataset import SegmentationDataset
from distill.datasets.synthetic import SyntheticStreets
from distill.datasets.taxonomy_choice import resolve_taxonomy
from distill.datasets.unlabelled import MixedDataset, UnlabelledImages
from prompt_kit.errors import PromptKitError
from prompt_kit.taxonomy import Taxonomy

_READER_LIST = [CamVidDataset, KittiDataset, CityscapesDataset, FolderDataset, SyntheticStreets, UnlabelledImages]
READERS = {reader.reader_name: reader for reader in _READER_LIST}
SPEC_EXAMPLES = {
    "camvid": "camvid:PATH",
    "kitti": "kitti:PATH",
    "cityscapes": "cityscapes:PATH",
    "folder": "folder:PATH",
    "synthetic": "synthetic[:count=200,size=128x176,seed=0]",
    "images": "images:PATH (unlabelled, mixed: camvid:DATA+images:PATH)",
}


def list_datasets() -> list[str]:
    """Reader names ``create_dataset`` accepts."""
    return sorted(READERS)


def create_dataset(spec: str, split: str = "train", taxonomy: Taxonomy | str | None = None) -> SegmentationDataset:
    """A dataset from ``NAME:ARGUMENT`` (a path, or options for ``synthetic``).

    Args:
        spec: ``camvid:PATH``, ``kitti:PATH``, ``cityscapes:PATH``, ``folder:PATH`` or
            ``synthetic[:count=N,size=HxW,seed=S]``; ``A+images:B`` mixes in unlabelled images;
            ``SPEC@map=FILE.csv,to=TAXONOMY`` reads the labels in another label space
            (``distill.datasets.remapped``).
        split: ``train`` or ``val`` (CamVid and synthetic also ``test``).
        taxonomy: a ``Taxonomy``, a built-in name or a file. Required for ``folder`` without a
            ``classes.yaml``; for ``kitti``/``cityscapes`` it picks ``cityscapes`` (default) or
            ``kitti11``; for the others it must match their built-in taxonomy.

    Returns:
        A ``SegmentationDataset``; unknown names and bad paths raise ``PromptKitError``.
    """
    parts = split_mixed_spec(spec)
    if len(parts) > 1:
        return _mixed_dataset(spec, parts, split, taxonomy)
    base, map_options = split_map_options(spec)
    if map_options is not None:
        target = resolve_taxonomy(map_options["to"])
        wanted = resolve_taxonomy(taxonomy)
        same = wanted is None or (wanted.class_names, wanted.ignore_index) == (target.class_names, target.ignore_index)
        if not same:
            raise PromptKitError(f"{spec}: its labels become {target.name!r}, but {wanted.name!r} was asked for")
        return remapped(create_dataset(base, split), map_options, target, spec)
    name, _, argument = spec.partition(":")
    name = name.strip().lower()
    if name not in READERS:
        raise PromptKitError(f"unknown dataset {spec!r}; choose one of {', '.join(SPEC_EXAMPLES[n] for n in READERS)}")
    if name != "synthetic" and not argument.strip():
        raise PromptKitError(f"dataset {name} needs a path: {SPEC_EXAMPLES[name]}")
    return READERS[name].from_spec(argument.strip(), split, resolve_taxonomy(taxonomy))


def split_mixed_spec(spec: str) -> list[str]:
    """``camvid:A+images:B`` -> ``["camvid:A", "images:B"]``: a ``+`` splits only before a reader's name."""
    names = "|".join(sorted(READERS, key=len, reverse=True))
    return [part for part in re.split(rf"\+(?=(?:{names})(?::|\+|$))", spec) if part]


def _mixed_dataset(spec: str, parts: list[str], split: str, taxonomy) -> SegmentationDataset:
    """The labelled parts (and, for train, the unlabelled ones in their taxonomy) as one dataset."""
    labelled_specs = [part for part in parts if not part.strip().lower().startswith("images:")]
    if not labelled_specs:
        raise PromptKitError(f"{spec}: every part is unlabelled; mix in a labelled dataset for the classes and val")
    labelled = [create_dataset(part, split, taxonomy) for part in labelled_specs]
    if split != "train":
        return labelled[0] if len(labelled) == 1 else MixedDataset(labelled, spec)
    classes = labelled[0].taxonomy
    datasets, pending = [], iter(labelled)
    for part in parts:
        datasets.append(
            create_dataset(part, split, classes) if part.strip().lower().startswith("images:") else next(pending)
        )
    return MixedDataset(datasets, spec)
