"""Students built from torchvision backbones and heads: DeepLabV3, PSPNet and LR-ASPP.

Backbones are torchvision's own classification models built with ``weights=None`` (nothing is
downloaded), with the classifier removed, so their parameter names are torchvision's and a
torchvision ImageNet checkpoint saved on disk loads into ``student.backbone`` as it is.
Output stride 16 throughout (the last stage dilated instead of strided): half the cost of
stride 8, and the usual trade-off for real-time students.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v2, mobilenet_v3_large, resnet18
from torchvision.models.segmentation.deeplabv3 import ASPP
from torchvision.models.segmentation.lraspp import LRASPPHead
from torchvision.ops import Conv2dNormActivation

from networks.base import SegmentationNetwork
from networks.decoders import PyramidPoolingModule
from networks.feature_info import feature_maps

# Atrous rates for output stride 16 (DeepLabV3 paper); torchvision's DeepLabHead uses (12, 24, 36) for stride 8.
ASPP_RATES_OS16 = (6, 12, 18)


def dilate_stage(stage: nn.Module, dilation: int) -> None:
    """Turn a stride-2 stage into a stride-1 stage with dilated convolutions (in place).

    Every stride-2 convolution gets stride 1; every convolution with a kernel larger than 1 gets
    ``dilation`` and the matching padding, so the receptive field grows as before while the
    resolution stays. Parameter shapes do not change, so pretrained weights still load.
    """
    for module in stage.modules():
        if not isinstance(module, nn.Conv2d):
            continue
        if module.stride == (2, 2):
            module.stride = (1, 1)
        if module.kernel_size[0] > 1:
            module.dilation = (dilation, dilation)
            module.padding = (dilation * (module.kernel_size[0] - 1) // 2,) * 2


def _resnet18_os16() -> nn.Module:
    """torchvision ResNet-18, layer4 dilated (output stride 16), without the classifier.

    torchvision's ``replace_stride_with_dilation`` is refused by ResNet-18's BasicBlock, hence
    :func:`dilate_stage`.
    """
    backbone = resnet18(weights=None)
    dilate_stage(backbone.layer4, 2)
    backbone.fc = nn.Identity()
    return backbone


def _resnet_features(backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
    x = backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(images))))
    return backbone.layer4(backbone.layer3(backbone.layer2(backbone.layer1(x))))


class DeepLabV3ResNet18(SegmentationNetwork):
    """DeepLabV3 (Chen et al., 2017): ResNet-18 at output stride 16 + ASPP (torchvision's, rates 6/12/18).

    The head is torchvision's DeepLabHead with rates for stride 16: ASPP -> 3x3 conv-BN-ReLU
    (``"decoder"``, 256 channels) -> 1x1 classifier. ASPP's image-pooling branch has BatchNorm on
    a 1x1 map, so training needs at least 2 images per batch (as in torchvision).
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = _resnet18_os16()
        self.aspp = ASPP(512, ASPP_RATES_OS16, out_channels=256)
        self.decoder = Conv2dNormActivation(256, 256, 3)
        self.classifier = nn.Conv2d(256, num_classes, 1)
        self.feature_info = feature_maps(encoder=(512, 16), decoder=(256, 16))

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        encoded = _resnet_features(self.backbone, images)
        decoded = self.decoder(self.aspp(encoded))
        return self.classifier(decoded), {"encoder": encoded, "decoder": decoded}


class PSPNetResNet18(SegmentationNetwork):
    """PSPNet (Zhao et al., 2017): ResNet-18 at output stride 16 + pyramid pooling (bins 1, 2, 3, 6).

    Head: PPM (512 -> 1024 channels) -> 3x3 conv-BN-ReLU (``"decoder"``, 256) -> dropout 0.1 ->
    1x1 classifier.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = _resnet18_os16()
        self.pyramid_pooling = PyramidPoolingModule(512, bins=(1, 2, 3, 6))
        self.decoder = Conv2dNormActivation(self.pyramid_pooling.out_channels, 256, 3)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(256, num_classes, 1)
        self.feature_info = feature_maps(encoder=(512, 16), decoder=(256, 16))

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        encoded = _resnet_features(self.backbone, images)
        decoded = self.decoder(self.pyramid_pooling(encoded))
        return self.classifier(self.dropout(decoded)), {"encoder": encoded, "decoder": decoded}


class DeepLabV3MobileNetV2(SegmentationNetwork):
    """DeepLabV3 on MobileNetV2 (Sandler et al., 2018): features up to the 320-channel block, stride 16.

    As in the MobileNetV2 paper, the last 1x1 conv to 1280 channels is dropped and the stride-32
    stage is dilated instead; ASPP with 256 channels, rates 6/12/18; then 3x3 conv-BN-ReLU
    (``"decoder"``) and a 1x1 classifier. Same batch-of-2 requirement as DeepLabV3ResNet18.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        backbone = mobilenet_v2(weights=None)
        backbone.features = backbone.features[:18]  # keeps the names features.0 ... features.17
        dilate_stage(backbone.features[14:], 2)
        backbone.classifier = nn.Identity()
        self.backbone = backbone
        self.aspp = ASPP(320, ASPP_RATES_OS16, out_channels=256)
        self.decoder = Conv2dNormActivation(256, 256, 3)
        self.classifier = nn.Conv2d(256, num_classes, 1)
        self.feature_info = feature_maps(encoder=(320, 16), decoder=(256, 16))

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        encoded = self.backbone.features(images)
        decoded = self.decoder(self.aspp(encoded))
        return self.classifier(decoded), {"encoder": encoded, "decoder": decoded}


class LRASPPMobileNetV3(SegmentationNetwork):
    """LR-ASPP (Howard et al., 2019) on MobileNetV3-Large, built as torchvision's ``lraspp_mobilenet_v3_large``.

    torchvision's blocks (dilated MobileNetV3-Large, ``LRASPPHead`` with 128 channels), with the
    backbone kept whole so that its keys match torchvision's MobileNetV3 checkpoints. The head's
    logits are ``low_classifier(low) + high_classifier(up(high'))``, i.e. a 1x1 conv of
    ``concat(up(high'), low)``: that concatenation (168 channels, stride 8) is ``"decoder"``.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        backbone = mobilenet_v3_large(weights=None, dilated=True)
        backbone.classifier = nn.Identity()
        self.backbone = backbone
        features = backbone.features
        # As torchvision's _lraspp_mobilenetv3: C2 (stride 8) is "low", the last block (stride 16) "high".
        stage_indices = [0] + [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)]
        self.low_index = [*stage_indices, len(features) - 1][-4]
        low_channels = features[self.low_index].out_channels
        high_channels = features[-1].out_channels
        self.head = LRASPPHead(low_channels, high_channels, num_classes, inter_channels=128)
        self.feature_info = feature_maps(encoder=(high_channels, 16), decoder=(128 + low_channels, 8))

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = images
        low = x
        for index, block in enumerate(self.backbone.features):
            x = block(x)
            if index == self.low_index:
                low = x
        high = x
        head = self.head
        context = head.cbr(high) * head.scale(high)
        context = F.interpolate(context, size=low.shape[-2:], mode="bilinear", align_corners=False)
        logits = head.low_classifier(low) + head.high_classifier(context)
        return logits, {"encoder": high, "decoder": torch.cat([context, low], dim=1)}
