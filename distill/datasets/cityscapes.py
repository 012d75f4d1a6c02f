"""Cityscapes fine annotations: ``leftImg8bit/<split>/<city>/`` + ``gtFine/<split>/<city>/``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from distill.datasets.file_pairs import IMAGE_SUFFIXES, LABEL_SUFFIXES, index_files, pair_files, require_folder
from distill.datasets.label_mapping import cityscapes_reader_setup
from distill.datasets.segmentation_dataset import FilePairDataset
from prompt_kit.taxonomy import Taxonomy

LAYOUT = "leftImg8bit/{train,val}/<city>/*_leftImg8bit.png and gtFine/{train,val}/<city>/*_gtFine_labelIds.png"
IMAGE_SUFFIX = "_leftImg8bit"
LABEL_SUFFIX = "_gtFine_labelIds"


class CityscapesDataset(FilePairDataset):
    """Cityscapes ``gtFine`` label ids mapped to the 19 train ids (or to ``kitti11`` if asked).

    Only ``*_gtFine_labelIds.png`` are labels (the colour, instance and polygon files beside them
    are skipped). The test split is not offered: its public labels are placeholders.
    """

    reader_name = "cityscapes"
    splits = ("train", "val")

    def __init__(self, root: str | Path, split: str = "train", taxonomy: Taxonomy | None = None) -> None:
        root = Path(root)
        taxonomy, mapping = cityscapes_reader_setup("cityscapes", taxonomy, split, self.splits)
        context = f"cityscapes {split} ({root})"
        require_folder(root, context, LAYOUT)
        image_dir = require_folder(root / "leftImg8bit" / split, context, LAYOUT)
        label_dir = require_folder(root / "gtFine" / split, context, LAYOUT)
        images = index_files(image_dir, IMAGE_SUFFIXES, _key(image_dir, IMAGE_SUFFIX), recursive=True)
        labels = index_files(label_dir, LABEL_SUFFIXES, _key(label_dir, LABEL_SUFFIX), recursive=True)
        files = pair_files(images, labels, root, context, image_dir, label_dir)
        super().__init__("cityscapes", split, taxonomy, root, files, mapping)

    @classmethod
    def from_spec(cls, argument: str, split: str, taxonomy: Taxonomy | None) -> CityscapesDataset:
        """``cityscapes:PATH``."""
        return cls(Path(argument).expanduser(), split, taxonomy)


def _key(folder: Path, suffix: str) -> Callable[[Path], str | None]:
    """``aachen/aachen_000000_000019`` for both an image and its label; None for other files."""

    def key(path: Path) -> str | None:
        if not path.stem.endswith(suffix):
            return None
        return (path.parent.relative_to(folder) / path.stem[: -len(suffix)]).as_posix()

    return key
