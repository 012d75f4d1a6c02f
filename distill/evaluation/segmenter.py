"""One evaluation loop for teachers and students: the same images, labels and metric for both.

A teacher alone, a student alone, or a student with its teacher beside it on the same val images
all go through :func:`evaluate_segmenters`, so a teacher's mIoU in a run folder and in its own
folder can only differ by the label resolution they were asked for, never by the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from distill.datasets import PairedViews
from distill.evaluation.metrics import ConfusionMatrix
from distill.evaluation.panels import save_panel

Size = tuple[int, int]


@dataclass(frozen=True)
class Segmenter:
    """A named model under evaluation: which view it reads and how images become logits.

    Attributes:
        name: key of its metrics in the result (``"teacher"``, ``"student"``).
        view: ``"teacher"`` or ``"student"``: the ``PairedViews`` image it reads.
        predict: images ``[B, 3, h, w]`` in [0, 1] on the device -> logits ``[B, C, h', w']`` at
            any resolution (resized bilinearly to the labels).
    """

    name: str
    view: Literal["teacher", "student"]
    predict: Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def evaluate_segmenters(
    segmenters: Sequence[Segmenter],
    dataset,
    label_size: Size,
    accelerator,
    teacher_size: Size | None = None,
    limit: int | None = None,
    panels: int = 0,
    panels_to: str | Path | None = None,
    batch_size: int = 8,
) -> dict[str, dict[str, Any]]:
    """Metrics per segmenter (``ConfusionMatrix.metrics_dict``) on the first ``limit`` eval views.

    Labels are the student view at ``label_size`` (nearest); ``teacher_size`` sizes the teacher
    view when a segmenter reads it. Panels show the student-view image, the labels and each
    segmenter's prediction, in order.
    """
    if teacher_size is None and any(s.view == "teacher" for s in segmenters):
        raise ValueError("a segmenter reads the teacher view: pass teacher_size")
    taxonomy = dataset.taxonomy
    # the teacher view is drawn only when someone reads it at a size other than the labels'
    separate = any(s.view == "teacher" for s in segmenters) and tuple(teacher_size) != tuple(label_size)
    views = PairedViews(dataset, teacher_size=teacher_size if separate else None, student_size=label_size, train=False)
    count = len(views) if limit is None else min(limit, len(views))
    # its own generator: evaluating must not draw from the global RNG that training's draws come from
    loader = DataLoader(Subset(views, range(count)), batch_size=batch_size, generator=torch.Generator().manual_seed(0))
    matrices = {s.name: ConfusionMatrix(taxonomy.num_classes, taxonomy.ignore_index) for s in segmenters}
    saved = 0
    for batch in loader:
        labels = batch["student_label"].to(accelerator.device)
        predictions = []
        for segmenter in segmenters:
            with accelerator.autocast():
                images = batch["teacher_image" if segmenter.view == "teacher" and separate else "student_image"]
                logits = segmenter.predict(images.to(accelerator.device))
            logits = logits.float()
            if logits.shape[-2:] != labels.shape[-2:]:
                logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
            prediction = logits.argmax(1)
            matrices[segmenter.name].update(prediction, labels)
            predictions.append(prediction)
        if panels_to is not None and saved < panels:
            for i in range(min(panels - saved, len(labels))):
                maps = [labels[i]] + [prediction[i] for prediction in predictions]
                save_panel(Path(panels_to) / f"panel_{saved}.png", batch["student_image"][i], maps, taxonomy)
                saved += 1
    return {name: matrix.metrics_dict(taxonomy.class_names) for name, matrix in matrices.items()}


__all__ = ["Segmenter", "evaluate_segmenters"]
