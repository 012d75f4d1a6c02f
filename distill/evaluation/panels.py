"""PNG panels a person looks at: image, ground truth and predictions side by side."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from prompt_kit.files import atomic_write_bytes
from prompt_kit.taxonomy import Taxonomy


def colourise(label: torch.Tensor, taxonomy: Taxonomy) -> np.ndarray:
    """``[H, W]`` label ids -> ``[H, W, 3]`` uint8 in the taxonomy's colours (ignore and unknown: black)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index, info in enumerate(taxonomy.classes):
        palette[index] = info.color
    values = label.detach().cpu().numpy().astype(np.int64)
    values = np.where((values >= 0) & (values < taxonomy.num_classes), values, 255)
    return palette[values]


def image_to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` in [0, 1] -> ``[H, W, 3]`` uint8."""
    return (image.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_panel(path: str | Path, image: torch.Tensor, maps: list[torch.Tensor], taxonomy: Taxonomy) -> Path:
    """One row: the image, then each label map (ground truth, teacher, student...) resized to it."""
    height, width = image.shape[-2:]
    tiles = [image_to_uint8(image)]
    for label in maps:
        if label.shape[-2:] != (height, width):
            label = torch.nn.functional.interpolate(label[None, None].float(), size=(height, width), mode="nearest")[
                0, 0
            ].long()
        tiles.append(colourise(label, taxonomy))
    gap = np.full((height, 4, 3), 255, dtype=np.uint8)
    row = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(row).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())
