"""Finding (image, label) file pairs on disk, with one-line errors when the pairing is broken."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from prompt_kit.errors import PromptKitError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
LABEL_SUFFIXES = frozenset({".png"})  # labels must be lossless

VAL_EVERY = 5  # deterministic split of datasets without a val folder: every 5th image is val


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to the dataset root (what a user recognises), or as given if outside it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def require_folder(folder: Path, context: str, layout: str) -> Path:
    """``folder`` if it is a directory; otherwise an error that shows the expected layout."""
    if not folder.is_dir():
        raise PromptKitError(f"{context}: folder {folder} not found; expected {layout}")
    return folder


def index_files(
    folder: Path, suffixes: Iterable[str], key: Callable[[Path], str | None], recursive: bool = False
) -> dict[str, Path]:
    """Files under ``folder`` by pairing key (``key`` returns None for files that are not data).

    Two files with one key (``a.png`` and ``a.jpg``) would make the pairing a guess: an error.
    """
    allowed = {suffix.lower() for suffix in suffixes}
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    found: dict[str, Path] = {}
    for path in sorted(candidates):
        if path.name.startswith(".") or path.suffix.lower() not in allowed or not path.is_file():
            continue
        name = key(path)
        if name is None:
            continue
        if name in found:
            raise PromptKitError(
                f"{found[name]} and {path} are both sample {name!r}; keep one file per sample in {folder}"
            )
        found[name] = path
    return found


def pair_files(
    images: dict[str, Path],
    labels: dict[str, Path],
    root: Path,
    context: str,
    image_dir: Path,
    label_dir: Path,
) -> list[tuple[Path, Path]]:
    """(image, label) pairs sorted by key; every image needs a label and every label an image."""
    if not images and not labels:
        raise PromptKitError(f"{context}: no images in {display_path(image_dir, root)}; check the dataset path")
    no_label = sorted(set(images) - set(labels))
    no_image = sorted(set(labels) - set(images))
    problems = []
    if no_label:
        problems.append(
            f"{_count(no_label, 'image has', 'images have')} no label file in {display_path(label_dir, root)}, "
            f"first: {display_path(images[no_label[0]], root)}"
        )
    if no_image:
        problems.append(
            f"{_count(no_image, 'label file has', 'label files have')} no image in {display_path(image_dir, root)}, "
            f"first: {display_path(labels[no_image[0]], root)}"
        )
    if problems:
        raise PromptKitError(
            f"{context}: {'; '.join(problems)}; every image needs a label of the same name (and the reverse)"
        )
    return [(images[name], labels[name]) for name in sorted(images)]


def every_nth_split(pairs: list[tuple[Path, Path]], split: str, every: int = VAL_EVERY) -> list[tuple[Path, Path]]:
    """Deterministic split of a sorted list: items ``every-1, 2*every-1, ...`` are val, the rest train.

    Every 5th sample (20%) is spread over the whole sequence, so for video-like datasets (KITTI)
    val covers every scene instead of the last few.
    """
    is_val = [index % every == every - 1 for index in range(len(pairs))]
    want_val = split == "val"
    return [pair for pair, val in zip(pairs, is_val, strict=True) if val == want_val]


def _count(items: list[str], singular: str, plural: str) -> str:
    return f"{len(items)} {singular if len(items) == 1 else plural}"
