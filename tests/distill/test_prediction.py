"""`distill predict` and test-time augmentation: label PNGs at each image's size, averaged probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cli.distill_cli import distill
from distill.datasets import create_dataset
from distill.evaluation.test_time_augmentation import TestTimeAugmentation, predict_probabilities, scaled_size
from distill.unlabelled.prediction import dataset_id_table
from prompt_kit.errors import PromptKitError
from teacher import TeacherFolder
from tests.distill.conftest import random_image, save_image


def test_tta_is_parsed_from_its_command_line_form_and_written_back():
    tta = TestTimeAugmentation.parse("flip,scales=0.75,1,1.25")
    assert tta.flip and tta.scales == (0.75, 1.0, 1.25) and tta.copies == 6
    assert TestTimeAugmentation.parse(tta.describe()) == tta
    assert TestTimeAugmentation.parse("scales=0.5,2,flip") == TestTimeAugmentation(flip=True, scales=(0.5, 2.0))
    assert TestTimeAugmentation.parse(None).is_identity and TestTimeAugmentation.parse("none").describe() == "none"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flop", "unknown part 'flop'"),
        ("scales=0.5,big", "'big' is not a scale"),
        ("scales=0,1", "scale '0' is out of range: give finite numbers in \\(0, 8\\]"),
        ("scales=nan", "scale 'nan' is out of range"),
        ("flip,scales=1,1e6", "scale '1e6' is out of range"),
        ("1.5", "unknown part '1.5'"),
    ],
)
def test_a_bad_tta_is_a_one_line_error_with_an_example(text, message):
    with pytest.raises(PromptKitError, match=message) as caught:
        TestTimeAugmentation.parse(text)
    assert "flip,scales=" in str(caught.value) and "\n" not in str(caught.value)


def test_scaled_copies_keep_the_models_input_multiple():
    assert scaled_size((96, 128), 0.75, 32) == (64, 96)
    assert scaled_size((96, 128), 1.25, 32) == (128, 160)
    assert scaled_size((32, 48), 0.1, 16) == (16, 16)  # never below one multiple


def test_probabilities_are_the_mean_over_flipped_and_rescaled_copies():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)  # not flip-equivariant: a flipped copy predicts otherwise

    def predict(images):
        return conv(images)

    images = torch.rand(2, 3, 16, 24)
    plain = predict_probabilities(predict, images, TestTimeAugmentation())
    assert torch.allclose(plain, conv(images).softmax(1))
    flipped = predict_probabilities(predict, images, TestTimeAugmentation(flip=True))
    by_hand = (conv(images).softmax(1) + conv(images.flip(-1)).softmax(1).flip(-1)) / 2
    assert torch.allclose(flipped, by_hand, atol=1e-6)
    assert not torch.allclose(flipped, plain, atol=1e-3)
    scaled = predict_probabilities(predict, images, TestTimeAugmentation(flip=True, scales=(0.5, 1.0, 1.5)))
    assert scaled.shape == plain.shape and torch.allclose(scaled.sum(1), torch.ones(2, 16, 24), atol=1e-5)


def photos(folder, sizes=((32, 48), (20, 30), (41, 57))):
    rng = np.random.default_rng(3)
    for index, (height, width) in enumerate(sizes):
        save_image(folder / f"photo_{index}.png", random_image(rng, height, width))
    return folder


def test_predict_writes_labels_at_each_images_size_overlays_and_probabilities(runner, trained_teacher, tmp_path):
    images = photos(tmp_path / "photos")
    out = tmp_path / "predicted"
    args = ["predict", str(trained_teacher), "--images", str(images), "--out", str(out), "--probabilities"]
    result = runner.invoke(distill, args)
    assert result.exit_code == 0, result.output
    assert "3 images predicted" in result.output
    for index, (height, width) in enumerate(((32, 48), (20, 30), (41, 57))):
        label = np.array(Image.open(out / "labels" / f"photo_{index}.png"))
        assert label.shape == (height, width) and label.dtype == np.uint8 and label.max() < 11
        overlay = np.array(Image.open(out / "overlays" / f"photo_{index}.png"))
        assert overlay.shape == (height, width, 3)
        probabilities = load_file(str(out / "probabilities" / f"photo_{index}.safetensors"))["probabilities"]
        assert probabilities.shape == (11, 32, 48)  # the teacher's input size
        assert torch.allclose(probabilities.float().sum(0), torch.ones(32, 48), atol=1e-2)
    # an image already at the teacher's size: its label is the teacher's own argmax, upsampled from 1/4
    teacher = TeacherFolder(trained_teacher).load()
    image = torch.from_numpy(np.array(Image.open(images / "photo_0.png"))).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        logits = teacher(image[None])
    expected = torch.nn.functional.interpolate(logits.softmax(1), size=(32, 48), mode="bilinear").argmax(1)[0]
    label = torch.from_numpy(np.array(Image.open(out / "labels" / "photo_0.png")).astype(np.int64))
    assert (label == expected).float().mean() > 0.99
    record = json.loads((out / "predictions.json").read_text())
    assert record["count"] == 3 and record["tta"] == "none" and record["ids"] == "train"
    assert "git_commit" in json.dumps(record["provenance"])


def test_predict_again_skips_what_is_done_and_finishes_the_rest(runner, trained_teacher, tmp_path):
    images = photos(tmp_path / "photos")
    out = tmp_path / "predicted"
    args = ["predict", str(trained_teacher), "--images", str(images), "--out", str(out), "--no-overlays"]
    assert runner.invoke(distill, args).exit_code == 0
    (out / "labels" / "photo_1.png").unlink()  # as if killed before this image
    again = runner.invoke(distill, args)
    assert again.exit_code == 0, again.output
    assert "1 images predicted" in again.output and "2 already there" in again.output
    assert not (out / "overlays").exists()


def test_predict_with_tta_from_a_dataset_spec(runner, trained_teacher, camvid_root, tmp_path):
    # the CamVid fixture's images are 12x16: the teacher reads them at its own 32x48
    out = tmp_path / "tta"
    args = ["predict", str(trained_teacher), "--images", f"camvid:{camvid_root}", "--split", "val"]
    result = runner.invoke(distill, [*args, "--out", str(out), "--tta", "flip,scales=0.5,1,1.5"])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (out / "labels").iterdir()) == ["0001TP_000000.png", "0001TP_000001.png"]
    assert json.loads((out / "predictions.json").read_text())["tta"] == "flip,scales=0.5,1,1.5"


def test_dataset_ids_invert_the_readers_mapping(cityscapes_root):
    dataset = create_dataset(f"cityscapes:{cityscapes_root}", "val")
    table = dataset_id_table(dataset, 19)
    assert table[0] == 7 and table[13] == 26 and table[18] == 33  # road, car, bicycle as labelIds
    assert np.array_equal(dataset.mapping.table[table], np.arange(19))  # and back to train ids


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--images", "no/such/folder"], "no such folder or file"),
        (["--images", "PHOTOS", "--tta", "flop"], "unknown part 'flop'"),
        (["--images", "PHOTOS", "--ids", "dataset"], "--ids dataset needs --images to be a dataset spec"),
        (["--images", "PHOTOS/*.gif"], "matches no image files"),
    ],
)
def test_bad_predict_input_is_one_line_and_writes_nothing(runner, trained_teacher, tmp_path, extra, message):
    images = photos(tmp_path / "photos")
    extra = [value.replace("PHOTOS", str(images)) for value in extra]
    out = tmp_path / "predicted"
    result = runner.invoke(distill, ["predict", str(trained_teacher), "--out", str(out), *extra])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert "Traceback" not in result.output and not (out / "labels").exists()


def test_eval_with_tta_reports_it_and_none_is_the_plain_evaluation(runner, trained_teacher):
    plain = runner.invoke(distill, ["eval", str(trained_teacher), "--json"])
    none = runner.invoke(distill, ["eval", str(trained_teacher), "--tta", "none", "--json"])
    flipped = runner.invoke(distill, ["eval", str(trained_teacher), "--tta", "flip,scales=0.75,1", "--json"])
    assert plain.exit_code == none.exit_code == flipped.exit_code == 0, flipped.output
    plain, none, flipped = (json.loads(result.stdout) for result in (plain, none, flipped))
    assert plain["miou"] == none["miou"] and flipped["tta"] == "flip,scales=0.75,1"
    assert 0 <= flipped["miou"] <= 1 and flipped["miou"] != plain["miou"]


def test_a_student_run_predicts_and_evaluates_with_tta(runner, trained_teacher, tmp_path):
    from tests.distill.test_training import run_args

    run = tmp_path / "student"
    assert runner.invoke(distill, run_args(run, trained_teacher, kd="none", steps=2)).exit_code == 0
    result = runner.invoke(distill, ["eval", str(run), "--tta", "flip", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tta"] == "flip"
    out = tmp_path / "predicted"
    predicted = runner.invoke(
        distill, ["predict", str(run), "--images", str(photos(tmp_path / "p")), "--out", str(out)]
    )
    assert predicted.exit_code == 0, predicted.output
    assert json.loads((out / "predictions.json").read_text())["model_kind"] == "network"
