"""Datasets shared by the teacher and the students: readers, synthetic streets, paired views.

``create_dataset("camvid:PATH", "train")`` returns a ``SegmentationDataset`` whose items are
``(image float32 [3, H, W] in [0, 1], label int64 [H, W])`` with the taxonomy's ids and ignore
index; ``PairedViews`` turns one into aligned teacher and student crops.
"""

from __future__ import annotations

from distill.datasets.camvid import CamVidDataset
from distill.datasets.cityscapes import CityscapesDataset
from distill.datasets.factory import READERS, create_dataset, list_datasets
from distill.datasets.folder import FolderDataset
from distill.datasets.kitti import KittiDataset
from distill.datasets.label_mapping import (
    CITYSCAPES_LABEL_TO_KITTI11,
    CITYSCAPES_LABEL_TO_TRAIN_ID,
    LabelMapping,
)
from distill.datasets.paired_views import PairedViews, apply_geometry, apply_jitter, params_at
from distill.datasets.segmentation_dataset import FilePairDataset, SegmentationDataset
from distill.datasets.street.scene import draw_street_scene
from distill.datasets.synthetic import SyntheticStreets, write_synthetic

__all__ = [
    "CITYSCAPES_LABEL_TO_KITTI11",
    "CITYSCAPES_LABEL_TO_TRAIN_ID",
    "READERS",
    "CamVidDataset",
    "CityscapesDataset",
    "FilePairDataset",
    "FolderDataset",
    "KittiDataset",
    "LabelMapping",
    "PairedViews",
    "SegmentationDataset",
    "SyntheticStreets",
    "apply_geometry",
    "apply_jitter",
    "create_dataset",
    "draw_street_scene",
    "list_datasets",
    "params_at",
    "write_synthetic",
]
