"""What a network's named feature maps are, declared once per network (as timm's ``FeatureInfo``).

KD terms pick maps by name (``encoder``, ``decoder``, ...), connectors are sized by channels and
alignment by stride; a network says these in its constructor, so nothing has to run it to know.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FeatureInfo:
    """One named feature map: ``channels`` at ``stride`` (input pixels per map pixel)."""

    name: str
    channels: int
    stride: int


def feature_maps(**maps: tuple[int, int]) -> list[FeatureInfo]:
    """``feature_maps(encoder=(512, 16), decoder=(256, 16))``: the list a network declares."""
    return [FeatureInfo(name, int(channels), int(stride)) for name, (channels, stride) in maps.items()]


def map_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """The side of a map at ``stride`` for an input of ``size``: rounded up, as padded and "same" convolutions do."""
    return (-(-int(size[0]) // stride), -(-int(size[1]) // stride))


@dataclass(frozen=True)
class OutputInfo:
    """What a model returns with ``return_features=True``: ``num_classes`` logits at ``logits_stride`` and
    the named maps of ``features``; enough to size connectors and storage without running it."""

    num_classes: int
    logits_stride: int
    features: tuple[FeatureInfo, ...]

    def placeholders(
        self, size: tuple[int, int], device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Zero tensors of the shapes the model returns for one image of ``size``: ``(logits, features)``."""
        logits = torch.zeros(1, self.num_classes, *map_size(size, self.logits_stride), device=device)
        features = {
            info.name: torch.zeros(1, info.channels, *map_size(size, info.stride), device=device)
            for info in self.features
        }
        return logits, features


__all__ = ["FeatureInfo", "OutputInfo", "feature_maps", "map_size"]
