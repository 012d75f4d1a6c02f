"""The embedded default dataset: procedurally drawn street scenes in CamVid's 11 classes.

No download, any size, deterministic: scene ``i`` of split ``s`` with seed ``k`` is drawn from
``numpy.random.SeedSequence([k, stream(s), i])``, so the same arguments always give the same
pixels, and train, val and test never share a scene. ``write_synthetic`` saves scenes in the
CamVid (SegNet) layout so they can be inspected and read back with ``camvid:PATH``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from distill.datasets.segmentation_dataset import SegmentationDataset
from distill.datasets.street.scene import DOMAINS, draw_street_scene
from distill.datasets.taxonomy_choice import require_classes
from prompt_kit.bounds import MAX_IMAGES, MAX_SEED, MAX_SIDE
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes
from prompt_kit.taxonomy import Taxonomy

SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}
DEFAULT_COUNTS = {"train": 200, "val": 50, "test": 50}
DEFAULT_SIZE = (128, 176)  # height x width, CamVid's 3:4 aspect
MIN_SIDE = 16
MEMO_BYTES = 512 * 2**20  # drawn scenes kept in memory per dataset: drawing costs more than a tiny student's step


class SyntheticStreets(SegmentationDataset):
    """Street scenes drawn on the fly (about 10 ms each at 128x176), CamVid taxonomy, ignore 11."""

    reader_name = "synthetic"
    splits = tuple(SPLIT_STREAMS)

    def __init__(
        self,
        split: str = "train",
        count: int | None = None,
        size: tuple[int, int] = DEFAULT_SIZE,
        seed: int = 0,
        taxonomy: Taxonomy | None = None,
        domain: str = "source",
    ) -> None:
        if domain not in DOMAINS:
            raise PromptKitError(f"synthetic domain must be one of {', '.join(DOMAINS)}, got {domain!r}")
        if split not in SPLIT_STREAMS:
            raise PromptKitError(f"synthetic has no split {split!r}; choose one of {', '.join(self.splits)}")
        count = DEFAULT_COUNTS[split] if count is None else count
        if count < 1:
            raise PromptKitError(f"synthetic count must be at least 1, got {count}")
        if min(size) < MIN_SIDE:
            raise PromptKitError(f"synthetic size must be at least {MIN_SIDE}x{MIN_SIDE}, got {size[0]}x{size[1]}")
        if not 0 <= seed <= MAX_SEED:
            raise PromptKitError(f"synthetic seed must be an integer in [0, {MAX_SEED}], got {seed}")
        if count > MAX_IMAGES:
            raise PromptKitError(f"synthetic count must be at most {MAX_IMAGES:,}, got {count:,}")
        if max(size) > MAX_SIDE:
            raise PromptKitError(
                f"synthetic size must be at most {MAX_SIDE}x{MAX_SIDE}, got {size[0]}x{size[1]}: is it a typo?"
            )
        self.name = "synthetic"
        self.split = split
        self.taxonomy = require_classes(taxonomy, "camvid", "synthetic")
        self.count = count
        self.size = (int(size[0]), int(size[1]))
        self.seed = seed
        self.domain = domain
        self.files = []
        self._memo: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._memo_limit = max(0, MEMO_BYTES // (self.size[0] * self.size[1] * 4))

    @classmethod
    def from_spec(cls, argument: str, split: str, taxonomy: Taxonomy | None) -> SyntheticStreets:
        """``synthetic`` or ``synthetic:count=200,size=128x176,seed=0,domain=target`` (size is height x width)."""
        options = parse_options(argument)
        return cls(
            split, count=options.count, size=options.size, seed=options.seed, taxonomy=taxonomy, domain=options.domain
        )

    def __len__(self) -> int:
        return self.count

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene ``index`` as uint8 arrays: image ``[H, W, 3]`` and label ``[H, W]`` (shared; do not modify)."""
        if not -self.count <= index < self.count:
            raise IndexError(f"scene {index} out of range for {self.count} scenes")
        index %= self.count
        if index in self._memo:
            return self._memo[index]
        stream = [self.seed, SPLIT_STREAMS[self.split], index] + (
            [DOMAINS.index(self.domain)] if self.domain != "source" else []
        )
        scene = draw_street_scene(self.size[0], self.size[1], np.random.default_rng(stream), self.domain)
        if len(self._memo) < self._memo_limit:
            self._memo[index] = scene  # shared by later reads: callers copy before changing it
        return scene

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.scene(index)
        image_tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous().to(torch.float32).div_(255.0)
        return image_tensor, torch.from_numpy(label.astype(np.int64))

    def __repr__(self) -> str:
        height, width = self.size
        domain = "" if self.domain == "source" else f", domain={self.domain!r}"
        options = f"count={self.count}, size={height}x{width}, seed={self.seed}{domain}"
        return f"SyntheticStreets(split={self.split!r}, {options})"


class SyntheticOptions(NamedTuple):
    """What a ``synthetic:...`` spec may set; ``count`` None means the split's default."""

    count: int | None = None
    size: tuple[int, int] = DEFAULT_SIZE
    seed: int = 0
    domain: str = "source"  # target, night: two shifted domains (distill adapt's test beds)


def parse_options(argument: str) -> SyntheticOptions:
    """``"count=200,size=128x176,seed=0"`` -> ``SyntheticOptions(200, (128, 176), 0)``; any subset."""
    values: dict[str, int | tuple[int, int]] = {}
    for item in filter(None, (part.strip() for part in argument.split(","))):
        key, equals, value = (text.strip() for text in item.partition("="))
        if key not in SyntheticOptions._fields or not equals:
            raise PromptKitError(
                f"synthetic option {item!r} not understood; use key=value with keys "
                f"{', '.join(SyntheticOptions._fields)} (e.g. synthetic:count=200,size=128x176,seed=0)"
            )
        try:
            if key == "size":
                height, width = value.lower().split("x")
                values[key] = (int(height), int(width))
            elif key == "domain":
                if value not in DOMAINS:
                    raise PromptKitError(f"synthetic option domain={value!r}: expected one of {', '.join(DOMAINS)}")
                values[key] = value
            else:
                values[key] = int(value)
        except ValueError:
            expected = "HEIGHTxWIDTH such as 128x176" if key == "size" else "an integer"
            raise PromptKitError(f"synthetic option {key}={value!r}: expected {expected}") from None
    return SyntheticOptions(**values)


def write_synthetic(
    folder: str | Path,
    count_train: int = DEFAULT_COUNTS["train"],
    count_val: int = DEFAULT_COUNTS["val"],
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
) -> Path:
    """Save scenes in the CamVid layout (``train/ trainannot/ val/ valannot/``, PNG) and return the folder.

    The folder must be new or empty: adding to an old one could leave stale scenes that the
    ``camvid:`` reader would pair and train on. Scene ``i`` is written as ``scene_{i:05d}.png``
    and equals ``SyntheticStreets(split, seed=seed, size=size)[i]``.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise PromptKitError(f"{folder} exists and is not an empty folder; choose a new folder for synthetic data")
    for split, count in (("train", count_train), ("val", count_val)):
        dataset = SyntheticStreets(split, count=count, size=size, seed=seed)
        for index in range(count):
            image, label = dataset.scene(index)
            name = f"scene_{index:05d}.png"
            atomic_write_bytes(folder / split / name, _png(image), durable=False)
            atomic_write_bytes(folder / f"{split}annot" / name, _png(label), durable=False)
    return folder


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
