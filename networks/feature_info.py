"""What a network's named feature maps are, declared once per network (as timm's ``FeatureInfo``).

KD terms pick maps by name (``encoder``, ``decoder``, ...), connectors are sized by channels and
alignment by stride; a network says these in its constructor, so nothing has to run it to know.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureInfo:
    """One named feature map: ``channels`` at ``stride`` (input pixels per map pixel)."""

    name: str
    channels: int
    stride: int


def feature_maps(**maps: tuple[int, int]) -> list[FeatureInfo]:
    """``feature_maps(encoder=(512, 16), decoder=(256, 16))``: the list a network declares."""
    return [FeatureInfo(name, int(channels), int(stride)) for name, (channels, stride) in maps.items()]


__all__ = ["FeatureInfo", "feature_maps"]
