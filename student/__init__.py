"""Segmentation students for knowledge distillation: ``create_student(name, num_classes, pretrained)``.

Every student maps images ``[B, 3, H, W]`` (normalised with :func:`normalize_images`) to logits
``[B, C, H, W]`` and, with ``return_features=True``, also returns named feature maps
(``"encoder"``, ``"decoder"``) whose channels are in ``student.feature_channels``.
"""

from __future__ import annotations

from student.base import SegmentationStudent
from student.normalization import IMAGENET_MEAN, IMAGENET_STD, normalize_images
from student.registry import (
    NETWORKS,
    STUDENTS,
    TEACHER_NETWORKS,
    create_student,
    list_networks,
    list_students,
    list_teacher_networks,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NETWORKS",
    "STUDENTS",
    "TEACHER_NETWORKS",
    "SegmentationStudent",
    "create_student",
    "list_networks",
    "list_students",
    "list_teacher_networks",
    "normalize_images",
]
