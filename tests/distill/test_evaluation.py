from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from distill.evaluation.metrics import (
    ConfusionMatrix,
    confusion_matrix,
    iou_per_class,
    mean_iou,
    metrics_dict,
    pixel_accuracy,
)


def reference_confusion(pred, target, num_classes, ignore_index) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(pred.reshape(-1).tolist(), target.reshape(-1).tolist(), strict=True):
        if t != ignore_index:
            matrix[t, p] += 1
    return matrix


def reference_metrics(matrix: np.ndarray) -> tuple[list[float], float, float]:
    """Plain float64 loops: IoU per class (NaN when absent), mean over present classes, accuracy."""
    ious = []
    for c in range(matrix.shape[0]):
        tp = float(matrix[c, c])
        fn = float(sum(matrix[c, p] for p in range(matrix.shape[0]) if p != c))
        fp = float(sum(matrix[t, c] for t in range(matrix.shape[0]) if t != c))
        ious.append(tp / (tp + fp + fn) if tp + fp + fn > 0 else math.nan)
    present = [value for value in ious if not math.isnan(value)]
    accuracy = float(np.trace(matrix)) / float(matrix.sum())
    return ious, sum(present) / len(present), accuracy


def random_batch(seed: int, num_classes: int, ignore_index: int, shape=(2, 9, 13)):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, num_classes, shape, generator=generator)
    pred = torch.where(
        torch.rand(shape, generator=generator) < 0.6, target, torch.randint(0, num_classes, shape, generator=generator)
    )
    target[torch.rand(shape, generator=generator) < 0.15] = ignore_index
    return pred, target


@pytest.mark.parametrize(("seed", "num_classes", "ignore_index"), [(0, 11, 11), (1, 19, 255), (2, 3, 255), (3, 5, 7)])
def test_matches_a_plain_loop_reference(seed, num_classes, ignore_index):
    pred, target = random_batch(seed, num_classes, ignore_index)
    matrix = confusion_matrix(pred, target, num_classes, ignore_index)
    expected = reference_confusion(pred, target, num_classes, ignore_index)
    assert matrix.dtype == torch.int64 and np.array_equal(matrix.numpy(), expected)
    ious, miou, accuracy = reference_metrics(expected)
    np.testing.assert_allclose(iou_per_class(matrix).numpy(), ious, rtol=1e-12, equal_nan=True)
    assert mean_iou(matrix) == pytest.approx(miou, rel=1e-12)
    assert pixel_accuracy(matrix) == pytest.approx(accuracy, rel=1e-12)


def test_rows_are_ground_truth():
    target = torch.tensor([0, 0, 1, 2])
    pred = torch.tensor([0, 1, 1, 1])
    assert confusion_matrix(pred, target, 3, 255).tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_ignored_pixels_count_for_nothing_whatever_was_predicted():
    target = torch.tensor([[0, 1, 255, 255]])
    matrix = confusion_matrix(torch.tensor([[0, 1, 0, 1]]), target, 2, 255)
    assert matrix.tolist() == [[1, 0], [0, 1]]
    assert mean_iou(matrix) == 1.0 and pixel_accuracy(matrix) == 1.0


def test_a_golden_example():
    # truth  0 0 1 1 2 2 ;  prediction 0 1 1 1 2 0
    matrix = confusion_matrix(torch.tensor([0, 1, 1, 1, 2, 0]), torch.tensor([0, 0, 1, 1, 2, 2]), 4, 255)
    ious = iou_per_class(matrix)
    assert ious[:3].tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(ious[3])  # class 3 is nowhere: no IoU, and not in the mean
    assert mean_iou(matrix) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert pixel_accuracy(matrix) == pytest.approx(4 / 6)


def test_a_class_only_predicted_counts_with_iou_zero():
    matrix = confusion_matrix(torch.tensor([0, 2]), torch.tensor([0, 0]), 3, 255)
    assert iou_per_class(matrix)[2] == 0.0 and math.isnan(iou_per_class(matrix)[1])
    assert mean_iou(matrix) == pytest.approx((0.5 + 0.0) / 2)


def test_accumulating_batches_equals_one_big_batch():
    meter = ConfusionMatrix(11, 11)
    preds, targets = zip(*(random_batch(seed, 11, 11) for seed in range(4)), strict=True)
    for pred, target in zip(preds, targets, strict=True):
        meter.update(pred, target)
    whole = confusion_matrix(torch.cat(preds), torch.cat(targets), 11, 11)
    assert torch.equal(meter.compute(), whole)
    meter.reset()
    assert int(meter.compute().sum()) == 0


def test_metrics_dict_is_json_ready():
    names = ["road", "car", "sky"]
    meter = ConfusionMatrix(3, 255)
    meter.update(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]))
    metrics = meter.metrics_dict(names)
    assert set(metrics) == {"miou", "pixel_accuracy", "per_class_iou"}
    assert metrics["per_class_iou"] == {"road": pytest.approx(0.5), "car": pytest.approx(0.5), "sky": None}
    assert metrics["miou"] == pytest.approx(0.5) and metrics["pixel_accuracy"] == pytest.approx(2 / 3)
    json.dumps(metrics, allow_nan=False)
    empty = metrics_dict(torch.zeros(3, 3, dtype=torch.long), names)
    assert empty["miou"] is None and empty["pixel_accuracy"] is None
    json.dumps(empty, allow_nan=False)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), 3, 255)
    with pytest.raises(ValueError, match="argmax"):
        confusion_matrix(torch.zeros(4), torch.zeros(4, dtype=torch.long), 3, 255)
    with pytest.raises(ValueError, match="target has values outside 0..2"):
        confusion_matrix(torch.zeros(2, dtype=torch.long), torch.tensor([0, 5]), 3, 255)
    with pytest.raises(ValueError, match="pred has values outside"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3, 255)
    with pytest.raises(ValueError, match="2 class names"):
        metrics_dict(torch.zeros(3, 3, dtype=torch.long), ["a", "b"])
