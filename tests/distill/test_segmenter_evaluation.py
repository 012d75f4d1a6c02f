from __future__ import annotations

import pytest
import torch

from distill.datasets import PairedViews, SyntheticStreets
from distill.evaluation.metrics import ConfusionMatrix
from distill.evaluation.segmenter import Segmenter, evaluate_segmenters
from distill.training.core import make_accelerator

LABEL_SIZE = (24, 32)
TEACHER_SIZE = (48, 64)


@pytest.fixture(scope="module")
def scenes() -> SyntheticStreets:
    return SyntheticStreets("val", count=5, size=(48, 64), seed=2)


def constant(class_id: int, size: tuple[int, int]):
    """A segmenter body that predicts ``class_id`` everywhere, at ``size`` (not the labels')."""

    def predict(images: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(images.shape[0], 11, *size)
        logits[:, class_id] = 1.0
        return logits

    return predict


def reference(scenes, class_id: int, count: int) -> dict:
    views = PairedViews(scenes, teacher_size=None, student_size=LABEL_SIZE, train=False)
    matrix = ConfusionMatrix(11, scenes.ignore_index)
    for index in range(count):
        label = views[index]["student_label"]
        matrix.update(torch.full_like(label, class_id), label)
    return matrix.metrics_dict(scenes.taxonomy.class_names)


def test_each_segmenter_is_scored_on_the_same_labels_whatever_its_view_and_output_size(scenes, tmp_path):
    segmenters = [
        Segmenter("teacher", "teacher", constant(3, (12, 16))),  # Road, at 1/4 of the teacher view
        Segmenter("student", "student", constant(0, LABEL_SIZE)),  # Sky
    ]
    result = evaluate_segmenters(
        segmenters, scenes, LABEL_SIZE, make_accelerator("no"), TEACHER_SIZE, limit=4, panels=3, panels_to=tmp_path
    )
    assert result["teacher"] == reference(scenes, 3, 4)
    assert result["student"] == reference(scenes, 0, 4)
    assert result["teacher"] != result["student"]
    assert sorted(p.name for p in tmp_path.glob("panel_*.png")) == ["panel_0.png", "panel_1.png", "panel_2.png"]


def test_a_teacher_view_needs_a_teacher_size(scenes):
    with pytest.raises(ValueError, match="pass teacher_size"):
        evaluate_segmenters([Segmenter("t", "teacher", constant(0, LABEL_SIZE))], scenes, LABEL_SIZE, None)
