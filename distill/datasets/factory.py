"""``create_dataset("camvid:PATH", "train")``: one entry point for every reader, by name."""

from __future__ import annotations

from distill.datasets.camvid import CamVidDataset
from distill.datasets.cityscapes import CityscapesDataset
from distill.datasets.folder import FolderDataset
from distill.datasets.kitti import KittiDataset
from distill.datasets.segmentation_dataset import SegmentationDataset
from distill.datasets.synthetic import SyntheticStreets
from distill.datasets.taxonomy_choice import resolve_taxonomy
from prompt_kit.errors import PromptKitError
from prompt_kit.taxonomy import Taxonomy

_READER_LIST = [CamVidDataset, KittiDataset, CityscapesDataset, FolderDataset, SyntheticStreets]
READERS = {reader.reader_name: reader for reader in _READER_LIST}
SPEC_EXAMPLES = {
    "camvid": "camvid:PATH",
    "kitti": "kitti:PATH",
    "cityscapes": "cityscapes:PATH",
    "folder": "folder:PATH",
    "synthetic": "synthetic[:count=200,size=128x176,seed=0]",
}


def list_datasets() -> list[str]:
    """Reader names ``create_dataset`` accepts."""
    return sorted(READERS)


def create_dataset(spec: str, split: str = "train", taxonomy: Taxonomy | str | None = None) -> SegmentationDataset:
    """A dataset from ``NAME:ARGUMENT`` (a path, or options for ``synthetic``).

    Args:
        spec: ``camvid:PATH``, ``kitti:PATH``, ``cityscapes:PATH``, ``folder:PATH`` or
            ``synthetic[:count=N,size=HxW,seed=S]``.
        split: ``train`` or ``val`` (CamVid and synthetic also ``test``).
        taxonomy: a ``Taxonomy``, a built-in name or a file. Required for ``folder`` without a
            ``classes.yaml``; for ``kitti``/``cityscapes`` it picks ``cityscapes`` (default) or
            ``kitti11``; for the others it must match their built-in taxonomy.

    Returns:
        A ``SegmentationDataset``; unknown names and bad paths raise ``PromptKitError``.
    """
    name, _, argument = spec.partition(":")
    name = name.strip().lower()
    if name not in READERS:
        raise PromptKitError(f"unknown dataset {spec!r}; choose one of {', '.join(SPEC_EXAMPLES[n] for n in READERS)}")
    if name != "synthetic" and not argument.strip():
        raise PromptKitError(f"dataset {name} needs a path: {SPEC_EXAMPLES[name]}")
    return READERS[name].from_spec(argument.strip(), split, resolve_taxonomy(taxonomy))
