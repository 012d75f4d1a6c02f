"""The input every student expects: images in [0, 1] normalised with ImageNet mean and std.

Every backbone here was designed (and, where weights exist, pretrained) for ImageNet-normalised
inputs, so callers normalise once with :func:`normalize_images` and students never guess.
"""

from __future__ import annotations

import torch

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """Normalise RGB images in [0, 1] with ImageNet mean/std: ``(images - mean) / std`` per channel.

    Args:
        images: float tensor ``[..., 3, H, W]`` with values in [0, 1].

    Returns:
        A tensor of the same shape, dtype and device.

    Raises:
        ValueError: for integer images or values far above 1 (0-255 images divide by 255 first);
            a model fed those still trains, only badly, so it is refused here.
    """
    if not images.is_floating_point():
        raise ValueError(f"normalize_images expects float images in [0, 1], got dtype {images.dtype}")
    if images.ndim < 3 or images.shape[-3] != 3:
        raise ValueError(f"normalize_images expects images [..., 3, H, W], got shape {list(images.shape)}")
    if images.numel() and float(images.max()) > 1.5:
        raise ValueError(
            f"normalize_images expects images in [0, 1], got a maximum of {float(images.max()):.1f} "
            "(0-255 images: divide by 255 first)"
        )
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(3, 1, 1)
    return (images - mean) / std
