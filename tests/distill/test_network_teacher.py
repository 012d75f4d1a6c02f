"""`distill teacher --model`: a network teacher trained by the student trainer, loaded, resumed and distilled."""

from __future__ import annotations

import json

import pytest
import torch

from cli.distill_cli import distill
from prompt_kit.resources import prompts_dir
from teacher import TeacherFolder
from tests.distill.conftest import DATA
from tests.distill.test_training import run_args

SMALL = ["--size", "32x48", "--set", "batch_size=4", "--set", "val_images=8", "--set", "checkpoint_every=3"]


def teacher_args(out, model="tiny", steps=6, extra=()):
    return ["teacher", "--model", model, "--data", DATA, "--out", str(out), "--steps", str(steps), *SMALL, *extra]


@pytest.fixture(scope="module")
def network_teacher_dir(tmp_path_factory):
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("network-teacher") / "t"
    result = CliRunner().invoke(distill, teacher_args(out, extra=["--set", "eval_every=3"]))
    assert result.exit_code == 0, result.output
    assert "teacher tiny val mIoU" in result.output
    return out


def test_network_teacher_folder_is_a_run_folder_that_teaches(network_teacher_dir):
    folder = TeacherFolder(network_teacher_dir)
    assert folder.kind == "network" and folder.finished
    record = json.loads((network_teacher_dir / "network.json").read_text())
    assert record["network"] == "tiny" and record["image_size"] == [32, 48] and len(record["class_names"]) == 11
    assert folder.image_size == (32, 48)
    config = folder.training_config
    assert config["kd"] == "none" and config["student_size"] == [32, 48] and config["steps"] == 6
    teacher = folder.load()
    assert teacher.kind == "network" and not teacher.training


def test_distill_run_with_a_network_teacher(runner, network_teacher_dir, tmp_path):
    result = runner.invoke(distill, run_args(tmp_path / "s", network_teacher_dir, kd="kl", steps=6))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    own = json.loads((network_teacher_dir / "metrics.json").read_text())
    assert metrics["teacher_kind"] == "network"
    # the same network on the same val images at the same size: the run reads the teacher as its folder does
    assert abs(metrics["teacher"]["miou"] - own["miou"]) < 1e-3
    provenance = json.loads((tmp_path / "s" / "provenance.json").read_text())
    assert len(provenance["teacher_identity"]) == 64


def test_a_finished_student_run_is_a_teacher_too(runner, tmp_path):
    first = runner.invoke(distill, run_args(tmp_path / "plain", steps=6))
    assert first.exit_code == 0, first.output
    assert TeacherFolder(tmp_path / "plain").kind == "network"
    second = runner.invoke(distill, run_args(tmp_path / "taught", tmp_path / "plain", kd="dist", steps=4))
    assert second.exit_code == 0, second.output
    assert json.loads((tmp_path / "taught" / "metrics.json").read_text())["teacher"]["miou"] > 0


def test_a_run_folder_from_before_network_json_still_teaches(runner, tmp_path):
    result = runner.invoke(distill, run_args(tmp_path / "old", steps=4))
    assert result.exit_code == 0, result.output
    (tmp_path / "old" / "network.json").unlink()
    folder = TeacherFolder(tmp_path / "old")
    assert folder.kind == "network" and folder.network_record["network"] == "tiny"
    assert folder.image_size == (32, 48) and len(folder.class_names) == 11
    folder.load()


def test_a_killed_network_teacher_resumes_to_the_same_metrics(runner, tmp_path, monkeypatch):
    from tests.distill.conftest import kill_after_checkpoint

    extra = ["--set", "eval_every=3"]
    whole = runner.invoke(distill, teacher_args(tmp_path / "whole", extra=extra))
    assert whole.exit_code == 0, whole.output
    with monkeypatch.context() as patch:
        kill_after_checkpoint(patch, 3)
        killed = runner.invoke(distill, teacher_args(tmp_path / "killed", extra=extra))
    assert killed.exit_code != 0 and not (tmp_path / "killed" / "metrics.json").exists()
    resumed = runner.invoke(distill, [*teacher_args(tmp_path / "killed", extra=extra), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert a["miou"] == b["miou"] and a["history"] == b["history"]


def test_a_torchvision_checkpoint_is_a_teacher_without_training(runner, tmp_path):
    """A trained torchvision DeepLabV3 state dict (aux head and all) loads as it is and predicts the same logits."""
    import torch.nn.functional as F
    from torchvision.models.segmentation import deeplabv3_resnet50

    torch.manual_seed(0)
    theirs = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=11, aux_loss=True).eval()
    checkpoint = tmp_path / "deeplabv3_resnet50_camvid.pth"
    torch.save({"model": theirs.state_dict()}, checkpoint)
    args = teacher_args(tmp_path / "t", model="deeplabv3_resnet50", steps=0, extra=["--pretrained", str(checkpoint)])
    result = runner.invoke(distill, args)
    assert result.exit_code == 0, result.output
    teacher = TeacherFolder(tmp_path / "t").load()
    images = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = F.interpolate(teacher(images), size=(32, 48), mode="bilinear", align_corners=False)
        from networks import normalize_images

        reference = theirs(normalize_images(images))["out"]
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)


def test_a_checkpoint_of_another_taxonomy_is_a_one_line_error(runner, tmp_path):
    from torchvision.models.segmentation import deeplabv3_resnet50

    checkpoint = tmp_path / "city.pth"
    torch.save(deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=19).state_dict(), checkpoint)
    result = runner.invoke(
        distill,
        teacher_args(tmp_path / "t", model="deeplabv3_resnet50", steps=0, extra=["--pretrained", str(checkpoint)]),
    )
    assert result.exit_code == 2, result.output
    assert "do not fit the network" in result.stderr and "Traceback" not in result.output
    assert "\n" not in result.stderr.strip()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["teacher", "--data", DATA, "--out", "{out}"], "pass either --prompts"),
        (
            ["teacher", "--model", "tiny", "--prompts", str(prompts_dir() / "camvid" / "label.yaml"), "--out", "{out}"],
            "pass either --prompts",
        ),
        (["teacher", "--model", "resnet9000", "--data", DATA, "--out", "{out}"], "unknown student 'resnet9000'"),
        (["teacher", "--model", "tiny", "--encoder", "minilm", "--data", DATA, "--out", "{out}"], "--encoder is for"),
        (
            ["teacher", "--model", "tiny", "--data", DATA, "--out", "{out}", "--pretrained", "/nope.pth"],
            "no checkpoint",
        ),
    ],
)
def test_teacher_option_errors_exit_2(runner, tmp_path, args, message):
    result = runner.invoke(distill, [arg.replace("{out}", str(tmp_path / "t")) for arg in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_prompts_for_a_network_teacher_are_refused(runner, network_teacher_dir, tmp_path):
    extra = ["--prompts", str(prompts_dir() / "camvid" / "label.yaml")]
    result = runner.invoke(distill, run_args(tmp_path / "s", network_teacher_dir, kd="kl", extra=extra))
    assert result.exit_code == 2 and "takes no prompts" in result.stderr


def test_a_config_file_overrides_the_network_teacher_defaults(tmp_path):
    from distill.training.network_teacher import NETWORK_TEACHER_DEFAULTS, network_teacher_config

    (tmp_path / "c.yaml").write_text("steps: 7\n")
    config = network_teacher_config("efficientnet_lite2", {"out": str(tmp_path / "t")}, str(tmp_path / "c.yaml"))
    assert config.steps == 7 and tuple(config.student_size) == NETWORK_TEACHER_DEFAULTS["student_size"]
    assert config.student_pretrained == "imagenet" and config.kd == "none" and config.init_weights is None
    plain = network_teacher_config("deeplabv3_resnet50", {"out": str(tmp_path / "t"), "steps": 3})
    assert plain.student_pretrained is None and plain.steps == 3
