"""Prompt search: the feature bank a search computes once, and the quick teacher each trial trains."""

from __future__ import annotations

import pytest
import torch

from distill.datasets import create_dataset
from distill.prompt_search.feature_bank import build_feature_bank
from distill.prompt_search.quick_teacher import QuickTeacherSettings, train_quick_teacher
from teacher.feature_latent import BackboneFeatureLatent

SIZE = (32, 48)
QUICK = QuickTeacherSettings(steps=30, batch_size=8, lr=1e-2, hidden=16, eval_every=10)


@pytest.fixture(scope="module")
def backbone() -> BackboneFeatureLatent:
    torch.manual_seed(0)
    return BackboneFeatureLatent("efficientnet_lite0", stride=8, pretrained=False)


@pytest.fixture(scope="module")
def banks(backbone):
    train = create_dataset("synthetic:count=12,size=32x48", "train")
    held_out = create_dataset("synthetic:count=6,size=32x48", "val")
    return (
        build_feature_bank(train, backbone, SIZE, views=2, progress=False),
        build_feature_bank(held_out, backbone, SIZE, views=0, progress=False),
    )


def test_the_bank_holds_each_view_once_and_the_same_views_every_time(backbone, banks):
    train, held_out = banks
    assert train.features.shape == (12 * 2, backbone.channels, 4, 6) and train.labels.shape == (24, *SIZE)
    assert held_out.features.shape[0] == 6 and held_out.views == 1
    assert train.features.dtype == torch.float16
    again = build_feature_bank(
        create_dataset("synthetic:count=12,size=32x48", "train"), backbone, SIZE, 2, progress=False
    )
    assert torch.equal(again.features, train.features) and torch.equal(again.labels, train.labels)
    assert not torch.equal(train.labels[0], train.labels[1])  # two views of image 0 differ


def test_the_bank_reads_evaluation_images_whole(backbone, banks):
    held_out = banks[1]
    dataset = create_dataset("synthetic:count=6,size=32x48", "val")
    image, label = dataset[2]
    assert torch.equal(held_out.labels[2], label.long())
    with torch.no_grad():
        torch.testing.assert_close(held_out.features[2], backbone(image[None])[0].half())


def test_the_quick_teacher_is_deterministic_and_reports_each_evaluation(banks):
    train, held_out = banks
    vectors = torch.nn.functional.normalize(torch.randn(11, 24, generator=torch.Generator().manual_seed(0)), dim=1)
    reported = []
    first = train_quick_teacher(train, held_out, vectors, QUICK, seed=0, report=lambda s, m: reported.append((s, m)))
    second = train_quick_teacher(train, held_out, vectors, QUICK, seed=0)
    assert first.miou == second.miou and first.history == second.history
    assert [step for step, _ in first.history] == [10, 20, 30] and reported == first.history
    assert first.history[-1][1] == first.miou and 0 < first.miou <= 1


def test_frozen_class_vectors_decide_what_the_head_can_tell_apart(banks):
    """Two classes given one vector can never be told apart; learning the vectors can separate them."""
    train, held_out = banks
    vectors = torch.nn.functional.normalize(torch.randn(11, 24, generator=torch.Generator().manual_seed(0)), dim=1)
    present = torch.bincount(held_out.labels[held_out.labels != held_out.ignore_index], minlength=11)
    first, second = torch.argsort(present, descending=True)[:2].tolist()  # two classes the held-out images show
    tied = vectors.clone()
    tied[max(first, second)] = tied[min(first, second)]
    frozen = train_quick_teacher(train, held_out, tied, QUICK, seed=0)
    assert frozen.per_class_iou[max(first, second)] == 0.0  # argmax ties go to the lower class index
    learned = train_quick_teacher(train, held_out, tied, QUICK, seed=0, learn_class_vectors=True)
    assert learned.per_class_iou[max(first, second)] > 0.0
