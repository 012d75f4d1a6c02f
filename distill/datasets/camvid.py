"""CamVid in the SegNet layout: ``train/ trainannot/ val/ valannot/ test/ testannot/``."""

from __future__ import annotations

from pathlib import Path

from distill.datasets.file_pairs import IMAGE_SUFFIXES, LABEL_SUFFIXES, index_files, pair_files, require_folder
from distill.datasets.label_mapping import LabelMapping
from distill.datasets.segmentation_dataset import FilePairDataset
from distill.datasets.taxonomy_choice import require_classes
from prompt_kit.errors import PromptKitError
from prompt_kit.taxonomy import Taxonomy

LAYOUT = "the SegNet layout train/ trainannot/ val/ valannot/ [test/ testannot/], same file names"


class CamVidDataset(FilePairDataset):
    """CamVid, 11 classes (ids 0..10) and 11 = unlabelled, stored as they are in the label PNGs.

    Images and labels pair by file name (``train/0001TP_006690.png`` with
    ``trainannot/0001TP_006690.png``). Works for any folder written in this layout, such as the
    one ``write_synthetic`` makes.
    """

    reader_name = "camvid"
    splits = ("train", "val", "test")

    def __init__(self, root: str | Path, split: str = "train", taxonomy: Taxonomy | None = None) -> None:
        root = Path(root)
        taxonomy = require_classes(taxonomy, "camvid", self.reader_name)
        if split not in self.splits:
            raise PromptKitError(f"camvid has no split {split!r}; choose one of {', '.join(self.splits)}")
        context = f"camvid {split} ({root})"
        require_folder(root, context, LAYOUT)
        image_dir = require_folder(root / split, context, LAYOUT)
        label_dir = require_folder(root / f"{split}annot", context, LAYOUT)
        images = index_files(image_dir, IMAGE_SUFFIXES, _stem)
        labels = index_files(label_dir, LABEL_SUFFIXES, _stem)
        files = pair_files(images, labels, root, context, image_dir, label_dir)
        super().__init__("camvid", split, taxonomy, root, files, LabelMapping.identity(taxonomy))

    @classmethod
    def from_spec(cls, argument: str, split: str, taxonomy: Taxonomy | None) -> CamVidDataset:
        """``camvid:PATH``."""
        return cls(Path(argument).expanduser(), split, taxonomy)


def _stem(path: Path) -> str:
    return path.stem
