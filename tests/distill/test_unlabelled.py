"""Images without labels: ``images:PATH`` mixed into a labelled dataset, KD masked by the teacher's confidence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cli.distill_cli import distill
from distill.datasets import PairedViews, create_dataset
from distill.datasets.factory import split_mixed_spec
from distill.training.student import teacher_confidence
from prompt_kit.errors import PromptKitError
from tests.distill.conftest import DATA, random_image, save_image


@pytest.fixture()
def photos(tmp_path):
    rng = np.random.default_rng(1)
    for index in range(6):
        save_image(tmp_path / "photos" / f"p{index}.jpg", random_image(rng, 32, 48))
    return tmp_path / "photos"


def test_a_plus_splits_only_before_a_readers_name():
    assert split_mixed_spec("camvid:/a+b/data+images:/x") == ["camvid:/a+b/data", "images:/x"]
    assert split_mixed_spec("synthetic:count=4+images:p") == ["synthetic:count=4", "images:p"]
    assert split_mixed_spec("folder:/data") == ["folder:/data"]


def test_a_mixed_dataset_trains_on_both_and_evaluates_on_the_labelled_part(photos):
    train = create_dataset(f"{DATA}+images:{photos}", "train")
    labelled = create_dataset(DATA, "train")
    assert len(train) == len(labelled) + 6 and train.taxonomy == labelled.taxonomy
    assert train.is_labelled(0) and not train.is_labelled(len(labelled))
    image, label = train[len(labelled) + 2]
    assert image.shape == (3, 32, 48) and (label == train.ignore_index).all()
    assert len(create_dataset(f"{DATA}+images:{photos}", "val")) == len(create_dataset(DATA, "val"))
    views = PairedViews(train, teacher_size=None, student_size=(32, 48), train=False)
    assert views[0]["labelled"] and not views[len(labelled)]["labelled"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("images:PHOTOS", "has no classes of its own: mix it with a labelled dataset"),
        ("images:PHOTOS+images:PHOTOS", "every part is unlabelled"),
        ("synthetic+images:/no/such/folder", "no such folder"),
    ],
)
def test_unlabelled_specs_that_cannot_work_are_one_line_errors(photos, spec, message):
    with pytest.raises(PromptKitError, match=message):
        create_dataset(spec.replace("PHOTOS", str(photos)), "train")


def test_the_teacher_confidence_is_the_mask_of_unlabelled_images():
    logits = torch.tensor([[[[4.0, 0.0]], [[0.0, 0.0]]]])  # [1, 2, 1, 2]: sure, then unsure
    confidence = teacher_confidence(logits, (1, 2))
    assert confidence[0, 0, 0] > 0.9 and confidence[0, 0, 1] == pytest.approx(0.5)
    assert (confidence >= 0.6).tolist() == [[[True, False]]]


def test_a_student_learns_from_unlabelled_images_through_its_teacher(runner, trained_teacher, photos, tmp_path):
    args = ["run", "--teacher", str(trained_teacher), "--data", f"{DATA}+images:{photos}", "--student", "tiny"]
    args += ["--steps", "4", "--student-size", "32x48", "--set", "batch_size=4", "--set", "val_images=8"]
    result = runner.invoke(distill, [*args, "--kd", "kl", "--out", str(tmp_path / "mixed")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "mixed" / "metrics.json").read_text())["eval_split"] == "val"
    only = ["run", "--teacher", str(trained_teacher), "--data", f"{DATA}+images:{photos}", "--kd", "none"]
    refused = runner.invoke(distill, [*only, "--out", str(tmp_path / "none")])
    assert refused.exit_code == 2 and "teach nothing without a teacher" in refused.stderr
