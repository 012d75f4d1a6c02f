"""A small, fast CNN student (~0.2 M parameters) for CPU tests and the embedded default.

Small but not a toy: a stride-16 encoder with dilated depthwise blocks and global context (road,
sky and buildings are decided by context as much as by texture), and an FPN decoder at stride 4
so thin classes (poles, signs) survive.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from networks.base import SegmentationNetwork
from networks.decoders import FPNDecoder
from networks.feature_info import feature_maps

STAGE_CHANNELS = (16, 32, 64, 128)  # strides 2, 4, 8, 16
DECODER_CHANNELS = 64


class DepthwiseResidual(nn.Module):
    """``x + pw(dw(x))``: a 3x3 depthwise conv (optionally dilated) and a 1x1 conv, each with BN; ReLU after the sum."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.depthwise = Conv2dNormActivation(channels, channels, 3, groups=channels, dilation=dilation)
        self.pointwise = Conv2dNormActivation(channels, channels, 1, activation_layer=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.pointwise(self.depthwise(x)))


class GlobalContext(nn.Module):
    """``x + conv1x1(mean_hw(x))``: adds an image-level summary to every position (no BN on the 1x1 map)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(x.mean(dim=(2, 3), keepdim=True))


class TinyEncoder(nn.Module):
    """Four stride-2 conv stages (16, 32, 64, 128 channels); the last with dilated blocks and global context."""

    def __init__(self) -> None:
        super().__init__()
        c1, c2, c3, c4 = STAGE_CHANNELS
        self.stem = Conv2dNormActivation(3, c1, 3, stride=2)
        self.stage2 = nn.Sequential(Conv2dNormActivation(c1, c2, 3, stride=2), DepthwiseResidual(c2))
        self.stage3 = nn.Sequential(Conv2dNormActivation(c2, c3, 3, stride=2), DepthwiseResidual(c3))
        self.stage4 = nn.Sequential(
            Conv2dNormActivation(c3, c4, 3, stride=2),
            DepthwiseResidual(c4, dilation=2),
            DepthwiseResidual(c4, dilation=4),
            GlobalContext(c4),
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Return the maps at strides 4, 8 and 16."""
        stride4 = self.stage2(self.stem(images))
        stride8 = self.stage3(stride4)
        return [stride4, stride8, self.stage4(stride8)]


class TinyStudent(SegmentationNetwork):
    """:class:`TinyEncoder` + a depthwise FPN decoder (64 channels, stride 4, ``"decoder"``) + 1x1 classifier."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = TinyEncoder()
        self.decoder = FPNDecoder(STAGE_CHANNELS[1:], DECODER_CHANNELS, depthwise=True)
        self.classifier = nn.Conv2d(DECODER_CHANNELS, num_classes, 1)
        self.feature_info = feature_maps(encoder=(STAGE_CHANNELS[-1], 16), decoder=(DECODER_CHANNELS, 4))

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pyramid = self.backbone(images)
        decoded = self.decoder(pyramid)
        return self.classifier(decoded), {"encoder": pyramid[-1], "decoder": decoded}
