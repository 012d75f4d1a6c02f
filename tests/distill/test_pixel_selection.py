from __future__ import annotations

import pytest
import torch

from distill.kd.losses import kd_pixel_mask

IGNORE = 11


def test_valid_keeps_every_labelled_pixel():
    labels = torch.tensor([[[0, 1], [IGNORE, 2]]])
    logits = torch.randn(1, 3, 2, 2)
    assert kd_pixel_mask(labels, logits, IGNORE, "valid").tolist() == [[[True, True], [False, True]]]


def test_teacher_correct_keeps_labelled_pixels_the_teacher_gets_right_at_the_labels_resolution():
    labels = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, IGNORE, 2], [2, 2, 0, 0]]])
    # teacher at half resolution, predicting 0 | 1 on top and 2 | 2 below: constant 2x2 blocks upsample exactly
    teacher = torch.zeros(1, 3, 2, 2)
    teacher[0, 0, 0, 0] = teacher[0, 1, 0, 1] = teacher[0, 2, 1, 0] = teacher[0, 2, 1, 1] = 5.0
    mask = kd_pixel_mask(labels, teacher, IGNORE, "teacher_correct")
    expected = torch.tensor([[[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 1], [1, 1, 0, 0]]], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="valid, teacher_correct"):
        kd_pixel_mask(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 3, 2, 2), IGNORE, "confident")
