"""Small decoders shared by several students: pyramid pooling (PSPNet) and a 3-scale FPN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation


class PyramidPoolingModule(nn.Module):
    """PSPNet's context module (Zhao et al., 2017): pool to ``bins x bins`` grids, 1x1 conv, upsample, concat.

    ``out = concat(x, up(conv(pool_1(x))), ..., up(conv(pool_k(x))))``; each branch has
    ``in_channels / len(bins)`` channels, so the output has ``2 * in_channels``.
    """

    def __init__(self, in_channels: int, bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        branch_channels = in_channels // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(bin_size), Conv2dNormActivation(in_channels, branch_channels, 1))
            for bin_size in bins
        )
        self.out_channels = in_channels + branch_channels * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False) for stage in self.stages]
        return torch.cat([x, *pooled], dim=1)


class FPNDecoder(nn.Module):
    """Feature-pyramid decoder (Lin et al., 2017), reduced to what a small student needs.

    Inputs are encoder maps from fine to coarse (e.g. strides 8, 16, 32). Each gets a 1x1 lateral
    conv-BN to ``channels``; from the coarsest down, ``p_i = lateral_i(c_i) + up(p_{i+1})``; a ReLU and
    two 3x3 conv-BN-ReLU layers (depthwise-separable when ``depthwise``) fuse the finest ``p``. The output
    is ``[B, channels, h_0, w_0]``, at the finest input's resolution.
    """

    def __init__(self, in_channels: Sequence[int], channels: int, depthwise: bool = False) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(
            Conv2dNormActivation(in_ch, channels, 1, activation_layer=None) for in_ch in in_channels
        )
        self.fuse = nn.Sequential(*(_conv3x3(channels, depthwise) for _ in range(2)))
        self.out_channels = channels

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != len(self.laterals):
            raise ValueError(f"FPNDecoder expects {len(self.laterals)} feature maps, got {len(features)}")
        merged = self.laterals[-1](features[-1])
        for index in range(len(features) - 2, -1, -1):  # coarse to fine
            size = features[index].shape[-2:]
            merged = self.laterals[index](features[index]) + F.interpolate(
                merged, size=size, mode="bilinear", align_corners=False
            )
        return self.fuse(F.relu(merged))


def _conv3x3(channels: int, depthwise: bool) -> nn.Module:
    if not depthwise:
        return Conv2dNormActivation(channels, channels, 3)
    return nn.Sequential(
        Conv2dNormActivation(channels, channels, 3, groups=channels),
        Conv2dNormActivation(channels, channels, 1),
    )
