"""Held-out train images: a fixed, disjoint split that tuning runs evaluate on instead of val."""

from __future__ import annotations

import pytest
import torch

from distill.datasets import create_dataset
from distill.datasets.holdout import holdout_split
from prompt_kit.errors import PromptKitError


def test_holdout_is_disjoint_complete_and_the_same_every_time():
    data = create_dataset("synthetic:count=20,size=16x24", "train")
    kept, held_out = holdout_split(data, 5)
    assert len(kept) == 15 and len(held_out) == 5
    assert sorted(kept.indices + held_out.indices) == list(range(20))
    assert holdout_split(data, 5)[1].indices == held_out.indices
    assert held_out.indices != [15, 16, 17, 18, 19]  # drawn, not the tail of the file list
    image, label = held_out[2]
    expected_image, expected_label = data[held_out.indices[2]]
    assert torch.equal(image, expected_image) and torch.equal(label, expected_label)
    assert held_out.split == "train-holdout" and kept.split == "train-minus-holdout"
    assert held_out.taxonomy is data.taxonomy


@pytest.mark.parametrize("count", [0, 20, 25])
def test_holdout_that_leaves_nothing_is_refused(count):
    data = create_dataset("synthetic:count=20,size=16x24", "train")
    with pytest.raises(PromptKitError, match="hold out between 1 and 19"):
        holdout_split(data, count)
