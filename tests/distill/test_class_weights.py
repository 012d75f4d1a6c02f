"""Cross-entropy class weights from label frequencies, checked against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from distill.training.class_weights import CLASS_WEIGHTINGS, class_weights_from_counts, label_pixel_counts
from prompt_kit import PromptKitError


class Labels:
    """A dataset of given label maps (images are not read by the weighting)."""

    def __init__(self, labels: list[torch.Tensor]) -> None:
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return torch.zeros(3, *self.labels[index].shape), self.labels[index]


def test_pixel_counts_skip_the_ignore_index():
    data = Labels([torch.tensor([[0, 0, 1], [9, 2, 2]]), torch.tensor([[2, 2, 9], [9, 9, 0]])])
    assert label_pixel_counts(data, num_classes=4, ignore_index=9).tolist() == [3, 1, 4, 0]


def test_median_frequency_weights_match_the_formula():
    counts = torch.tensor([60, 30, 10, 0])
    weights = class_weights_from_counts(counts, "median_frequency")
    frequency = torch.tensor([0.6, 0.3, 0.1])
    expected = frequency.median() / frequency  # median 0.3 -> [0.5, 1, 3]
    expected = expected / (expected * frequency).sum()
    assert torch.allclose(weights[:3], expected, atol=1e-6)
    assert weights[3] == 0  # a class the train labels never show
    assert weights[2] > weights[1] > weights[0]


def test_inverse_sqrt_weights_keep_the_mean_loss_scale():
    counts = torch.tensor([81, 16, 3])
    weights = class_weights_from_counts(counts, "inverse_sqrt_frequency")
    frequency = counts.double() / counts.sum()
    assert float((weights.double() * frequency).sum()) == pytest.approx(1.0, abs=1e-6)
    ratio = (weights[1] / weights[0]).item()
    assert ratio == pytest.approx((81 / 16) ** 0.5, rel=1e-5)


def test_no_weighting_and_bad_names():
    assert class_weights_from_counts(torch.tensor([1, 2]), "none") is None
    with pytest.raises(PromptKitError, match="inverse_sqrt_frequency"):
        class_weights_from_counts(torch.tensor([1, 2]), "balanced")
    with pytest.raises(PromptKitError, match="no"):
        class_weights_from_counts(torch.tensor([0, 0]), "median_frequency")
    assert set(CLASS_WEIGHTINGS) == {"none", "median_frequency", "inverse_sqrt_frequency"}
