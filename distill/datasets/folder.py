"""Your own data: ``images/`` + ``labels/`` with matching stems, and a taxonomy."""

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
from distill.datasets.label_mapping import LabelMapping
from distill.datasets.segmentation_dataset import FilePairDataset
from prompt_kit.errors import PromptKitError
from prompt_kit.taxonomy import Taxonomy, load_taxonomy

LAYOUT = "PATH/images/ and PATH/labels/ (same stems), or PATH/train/{images,labels}/ and PATH/val/{images,labels}/"


class FolderDataset(FilePairDataset):
    """Images and one-channel label PNGs that already hold the taxonomy's ids and ignore index.

    Split: if ``PATH/train`` and ``PATH/val`` both exist they are the split roots; otherwise
    ``PATH/images`` is split deterministically (every 5th image in sorted order is val).
    Taxonomy: ``PATH/classes.yaml`` if present, else the caller's. If both are given they must
    agree on classes and ignore index (a silent choice between two would be a guess).
    """

    reader_name = "folder"
    splits = ("train", "val")

    def __init__(self, root: str | Path, split: str = "train", taxonomy: Taxonomy | None = None) -> None:
        root = Path(root)
        if split not in self.splits:
            raise PromptKitError(f"folder has no split {split!r}; choose one of {', '.join(self.splits)}")
        context = f"folder {split} ({root})"
        require_folder(root, context, LAYOUT)
        taxonomy = _folder_taxonomy(root, taxonomy, context)
        split_roots = (root / "train").is_dir() and (root / "val").is_dir()
        base = root / split if split_roots else root
        image_dir = require_folder(base / "images", context, LAYOUT)
        label_dir = require_folder(base / "labels", context, LAYOUT)
        images = index_files(image_dir, IMAGE_SUFFIXES, _stem)
        labels = index_files(label_dir, LABEL_SUFFIXES, _stem)
        files = pair_files(images, labels, root, context, image_dir, label_dir)
        if not split_roots:
            files = every_nth_split(files, split)
        super().__init__("folder", split, taxonomy, root, files, LabelMapping.identity(taxonomy))

    @classmethod
    def from_spec(cls, argument: str, split: str, taxonomy: Taxonomy | None) -> FolderDataset:
        """``folder:PATH``."""
        return cls(Path(argument).expanduser(), split, taxonomy)


def _folder_taxonomy(root: Path, taxonomy: Taxonomy | None, context: str) -> Taxonomy:
    classes_file = root / "classes.yaml"
    own = load_taxonomy(classes_file) if classes_file.is_file() else None
    if own is None and taxonomy is None:
        raise PromptKitError(f"{context}: no classes.yaml in the folder; add one or pass a taxonomy (--classes FILE)")
    if own is not None and taxonomy is not None:
        if (own.class_names, own.ignore_index) != (taxonomy.class_names, taxonomy.ignore_index):
            raise PromptKitError(
                f"{context}: {classes_file} and the taxonomy {taxonomy.name!r} passed in disagree on classes "
                "or ignore index; pass none or a matching one"
            )
        return taxonomy
    return own if own is not None else taxonomy


def _stem(path: Path) -> str:
    return path.stem
