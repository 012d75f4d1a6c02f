"""Students by name: a plain dict of constructors, ``create_student`` and ``list_students``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from student.base import SegmentationStudent
from student.efficientnet_lite import EfficientNetLite0
from student.segformer import SegFormerB0
from student.tiny import TinyStudent
from student.torchvision_students import (
    DeepLabV3MobileNetV2,
    DeepLabV3ResNet18,
    LRASPPMobileNetV3,
    PSPNetResNet18,
)

# name -> constructor taking num_classes. A new student is one line here (and tested at once).
STUDENTS: dict[str, Callable[[int], SegmentationStudent]] = {
    "deeplabv3_resnet18": DeepLabV3ResNet18,
    "pspnet_resnet18": PSPNetResNet18,
    "deeplabv3_mobilenetv2": DeepLabV3MobileNetV2,
    "lraspp_mobilenetv3": LRASPPMobileNetV3,
    "segformer_b0": SegFormerB0,
    "efficientnet_lite0": EfficientNetLite0,
    "tiny": TinyStudent,
}


def list_students() -> list[str]:
    """The names :func:`create_student` accepts, sorted."""
    return sorted(STUDENTS)


def create_student(name: str, num_classes: int, pretrained: str | Path | None = None) -> SegmentationStudent:
    """Build a segmentation student.

    Args:
        name: one of :func:`list_students`.
        num_classes: number of output channels (classes), at least 1.
        pretrained: ``None`` for random initialisation; ``"imagenet"`` for ImageNet weights that
            ship offline (only ``efficientnet_lite0``); or the path of a local state dict
            (``.safetensors``, ``.pt``, ``.pth``) loaded into the student's backbone by name
            (``segformer_b0`` also takes a local transformers folder). Nothing is downloaded.

    Returns:
        The student: ``student(images)`` gives logits ``[B, num_classes, H, W]``.

    Raises:
        ValueError: an unknown name (the message lists the valid ones), ``num_classes < 1``, "imagenet"
            for a student without offline weights, or weights that do not fit the backbone.
        FileNotFoundError: ``pretrained`` names no file.
    """
    if name not in STUDENTS:
        raise ValueError(f"unknown student {name!r}; valid names: {', '.join(list_students())}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    model = STUDENTS[name](num_classes)
    if pretrained == "imagenet":
        model.load_imagenet_weights()
    elif pretrained is not None:
        model.load_backbone_weights(pretrained)
    return model
