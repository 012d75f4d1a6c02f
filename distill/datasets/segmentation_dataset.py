"""The dataset interface every reader implements, and the one that reads (image, label) files."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from distill.datasets.file_pairs import display_path
from distill.datasets.label_mapping import LabelMapping
from prompt_kit.errors import PromptKitError
from prompt_kit.taxonomy import Taxonomy


class SegmentationDataset(Dataset):
    """``dataset[i] -> (image, label)``: image float32 ``[3, H, W]`` in [0, 1], label int64 ``[H, W]``.

    Labels hold the taxonomy's ids (0..C-1) and its ignore index, whatever the files store, so
    a trainer never needs to know which reader it got.
    """

    name: str = ""
    split: str = ""
    taxonomy: Taxonomy
    files: list[tuple[Path, Path]]

    @property
    def ignore_index(self) -> int:
        return self.taxonomy.ignore_index

    @property
    def num_classes(self) -> int:
        return self.taxonomy.num_classes

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def validate(self, max_files: int | None = None) -> None:
        """Raise ``PromptKitError`` if the data cannot be trained on (readers with files override)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, samples={len(self)})"


MEMO_BYTES = 1536 * 2**20  # decoded samples kept per dataset (see FilePairDataset)


class FilePairDataset(SegmentationDataset):
    """Images and label PNGs paired on disk; raw label values go through a ``LabelMapping``.

    Decoded, checked samples are kept in memory (uint8, up to ``MEMO_BYTES`` per dataset; all of
    CamVid's train split is about 1 GiB): training reads each image dozens of times, and decoding
    it again each time would cost more than a small student's train step.
    """

    def __init__(
        self,
        name: str,
        split: str,
        taxonomy: Taxonomy,
        root: Path,
        files: list[tuple[Path, Path]],
        mapping: LabelMapping,
    ) -> None:
        self.name = name
        self.split = split
        self.taxonomy = taxonomy
        self.root = Path(root)
        self.files = list(files)
        self.mapping = mapping
        self._memo: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._memo_bytes = 0

    @property
    def context(self) -> str:
        """How error messages name this dataset: reader, split and root."""
        return f"{self.name} {self.split} ({self.root})"

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = range(len(self.files))[index]  # IndexError out of range, negative indices allowed
        if index in self._memo:
            image, label = self._memo[index]
        else:
            image, label = self._decode(index)
            size = image.nbytes + label.nbytes
            if self._memo_bytes + size <= MEMO_BYTES:
                self._memo[index] = (image, label)  # shared by later reads: never modified in place
                self._memo_bytes += size
        image_tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous().to(torch.float32).div_(255.0)
        return image_tensor, torch.from_numpy(label.astype(np.int64))

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` read and checked: uint8 image ``[H, W, 3]``, mapped label ``[H, W]`` (smallest dtype)."""
        image_path, label_path = self.files[index]
        try:
            image = read_image_array(image_path)
            raw = read_label(label_path)
        except (OSError, PromptKitError) as error:
            raise PromptKitError(f"{self.context}: cannot read sample {index}: {_first_line(error)}") from error
        if raw.shape != image.shape[:2]:
            raise PromptKitError(
                f"{self.context}: {self._show(label_path)} is {_size(raw.shape)} but its image "
                f"{self._show(image_path)} is {_size(image.shape[:2])}; run validate() to list every such file"
            )
        bad = self.mapping.invalid_values(raw)
        if bad:
            raise PromptKitError(
                f"{self.context}: {self._show(label_path)} has values {_values(bad)} outside "
                f"{self.mapping.description}; run validate() to list every such file"
            )
        label = self.mapping(raw)
        if label.size and label.min() >= 0 and label.max() <= 255:
            label = label.astype(np.uint8)
        return image, label

    def validate(self, max_files: int | None = None) -> None:
        """Check label sizes and values of every pair (or ``max_files`` of them, evenly spaced).

        Reads each label PNG (decoding is what costs: CamVid train, 367 files, takes well under a
        second on two cores) but only each image's header. One ``PromptKitError`` names the
        count and the first offender of each kind of problem.
        """
        indices = _spread(len(self.files), max_files)
        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL releases the GIL while decoding
            results = list(pool.map(self._check_pair, indices))
        kinds = {
            "unreadable": "files cannot be read",
            "size": "labels differ in size from their image",
            "values": f"label files have values outside {self.mapping.description}",
        }
        found: dict[str, list[str]] = {kind: [] for kind in kinds}
        for result in results:
            if result is not None:
                found[result[0]].append(result[1])
        details = [
            f"{len(found[kind])} of {len(indices)} {text}, first: {found[kind][0]}"
            for kind, text in kinds.items()
            if found[kind]
        ]
        if details:
            raise PromptKitError(f"{self.context}: {'; '.join(details)}; fix or remove these files before training")

    def _check_pair(self, index: int) -> tuple[str, str] | None:
        """The first problem of one pair as (kind, description), or None."""
        image_path, label_path = self.files[index]
        try:
            with Image.open(image_path) as image:
                width, height = image.size
        except (OSError, Image.DecompressionBombError) as error:
            return "unreadable", f"{self._show(image_path)} ({_first_line(error)})"
        try:
            raw = read_label(label_path)
        except (OSError, PromptKitError) as error:
            return "unreadable", f"{self._show(label_path)} ({_first_line(error)})"
        if raw.shape != (height, width):
            return "size", (
                f"{self._show(label_path)} is {_size(raw.shape)}, {self._show(image_path)} is {width}x{height}"
            )
        bad = self.mapping.invalid_values(raw)
        if bad:
            return "values", f"{self._show(label_path)} (values {_values(bad)})"
        return None

    def _show(self, path: Path) -> str:
        return display_path(path, self.root)


def read_image_array(path: Path) -> np.ndarray:
    """An RGB image file as uint8 ``[H, W, 3]`` (grey and RGBA files become RGB)."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise PromptKitError(f"cannot read image {path} ({_first_line(error)}): fix or remove it") from error


def read_label(path: Path) -> np.ndarray:
    """A one-channel label PNG as an integer array ``[H, W]`` (raw values, not yet mapped)."""
    try:
        with Image.open(path) as image:
            if image.mode not in {"L", "P", "I", "I;16", "I;16B", "I;16L"}:
                raise PromptKitError(
                    f"{path} is a {image.mode} image; label files must be one-channel label ids (PNG mode L or P)"
                )
            return np.array(image)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise PromptKitError(f"cannot read label {path} ({_first_line(error)}): fix or remove it") from error


def _spread(count: int, max_files: int | None) -> list[int]:
    """All indices, or ``max_files`` evenly spaced ones (first and last included)."""
    if max_files is None or max_files >= count:
        return list(range(count))
    if max_files <= 0:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, max_files)})


def _size(shape: tuple[int, ...] | torch.Size) -> str:
    return f"{shape[1]}x{shape[0]}"  # width x height, as image viewers say it


def _values(values: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(value) for value in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
