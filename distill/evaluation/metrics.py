"""Segmentation metrics from a confusion matrix: IoU per class, mean IoU, pixel accuracy.

Rows of the confusion matrix are ground truth, columns predictions; pixels whose target is the
ignore index are not counted. **Mean IoU rule**: a class that appears neither in the targets nor
in the predictions has no IoU (NaN, ``None`` in JSON) and is left out of the mean; a class that
appears in either one counts, with IoU 0 if it was never right. This is the rule of mmseg and
torchmetrics (absent classes excluded) and keeps a class missing from a small val set from
dragging the mean down or up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Counts ``M[t, p]`` of pixels with target class ``t`` predicted as ``p``: int64 ``[C, C]``.

    Args:
        pred: predicted label ids, any shape, values in 0..C-1.
        target: ground-truth label ids, same shape, values in 0..C-1 or ``ignore_index``.
        num_classes: C.
        ignore_index: target value whose pixels are skipped.

    Returns:
        ``torch.bincount(C * t + p)`` reshaped to ``[C, C]``, on ``target``'s device.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError("pred and target must hold integer label ids (take logits.argmax(1) first)")
    valid = target != ignore_index
    target_valid, pred_valid = target[valid].long(), pred[valid].long()
    if target_valid.numel() and (target_valid.min() < 0 or target_valid.max() >= num_classes):
        raise ValueError(f"target has values outside 0..{num_classes - 1} that are not the ignore index {ignore_index}")
    if pred_valid.numel() and (pred_valid.min() < 0 or pred_valid.max() >= num_classes):
        raise ValueError(f"pred has values outside 0..{num_classes - 1}")
    counts = torch.bincount(target_valid * num_classes + pred_valid, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(matrix: torch.Tensor) -> torch.Tensor:
    """``IoU_c = M[c, c] / (sum_p M[c, p] + sum_t M[t, c] - M[c, c])``, float64 ``[C]``, NaN if the class is absent."""
    matrix = matrix.double()
    true_positive = matrix.diagonal()
    union = matrix.sum(1) + matrix.sum(0) - true_positive
    return torch.where(union > 0, true_positive / union.clamp(min=1), torch.full_like(union, math.nan))


def mean_iou(matrix: torch.Tensor) -> float:
    """Mean of ``iou_per_class`` over classes present in target or prediction (NaN if none is)."""
    iou = iou_per_class(matrix)
    present = ~iou.isnan()
    return float(iou[present].mean()) if bool(present.any()) else math.nan


def pixel_accuracy(matrix: torch.Tensor) -> float:
    """``trace(M) / sum(M)``: the share of non-ignored pixels predicted right (NaN if none)."""
    total = int(matrix.sum())
    return float(matrix.diagonal().sum()) / total if total else math.nan


def metrics_dict(matrix: torch.Tensor, class_names: Sequence[str]) -> dict[str, object]:
    """``{"miou", "pixel_accuracy", "per_class_iou": {name: iou}}``, JSON-ready: NaN becomes None."""
    if len(class_names) != matrix.shape[0]:
        raise ValueError(f"{len(class_names)} class names for a {matrix.shape[0]}-class confusion matrix")
    iou = iou_per_class(matrix).tolist()
    return {
        "miou": _json_number(mean_iou(matrix)),
        "pixel_accuracy": _json_number(pixel_accuracy(matrix)),
        "per_class_iou": {name: _json_number(value) for name, value in zip(class_names, iou, strict=True)},
    }


class ConfusionMatrix:
    """A confusion matrix accumulated over batches: ``update(pred, target)`` then ``compute()``."""

    def __init__(self, num_classes: int, ignore_index: int) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of label maps (any matching shapes; see ``confusion_matrix``)."""
        batch = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        self.matrix = self.matrix.to(batch.device) + batch

    def reset(self) -> None:
        self.matrix = torch.zeros_like(self.matrix)

    def compute(self) -> torch.Tensor:
        """The accumulated int64 ``[C, C]`` matrix (rows ground truth), on the CPU."""
        return self.matrix.cpu()

    def metrics_dict(self, class_names: Sequence[str]) -> dict[str, object]:
        """``metrics_dict`` of the accumulated matrix."""
        return metrics_dict(self.compute(), class_names)


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
