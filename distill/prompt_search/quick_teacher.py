"""The search's objective: how well a set of class vectors teaches a light head on frozen features.

The regime where wording can matter is the seeds' own: a frozen image model under frozen text
embeddings, where only a light head learns and the class vectors decide what the pixel features
are compared with (``class_projection: frozen``; teacher/head.py says why a learned projection
washes the wording out). The quick teacher is that regime at its cheapest: two 3x3 conv blocks on
a :class:`FeatureBank`'s stored maps, then ``EmbeddingClassifier`` with the class vectors frozen.
Its held-out mIoU is the trial's score. ``learn_class_vectors`` trains the class vectors with
the head instead (the upper reference, as CoOp learns its context).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from pydantic import BaseModel

from distill.evaluation.metrics import ConfusionMatrix, iou_per_class, mean_iou
from distill.prompt_search.feature_bank import FeatureBank
from distill.training.class_weights import class_weights_from_counts
from prompt_kit.bounds import STRICT, BatchSize, Channels, LearningRate, PositiveSteps
from teacher.head import EmbeddingClassifier


class QuickTeacherSettings(BaseModel):
    """The head's training: the same for every trial and control of one search."""

    model_config = STRICT

    steps: PositiveSteps = 300
    batch_size: BatchSize = 16
    lr: LearningRate = 3e-3
    hidden: Channels = 128
    eval_every: PositiveSteps = 100


def _norm(channels: int) -> torch.nn.GroupNorm:
    return torch.nn.GroupNorm(math.gcd(8, channels), channels)


class QuickHead(torch.nn.Module):
    """Two 3x3 conv blocks on the backbone map, then cosines with the (frozen) class vectors."""

    def __init__(self, in_channels: int, embedding_dim: int, hidden: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, hidden, 3, padding=1), _norm(hidden), torch.nn.GELU(),
            torch.nn.Conv2d(hidden, hidden, 3, padding=1), _norm(hidden), torch.nn.GELU(),
        )  # fmt: skip
        self.classifier = EmbeddingClassifier(hidden, embedding_dim, embedding_dim, "frozen")

    def forward(self, features: torch.Tensor, class_vectors: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(features.float()), class_vectors)


@dataclass
class QuickTeacherResult:
    """The held-out mIoU after the last step, its per-class IoUs and the mIoU at each evaluation."""

    miou: float
    per_class_iou: list[float]
    history: list[tuple[int, float]] = field(default_factory=list)


def evaluate_head(
    head: QuickHead, bank: FeatureBank, class_vectors: torch.Tensor, num_classes: int, batch_size: int = 32
) -> tuple[float, list[float]]:
    """mIoU and per-class IoU of ``head`` on every row of ``bank`` (logits upsampled to the labels)."""
    matrix = ConfusionMatrix(num_classes, bank.ignore_index)
    head.eval()
    with torch.no_grad():
        for start in range(0, len(bank), batch_size):
            logits = head(bank.features[start : start + batch_size], class_vectors)
            labels = bank.labels[start : start + batch_size]
            logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
            matrix.update(logits.argmax(1), labels)
    head.train()
    confusion = matrix.compute()
    return mean_iou(confusion), [float(x) for x in iou_per_class(confusion)]


def train_quick_teacher(
    train: FeatureBank,
    evaluation: FeatureBank,
    class_vectors: torch.Tensor,
    settings: QuickTeacherSettings,
    seed: int = 0,
    learn_class_vectors: bool = False,
    report: Callable[[int, float], None] | None = None,
) -> QuickTeacherResult:
    """Train a :class:`QuickHead` on ``train`` with ``class_vectors`` ``[C, D]`` and score it on ``evaluation``.

    Deterministic for (banks, vectors, settings, seed). ``report(step, miou)`` is called at every
    evaluation (a pruner's intermediate values); it may raise to stop the trial.
    """
    num_classes = class_vectors.shape[0]
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = QuickHead(train.channels, class_vectors.shape[1], settings.hidden)
    vectors = class_vectors.detach().float().clone()
    parameters = list(head.parameters())
    if learn_class_vectors:
        vectors = torch.nn.Parameter(vectors)
        parameters.append(vectors)
    optimizer = torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (1 - step / max(settings.steps, 1)) ** 0.9)
    labelled = train.labels[train.labels != train.ignore_index]
    counts = torch.bincount(labelled, minlength=num_classes)[:num_classes]
    weights = class_weights_from_counts(counts, "inverse_sqrt_frequency")
    history: list[tuple[int, float]] = []
    for step in range(1, settings.steps + 1):
        rows = torch.randint(len(train), (settings.batch_size,), generator=generator)
        labels = train.labels[rows]
        logits = head(train.features[rows], vectors)
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
        loss = F.cross_entropy(logits, labels, weight=weights, ignore_index=train.ignore_index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % settings.eval_every == 0 or step == settings.steps:
            miou, _ = evaluate_head(head, evaluation, vectors.detach(), num_classes)
            history.append((step, miou))
            if report is not None:
                report(step, miou)
    miou, per_class = evaluate_head(head, evaluation, vectors.detach(), num_classes)
    return QuickTeacherResult(miou=miou, per_class_iou=per_class, history=history)


__all__ = ["QuickHead", "QuickTeacherResult", "QuickTeacherSettings", "evaluate_head", "train_quick_teacher"]
