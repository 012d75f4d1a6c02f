"""`distill pseudo-label`: filters by confidence, entropy and class-balanced thresholds; a folder a run trains on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cli.distill_cli import distill
from distill.datasets import create_dataset
from distill.unlabelled.pseudo_labels import BINS, class_balanced_thresholds, confidence_and_entropy, keep_mask
from prompt_kit.errors import PromptKitError
from tests.distill.test_prediction import photos


def test_confidence_and_entropy_of_known_distributions():
    probabilities = torch.tensor([[0.9, 0.5, 1 / 3], [0.1, 0.5, 1 / 3], [0.0, 0.0, 1 / 3]])[:, None, :]  # [3, 1, 3]
    classes, confidence, entropy = confidence_and_entropy(probabilities)
    assert classes.flatten().tolist() == [0, 0, 0]
    assert torch.allclose(confidence.flatten(), torch.tensor([0.9, 0.5, 1 / 3]))
    expected = torch.tensor([-(0.9 * np.log(0.9) + 0.1 * np.log(0.1)), np.log(2), np.log(3)], dtype=torch.float32)
    assert torch.allclose(entropy.flatten(), expected, atol=1e-6)


def test_filters_keep_only_pixels_that_pass_every_one():
    classes = torch.tensor([[0, 0, 1, 1]])
    confidence = torch.tensor([[0.99, 0.6, 0.7, 0.5]])
    entropy = torch.tensor([[0.05, 0.9, 0.2, 1.0]])
    assert keep_mask(classes, confidence, entropy, 0.968, None, None).tolist() == [[True, False, False, False]]
    assert keep_mask(classes, confidence, entropy, None, 0.3, None).tolist() == [[True, False, True, False]]
    per_class = np.array([0.9, 0.55])
    assert keep_mask(classes, confidence, entropy, None, None, per_class).tolist() == [[True, False, True, False]]
    assert keep_mask(classes, confidence, entropy, 0.65, 0.5, per_class).tolist() == [[True, False, True, False]]
    assert keep_mask(classes, confidence, entropy, None, None, None).all()


def test_class_balanced_thresholds_keep_the_top_share_of_each_class():
    rng = np.random.default_rng(0)
    confident = rng.uniform(0.8, 1.0, 10_000)  # a frequent, sure class
    unsure = rng.uniform(0.3, 0.6, 500)  # a rare, unsure one
    histograms = np.zeros((3, BINS), dtype=np.int64)
    for index, values in enumerate((confident, unsure)):
        np.add.at(histograms[index], np.minimum((values * BINS).astype(int), BINS - 1), 1)
    thresholds = class_balanced_thresholds(histograms, 0.2)
    for index, values in enumerate((confident, unsure)):
        kept = (values >= thresholds[index]).mean()
        assert 0.2 <= kept <= 0.2 + 0.01, (index, kept)  # the top 20% of each class, within one bin
    assert thresholds[1] < 0.6 < thresholds[0]  # a global threshold would keep none of the rare class
    assert thresholds[2] == 1.0  # never predicted


def test_pseudo_labels_are_a_folder_dataset_a_student_trains_on(runner, trained_teacher, tmp_path):
    images = photos(tmp_path / "photos", sizes=[(32, 48)] * 10)
    out = tmp_path / "pseudo"
    args = ["pseudo-label", str(trained_teacher), "--images", str(images), "--out", str(out)]
    result = runner.invoke(distill, [*args, "--max-entropy", "1.0", "--tta", "flip"])
    assert result.exit_code == 0, result.output
    assert "10 images pseudo-labelled" in result.output and "| Sky |" in result.output
    record = json.loads((out / "pseudo_labels.json").read_text())
    assert record["max_entropy"] == 1.0 and record["tta"] == "flip" and 0 < record["kept_share"] <= 1
    assert not (out / ".pseudo-label-in-progress").exists()
    kept = sum(row["kept_pixels"] for row in record["per_class"].values())
    labels = np.stack([np.array(Image.open(path)) for path in sorted((out / "labels").iterdir())])
    assert (labels != 11).sum() == kept and set(np.unique(labels)) <= set(range(12))  # 11: CamVid's ignore id
    train = create_dataset(f"folder:{out}", "train")
    assert len(train) == 8 and len(create_dataset(f"folder:{out}", "val")) == 2
    run = ["run", "--data", f"folder:{out}", "--student", "tiny", "--kd", "none", "--steps", "3"]
    run += ["--student-size", "32x48", "--out", str(tmp_path / "student"), "--set", "batch_size=4"]
    trained = runner.invoke(distill, run)
    assert trained.exit_code == 0, trained.output
    assert json.loads((tmp_path / "student" / "metrics.json").read_text())["miou"] >= 0


def test_stricter_filters_keep_fewer_pixels(runner, trained_teacher, tmp_path):
    images = photos(tmp_path / "photos", sizes=[(32, 48)] * 3)
    shares = {}
    for name, extra in {
        "all": [],
        "entropy": ["--max-entropy", "1.5"],
        "strict": ["--max-entropy", "1.5", "--min-confidence", "0.5"],
        "balanced": ["--class-balanced", "0.3"],
    }.items():
        out = tmp_path / name
        result = runner.invoke(
            distill, ["pseudo-label", str(trained_teacher), "--images", str(images), "--out", str(out), *extra]
        )
        assert result.exit_code == 0, result.output
        shares[name] = json.loads((out / "pseudo_labels.json").read_text())["kept_share"]
    assert shares["all"] == 1.0
    assert shares["strict"] <= shares["entropy"] <= shares["all"]
    assert 0.25 <= shares["balanced"] <= 0.4  # about 30% of each class's pixels


def test_images_the_teacher_is_unsure_of_are_left_out(runner, trained_teacher, tmp_path):
    images = photos(tmp_path / "photos", sizes=[(32, 48)] * 8)
    args = ["pseudo-label", str(trained_teacher), "--images", str(images), "--max-entropy", "1.5"]
    assert runner.invoke(distill, [*args, "--out", str(tmp_path / "all")]).exit_code == 0
    shares = {
        path.stem: float((np.array(Image.open(path)) != 11).mean()) for path in (tmp_path / "all" / "labels").iterdir()
    }
    threshold = float(np.median(list(shares.values())))
    out = tmp_path / "sure"
    result = runner.invoke(distill, [*args, "--out", str(out), "--min-image-share", str(threshold)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "pseudo_labels.json").read_text())
    unsure = sorted(name for name, share in shares.items() if share < threshold)
    assert unsure and sorted(record["images_dropped"]) == unsure and record["images_written"] == 8 - len(unsure)
    assert sorted(path.stem for path in (out / "labels").iterdir()) == sorted(set(shares) - set(unsure))
    assert sorted(path.stem for path in (out / "images").iterdir()) == sorted(set(shares) - set(unsure))
    kept = sum(share for name, share in shares.items() if name not in unsure)
    assert record["kept_share"] == pytest.approx(kept / len(shares), abs=1e-3)  # left-out pixels count as not kept
    assert f"{8 - len(unsure)} of 8 images pseudo-labelled" in result.output and "left out" in result.output
    nothing = runner.invoke(distill, [*args, "--out", str(tmp_path / "none"), "--min-image-share", "1.0"])
    assert nothing.exit_code == 0 and json.loads((tmp_path / "none" / "pseudo_labels.json").read_text())[
        "images_written"
    ] == sum(share == 1.0 for share in shares.values())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--min-confidence", "1.5"], "'--min-confidence': '1.5' is out of range: give a finite number in [0, 1]"),
        (["--max-entropy", "-1"], "'--max-entropy': '-1' is out of range: give a finite number in [0, 100]"),
        (["--max-entropy", "nan"], "'--max-entropy': 'nan' is out of range"),
        (["--class-balanced", "0"], "'--class-balanced': '0' is out of range: give a finite number in (0, 1]"),
        (["--min-image-share", "1.5"], "'--min-image-share': '1.5' is out of range: give a finite number in [0, 1]"),
    ],
)
def test_bad_filters_are_one_line_errors(runner, trained_teacher, tmp_path, extra, message):
    images = photos(tmp_path / "photos")
    out = tmp_path / "pseudo"
    result = runner.invoke(
        distill, ["pseudo-label", str(trained_teacher), "--images", str(images), "--out", str(out), *extra]
    )
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not out.exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1, 1.5])
def test_the_filters_are_checked_from_python_too(value):
    """NaN compares false with every pixel, so it would keep nothing: refused, as a threshold out of range is."""
    from distill.unlabelled.pseudo_labels import check_filters

    with pytest.raises(PromptKitError, match="out of range: give a finite number in"):
        check_filters(value, None, None)


def test_a_folder_that_holds_other_things_or_finished_labels_is_refused(runner, trained_teacher, tmp_path):
    images = photos(tmp_path / "photos")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    args = ["pseudo-label", str(trained_teacher), "--images", str(images), "--out"]
    refused = runner.invoke(distill, [*args, str(busy)])
    assert refused.exit_code == 2 and "is not empty and holds no pseudo-labels" in refused.stderr
    assert runner.invoke(distill, [*args, str(tmp_path / "done")]).exit_code == 0
    again = runner.invoke(distill, [*args, str(tmp_path / "done")])
    assert again.exit_code == 2 and "already holds finished pseudo-labels" in again.stderr


CAMVID = [
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
]


def test_priors_keep_only_classes_the_source_label_allows(runner, trained_teacher, camvid_root, tmp_path):
    rows = [f"{index},{name},{name}" + (",Pavement" if name == "Road" else "") for index, name in enumerate(CAMVID)]
    priors = tmp_path / "priors.csv"
    priors.write_text("\n".join([*rows, "255,void"]) + "\n")
    out = tmp_path / "pseudo"
    args = ["pseudo-label", str(trained_teacher), "--images", f"camvid:{camvid_root}", "--split", "train"]
    result = runner.invoke(distill, [*args, "--out", str(out), "--priors", str(priors)])
    assert result.exit_code == 0, result.output
    source = create_dataset(f"camvid:{camvid_root}", "train")
    for index, (image_path, _) in enumerate(source.files):
        labels = np.array(Image.open(out / "labels" / f"{image_path.stem}.png"))
        own = source[index][1].numpy()
        pavement, road = CAMVID.index("Pavement"), CAMVID.index("Road")
        plain = (own < 11) & (own != pavement)
        assert np.array_equal(labels[plain], own[plain])  # one allowed class: the source's own
        assert set(np.unique(labels[own == pavement])) <= {road, pavement}
        assert (labels[own == 11] == 11).all()  # unlabelled source pixels allow nothing: ignored
    assert json.loads((out / "pseudo_labels.json").read_text())["priors"] == str(priors)


def test_priors_need_labelled_images(runner, trained_teacher, tmp_path):
    priors = tmp_path / "priors.csv"
    priors.write_text("0,Sky,Sky\n")
    images = photos(tmp_path / "photos")
    args = ["pseudo-label", str(trained_teacher), "--images", str(images), "--out", str(tmp_path / "p")]
    result = runner.invoke(distill, [*args, "--priors", str(priors)])
    assert result.exit_code == 2 and "--priors needs --images to be a dataset spec" in result.stderr
