"""DeepLab teachers: the teacher-size networks the source systems teach with (DIST, CIRKD, incremental learning).

- ``deeplabv3_resnet50`` / ``deeplabv3_resnet101``: torchvision's DeepLabV3 (output stride 8, ASPP
  rates 12/24/36), the DIST/CIRKD teacher. Built with ``weights=None``; its module names are
  torchvision's (``backbone.*``, ``classifier.*``), so a torchvision-style state dict of a trained
  model loads as it is (``init_weights``), and a torchvision ResNet ImageNet file loads into the
  backbone (``student_pretrained``).
- ``deeplabv3plus_resnet101``: DeepLabV3+ (the incremental-learning work's model) from
  segmentation-models-pytorch, ResNet-101 encoder at output stride 16; input sides must be
  multiples of 16.

No weights ship offline for these; they train from random init here, or load a user's
checkpoint. EfficientNet-Lite2 (``networks.efficientnet_lite``) is the teacher-size network with
offline ImageNet weights; SegFormer-B2 (``networks.segformer``) the transformer one.
"""

from __future__ import annotations

import torch

from networks.base import SegmentationNetwork
from networks.feature_info import feature_maps


class TorchvisionDeepLabV3(SegmentationNetwork):
    """torchvision's ``deeplabv3_resnet{50,101}``: dilated ResNet (stride 8) + DeepLabHead.

    ``"decoder"`` is the head's 256-channel map before its last 1x1 convolution; ``"encoder"`` the
    backbone's 2048-channel ``layer4`` output. The auxiliary FCN head is not built (a checkpoint's
    ``aux_classifier.*`` tensors are skipped on load).
    """

    depth: int = 101
    checkpoint_ignored_prefixes = ("aux_classifier.",)

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        from torchvision.models.segmentation import deeplabv3_resnet50, deeplabv3_resnet101

        build = deeplabv3_resnet101 if self.depth == 101 else deeplabv3_resnet50
        model = build(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
        self.num_classes = num_classes
        self.backbone = model.backbone
        self.classifier = model.classifier
        self.feature_info = feature_maps(encoder=(2048, 8), decoder=(256, 8))

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        encoded = self.backbone(images)["out"]
        decoded = encoded
        *head, classifier = list(self.classifier)  # DeepLabHead cannot be sliced (it is rebuilt without num_classes)
        for layer in head:
            decoded = layer(decoded)
        return classifier(decoded), {"encoder": encoded, "decoder": decoded}


class DeepLabV3ResNet50(TorchvisionDeepLabV3):
    """DeepLabV3-ResNet50 (torchvision)."""

    depth = 50


class DeepLabV3ResNet101(TorchvisionDeepLabV3):
    """DeepLabV3-ResNet101 (torchvision): the DIST/CIRKD teacher."""

    depth = 101


class DeepLabV3PlusResNet101(SegmentationNetwork):
    """DeepLabV3+ (Chen et al., 2018) from segmentation-models-pytorch, ResNet-101 encoder, output stride 16.

    ``backbone`` is smp's ResNet encoder (torchvision's key names, so a torchvision ResNet-101
    ImageNet file loads into it). ``"decoder"`` is the 256-channel decoder output at stride 4; the
    logits are its 1x1 convolution (smp's x4 upsampling is left to the base class).
    """

    input_multiple = 16
    # a checkpoint of smp's own DeepLabV3Plus (encoder.*, decoder.*, segmentation_head.0.*) loads as it is
    checkpoint_key_renames = (("encoder.", "backbone."), ("segmentation_head.0.", "classifier."))

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        model = smp.DeepLabV3Plus(encoder_name="resnet101", encoder_weights=None, classes=num_classes)
        self.num_classes = num_classes
        self.backbone = model.encoder
        self.decoder = model.decoder
        self.classifier = model.segmentation_head[0]
        self.feature_info = feature_maps(
            encoder=(self.backbone.out_channels[-1], 16), decoder=(self.classifier.in_channels, 4)
        )

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        height, width = images.shape[-2:]
        if height % self.input_multiple or width % self.input_multiple:
            raise ValueError(
                f"deeplabv3plus_resnet101 needs image sides that are multiples of {self.input_multiple}, "
                f"got {height}x{width}"
            )
        features = self.backbone(images)
        decoded = self.decoder(features)
        return self.classifier(decoded), {"encoder": features[-1], "decoder": decoded}


__all__ = ["DeepLabV3PlusResNet101", "DeepLabV3ResNet50", "DeepLabV3ResNet101"]
