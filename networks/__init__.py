"""Segmentation networks by name, shared by students and teachers: ``create_network(name, num_classes, pretrained)``.

Every network maps images ``[B, 3, H, W]`` (normalised with :func:`normalize_images`) to logits
``[B, C, H, W]`` and, with ``return_features=True``, also returns named feature maps
(``"encoder"``, ``"decoder"``) declared in ``network.feature_info`` (channels and stride). Each
registry entry (:class:`NetworkEntry`) says what the network is for (a CPU student or a
teacher-size network) and which ImageNet weights ship for it offline.
"""

from __future__ import annotations

from networks.base import SegmentationNetwork
from networks.feature_info import FeatureInfo, OutputInfo, feature_maps
from networks.normalization import IMAGENET_MEAN, IMAGENET_STD, normalize_images
from networks.registry import (
    NETWORKS,
    STUDENTS,
    TEACHER_NETWORKS,
    NetworkEntry,
    create_network,
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
    "FeatureInfo",
    "NetworkEntry",
    "OutputInfo",
    "SegmentationNetwork",
    "create_network",
    "feature_maps",
    "list_networks",
    "list_students",
    "list_teacher_networks",
    "normalize_images",
]
