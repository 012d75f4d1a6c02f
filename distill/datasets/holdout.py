"""Keep part of the train split out of training, so choices can be tuned without touching val.

Choosing a setting by its val score and then reporting that val score overstates it. With
``holdout_split(train, count)`` a fixed, seeded set of ``count`` train images becomes the
evaluation set for tuning runs and the rest is trained on; val stays unseen until the final
report.
"""

from __future__ import annotations

import numpy as np
import torch

from distill.datasets.segmentation_dataset import SegmentationDataset
from prompt_kit.errors import PromptKitError

HOLDOUT_SEED = 0  # one fixed draw: every run that holds out N images holds out the same ones


class SubsetDataset(SegmentationDataset):
    """The samples ``indices`` of another dataset, in that order, under a new split name."""

    def __init__(self, dataset: SegmentationDataset, indices: list[int], split: str) -> None:
        self.dataset = dataset
        self.indices = [int(index) for index in indices]
        self.name = dataset.name
        self.split = split
        self.taxonomy = dataset.taxonomy
        self.files = [dataset.files[i] for i in self.indices] if dataset.files else []

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dataset[self.indices[index]]

    def is_labelled(self, index: int) -> bool:
        from distill.datasets.unlabelled import is_labelled

        return is_labelled(self.dataset, self.indices[index])

    def validate(self, max_files: int | None = None) -> None:
        """Checks the whole source dataset: a bad file anywhere in it is worth knowing of."""
        self.dataset.validate(max_files)


def holdout_split(dataset: SegmentationDataset, count: int) -> tuple[SubsetDataset, SubsetDataset]:
    """(the samples to train on, the ``count`` held-out samples), drawn once with a fixed seed.

    Raises:
        PromptKitError: when ``count`` leaves fewer than one training sample.
    """
    if not 0 < count < len(dataset):
        raise PromptKitError(
            f"holdout={count} but {dataset.name} {dataset.split} has {len(dataset)} samples: "
            f"hold out between 1 and {len(dataset) - 1}"
        )
    order = np.random.default_rng(HOLDOUT_SEED).permutation(len(dataset))
    held_out = sorted(order[:count].tolist())
    kept = sorted(order[count:].tolist())
    split = dataset.split
    return SubsetDataset(dataset, kept, f"{split}-minus-holdout"), SubsetDataset(dataset, held_out, f"{split}-holdout")


def training_and_evaluation_data(spec: str, holdout: int = 0) -> tuple[SegmentationDataset, SegmentationDataset]:
    """(train, eval) of a data spec: train and val, or with ``holdout`` the rest of train and its held-out part.

    One function for every trainer, so a teacher and a student tuned with the same ``holdout``
    hold out the same images.
    """
    from distill.datasets import create_dataset

    train_data = create_dataset(spec, "train")
    if holdout:
        return holdout_split(train_data, holdout)
    return train_data, create_dataset(spec, "val")
