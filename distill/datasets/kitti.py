"""KITTI semantic segmentation: ``training/image_2/*.png`` + ``training/semantic/*.png``."""

from __future__ import annotations

from pathlib import Path

from distill.datasets.file_pairs import (
    IMAGE_SUFFIXES,
    LABEL_SUFFIXES,
    every_nth_split,
    index_files,
    pair_files,
    require_folder,
)
from distill.datasets.label_mapping import cityscapes_reader_setup
from distill.datasets.segmentation_dataset import FilePairDataset
from prompt_kit.taxonomy import Taxonomy

LAYOUT = "training/image_2/*.png and training/semantic/*.png (Cityscapes label ids)"


class KittiDataset(FilePairDataset):
    """KITTI semantics (200 labelled images) mapped to the Cityscapes train ids or to ``kitti11``.

    The label PNGs hold Cityscapes *label ids* (0..33). KITTI has no validation split, so this
    reader makes one: in sorted file order every 5th image (indices 4, 9, 14, ...) is ``val``,
    the rest ``train`` (160 / 40 of the 200). The unlabelled ``testing/`` folder is not read.
    """

    reader_name = "kitti"
    splits = ("train", "val")

    def __init__(self, root: str | Path, split: str = "train", taxonomy: Taxonomy | None = None) -> None:
        root = Path(root)
        taxonomy, mapping = cityscapes_reader_setup("kitti", taxonomy, split, self.splits)
        context = f"kitti {split} ({root})"
        require_folder(root, context, LAYOUT)
        image_dir = require_folder(root / "training" / "image_2", context, LAYOUT)
        label_dir = require_folder(root / "training" / "semantic", context, LAYOUT)
        images = index_files(image_dir, IMAGE_SUFFIXES, _stem)
        labels = index_files(label_dir, LABEL_SUFFIXES, _stem)
        files = every_nth_split(pair_files(images, labels, root, context, image_dir, label_dir), split)
        super().__init__("kitti", split, taxonomy, root, files, mapping)

    @classmethod
    def from_spec(cls, argument: str, split: str, taxonomy: Taxonomy | None) -> KittiDataset:
        """``kitti:PATH``; the taxonomy (default ``cityscapes``) picks the label mapping."""
        return cls(Path(argument).expanduser(), split, taxonomy)


def _stem(path: Path) -> str:
    return path.stem
