"""Teacher and student training end to end on tiny synthetic data, as `distill` runs them."""

from __future__ import annotations

import json

import pytest
import torch

from cli.distill_cli import distill
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.resources import prompts_dir
from teacher import load_teacher
from tests.distill.conftest import DATA, kill_after_checkpoint


def test_teacher_folder_holds_everything_a_run_needs(trained_teacher):
    names = {path.name for path in trained_teacher.iterdir()}
    assert {
        "teacher.safetensors",
        "teacher_config.json",
        "config.yaml",
        "class_embeddings.safetensors",
        "metrics.json",
        "provenance.json",
        "panel_0.png",
        "tensorboard",
    } <= names
    metrics = json.loads((trained_teacher / "metrics.json").read_text())
    assert 0 < metrics["miou"] <= 1 and len(metrics["per_class_iou"]) == 11
    record = json.loads((trained_teacher / "provenance.json").read_text())
    assert record["encoder"] == "minilm" and record["seed"] == 0 and len(record["prompt_set_hash"]) == 64
    assert record["packages"]["torch"]


def test_trained_teacher_listens_to_its_class_embeddings(trained_teacher):
    teacher = load_teacher(trained_teacher).eval()
    embeddings = ClassEmbeddings.load(trained_teacher / "class_embeddings.safetensors")
    from distill.datasets import create_dataset

    images = torch.stack([create_dataset(DATA, "val")[i][0] for i in range(4)])
    with torch.no_grad():
        logits = teacher(images, embeddings)
        road, building = 3, 1
        order = list(range(11))
        order[road], order[building] = building, road
        swapped = ClassEmbeddings(
            tokens=embeddings.tokens[order],
            attention_mask=embeddings.attention_mask[order],
            pooled=embeddings.pooled[order],
            class_names=embeddings.class_names,
            encoder="swapped",
        )
        logits_swapped = teacher(images, swapped)
    prediction, prediction_swapped = logits.argmax(1), logits_swapped.argmax(1)
    was_road = prediction == road
    assert was_road.any()
    # where the teacher saw road, it now predicts building: the embeddings decide, not the index
    assert (prediction_swapped[was_road] == building).float().mean() > 0.95
    # a different prompt set (other texts, same classes) changes the logits
    from prompt_kit.encoders import create_encoder, encode_prompt_set
    from prompt_kit.prompt_set import load_prompt_set

    other = encode_prompt_set(load_prompt_set(prompts_dir() / "camvid" / "orthogonal.yaml"), create_encoder("minilm"))
    with torch.no_grad():
        assert (teacher(images, other) - logits).abs().max() > 1e-3


def run_args(out, teacher=None, kd="none", steps=12, extra=()):
    args = [
        "run",
        "--student",
        "tiny",
        "--kd",
        kd,
        "--data",
        DATA,
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--student-size",
        "32x48",
        "--set",
        "batch_size=4",
        "--set",
        "val_images=8",
        "--set",
        "eval_every=6",
        "--set",
        "checkpoint_every=4",
        *extra,
    ]
    return args + (["--teacher", str(teacher)] if teacher else [])


def test_student_run_folder_and_same_seed_same_numbers(runner, trained_teacher, tmp_path):
    first = runner.invoke(distill, run_args(tmp_path / "a", trained_teacher, kd="kl"))
    assert first.exit_code == 0, first.output
    second = runner.invoke(distill, run_args(tmp_path / "b", trained_teacher, kd="kl"))
    assert second.exit_code == 0, second.output
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["miou"] == b["miou"] and a["history"] == b["history"]
    assert a["teacher"]["miou"] > 0 and a["eval_images"] == 8  # val_images=8 of the 24 val scenes
    # the train steps' own time: part of the whole run's, which also builds, evaluates and saves
    assert 0 < a["seconds_per_step"] * a["history"][-1]["step"] < a["train_seconds"]
    names = {path.name for path in (tmp_path / "a").iterdir()}
    assert {"config.yaml", "metrics.json", "provenance.json", "checkpoints", "tensorboard", "panel_0.png"} <= names


def test_resume_after_a_kill_ends_with_the_same_metrics(runner, tmp_path, monkeypatch):
    whole = runner.invoke(distill, run_args(tmp_path / "whole"))
    assert whole.exit_code == 0, whole.output
    with monkeypatch.context() as patch:
        kill_after_checkpoint(patch, 8)
        killed = runner.invoke(distill, run_args(tmp_path / "killed"))
    assert killed.exit_code != 0 and not (tmp_path / "killed" / "metrics.json").exists()
    resumed = runner.invoke(distill, [*run_args(tmp_path / "killed"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert a["miou"] == b["miou"] and a["history"] == b["history"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--student", "resnet999"], "unknown student 'resnet999': choose one of"),
        (["--kd", "kl"], "needs a teacher"),
        (["--kd", "klx", "--teacher", "."], "unknown KD loss 'klx'"),
        (["--teacher", "/nonexistent", "--kd", "kl"], "is not a teacher folder"),
    ],
)
def test_run_errors_exit_2(runner, tmp_path, args, message):
    base = ["run", "--data", DATA, "--out", str(tmp_path / "r"), "--steps", "2"]
    result = runner.invoke(distill, [*base, *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_prompt_set_of_another_taxonomy_is_refused(runner, trained_teacher, tmp_path):
    args = run_args(
        tmp_path / "r", trained_teacher, kd="kl", extra=["--prompts", str(prompts_dir() / "cityscapes" / "label.yaml")]
    )
    result = runner.invoke(distill, args)
    assert result.exit_code == 2 and "use a set of the teacher's taxonomy" in result.stderr


@pytest.mark.slow
def test_two_processes_on_cpu_agree(tmp_path):
    """torchrun with 2 processes (gloo): the run finishes and both replicas hold the same weights."""
    import subprocess
    import sys

    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "cli.distill_cli",
        *run_args(out, steps=6),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2
    first, second = metrics["rank_checksums"]
    assert first == second


@pytest.mark.parametrize("kd", ["mse", "cwd", "dist", "cirkd", "kl=1.0,cwd=3.0"])
def test_every_kd_loss_trains_through_distill_run(runner, trained_teacher, tmp_path, kd):
    result = runner.invoke(distill, run_args(tmp_path / "r", trained_teacher, kd=kd, steps=2))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["miou"] >= 0


def test_kd_on_teacher_correct_pixels_only_changes_what_is_learned(runner, trained_teacher, tmp_path):
    from safetensors.torch import load_file

    weights = {}
    for pixels in ("valid", "teacher_correct"):
        out = tmp_path / pixels
        args = run_args(out, trained_teacher, kd="kl", steps=3, extra=("--set", f"kd_pixels={pixels}"))
        result = runner.invoke(distill, args)
        assert result.exit_code == 0, result.output
        assert f"kd_pixels: {pixels}" in (out / "config.yaml").read_text()
        weights[pixels] = load_file(str(out / "checkpoints" / "best" / "model.safetensors"))
    assert any(not torch.equal(weights["valid"][k], weights["teacher_correct"][k]) for k in weights["valid"])


def test_holdout_run_evaluates_on_held_out_train_images(runner, tmp_path):
    out = tmp_path / "r"
    result = runner.invoke(distill, run_args(out, extra=("--set", "holdout=6", "--set", "scale_range=[1,1]")))
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_split"] == "train-holdout" and metrics["eval_images"] == 6
    reference = tmp_path / "val"
    assert runner.invoke(distill, run_args(reference)).exit_code == 0
    val = json.loads((reference / "metrics.json").read_text())
    assert val["eval_split"] == "val" and val["miou"] != metrics["miou"]


@pytest.mark.parametrize(
    ("setting", "message"),
    [("scale_range=[2,1]", "0 < low <= high"), ("color_jitter=1.5", "color_jitter"), ("holdout=24", "hold out")],
)
def test_bad_augmentation_or_holdout_is_a_one_line_error(runner, tmp_path, setting, message):
    result = runner.invoke(distill, run_args(tmp_path / "r", steps=2, extra=("--set", setting)))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def _teacher_args(out, extra=()):
    from tests.distill.conftest import TINY_TEACHER

    prompts = str(prompts_dir() / "camvid" / "label.yaml")
    base = ["teacher", "--prompts", prompts, "--data", DATA, "--out", str(out), "--size", "32x48"]
    return [*base, "--batch-size", "4", *TINY_TEACHER, *extra]


def test_teacher_training_continues_from_a_trained_teacher(runner, trained_teacher, tmp_path):
    from safetensors.torch import load_file

    result = runner.invoke(
        distill, _teacher_args(tmp_path / "t0", ["--steps", "0", "--set", f"init_from={trained_teacher}"])
    )
    assert result.exit_code == 0, result.output
    # no training steps and no denoiser pass: the weights are the trained teacher's, unchanged
    start = load_file(str(trained_teacher / "teacher.safetensors"))
    copied = load_file(str(tmp_path / "t0" / "teacher.safetensors"))
    assert all(torch.equal(start[key], copied[key]) for key in start)
    first = json.loads((trained_teacher / "metrics.json").read_text())["miou"]
    assert json.loads((tmp_path / "t0" / "metrics.json").read_text())["miou"] == pytest.approx(first, abs=1e-6)
    result = runner.invoke(
        distill, _teacher_args(tmp_path / "t2", ["--steps", "2", "--set", f"init_from={trained_teacher}"])
    )
    assert result.exit_code == 0, result.output
    moved = load_file(str(tmp_path / "t2" / "teacher.safetensors"))
    assert any(not torch.equal(start[key], moved[key]) for key in start)


def test_continuing_a_teacher_of_another_shape_is_refused(runner, trained_teacher, tmp_path):
    args = _teacher_args(
        tmp_path / "t", ["--steps", "1", "--set", f"init_from={trained_teacher}", "--set", "model.head_channels=8"]
    )
    result = runner.invoke(distill, args)
    assert result.exit_code == 2, result.output
    assert "head_channels=16" in result.stderr and "Traceback" not in result.output


def test_teacher_class_weighting_changes_training_and_is_recorded(runner, tmp_path):
    from safetensors.torch import load_file

    for name, weighting in (("plain", "none"), ("weighted", "inverse_sqrt_frequency")):
        args = _teacher_args(tmp_path / name, ["--steps", "2", "--set", f"class_weighting={weighting}"])
        result = runner.invoke(distill, args)
        assert result.exit_code == 0, result.output
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    weighted = json.loads((tmp_path / "weighted" / "metrics.json").read_text())
    assert plain["class_weights"] is None
    assert len(weighted["class_weights"]) == 11 and max(weighted["class_weights"]) > 1 > min(weighted["class_weights"])
    a = load_file(str(tmp_path / "plain" / "teacher.safetensors"))
    b = load_file(str(tmp_path / "weighted" / "teacher.safetensors"))
    assert any(not torch.equal(a[key], b[key]) for key in a)
    result = runner.invoke(distill, _teacher_args(tmp_path / "bad", ["--set", "class_weighting=balanced"]))
    assert result.exit_code == 2 and "class_weighting" in result.stderr and "Traceback" not in result.output


def test_a_no_kd_student_does_not_depend_on_the_teacher_folder(runner, trained_teacher, tmp_path):
    # loading a teacher draws from the RNG; the student's init and batches must not follow it
    from safetensors.torch import load_file

    alone = runner.invoke(distill, run_args(tmp_path / "alone", None, kd="none"))
    assert alone.exit_code == 0, alone.output
    beside = runner.invoke(distill, run_args(tmp_path / "beside", trained_teacher, kd="none"))
    assert beside.exit_code == 0, beside.output
    a = load_file(str(tmp_path / "alone" / "checkpoints" / "best" / "model.safetensors"))
    b = load_file(str(tmp_path / "beside" / "checkpoints" / "best" / "model.safetensors"))
    assert all(torch.equal(a[key], b[key]) for key in a)


def _diffusion_teacher_args(out):
    from tests.distill.conftest import tiny_teacher_args

    return tiny_teacher_args(out, steps=12, extra=["--set", "eval_every=6", "--set", "checkpoint_every=4"])


@pytest.mark.parametrize(("phase", "step"), [("denoiser", 4), ("last", 8)])
def test_a_killed_diffusion_teacher_resumes_to_the_same_metrics(runner, tmp_path, monkeypatch, phase, step):
    whole = runner.invoke(distill, _diffusion_teacher_args(tmp_path / "whole"))
    assert whole.exit_code == 0, whole.output
    with monkeypatch.context() as patch:
        kill_after_checkpoint(patch, step, folder_name=phase)
        killed = runner.invoke(distill, _diffusion_teacher_args(tmp_path / "killed"))
    assert killed.exit_code != 0 and not (tmp_path / "killed" / "metrics.json").exists()
    resumed = runner.invoke(distill, [*_diffusion_teacher_args(tmp_path / "killed"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert a["miou"] == b["miou"] and a["history"] == b["history"]
    ours = load_teacher(tmp_path / "whole").state_dict()
    theirs = load_teacher(tmp_path / "killed").state_dict()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def test_a_finished_teacher_is_not_overwritten(runner, trained_teacher, tmp_path):
    import shutil

    copy = tmp_path / "t"
    shutil.copytree(trained_teacher, copy)
    before = (copy / "teacher.safetensors").read_bytes()
    args = _diffusion_teacher_args(copy)
    result = runner.invoke(distill, args)
    assert result.exit_code == 2 and "already holds a finished teacher" in result.stderr
    assert (copy / "teacher.safetensors").read_bytes() == before


def test_teacher_holdout_evaluates_on_the_images_a_student_holdout_keeps_out(runner, tmp_path):
    result = runner.invoke(distill, _teacher_args(tmp_path / "t", ["--steps", "2", "--set", "holdout=6"]))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert metrics["eval_split"] == "train-holdout" and metrics["eval_images"] == 6
    result = runner.invoke(distill, _teacher_args(tmp_path / "v", ["--steps", "2"]))
    assert json.loads((tmp_path / "v" / "metrics.json").read_text())["eval_split"] == "val"


def test_a_killed_cgd_run_resumes_its_channel_shuffle_exactly(runner, trained_teacher, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    extra = ("--set", "kd_params.shuffle_every=3", "--set", "kd_params.group_size=2")
    args = {"teacher": trained_teacher, "kd": "cgd=3", "extra": extra}
    whole = runner.invoke(distill, run_args(tmp_path / "whole", **args))
    assert whole.exit_code == 0, whole.output
    with monkeypatch.context() as patch:
        kill_after_checkpoint(patch, 8)
        killed = runner.invoke(distill, run_args(tmp_path / "killed", **args))
    assert killed.exit_code != 0
    state = load_file(str(tmp_path / "killed" / "checkpoints" / "last" / "extra.safetensors"))
    assert int(state["cgd.loss.calls"]) == 8  # the loss's call count travels with the checkpoint
    resumed = runner.invoke(distill, [*run_args(tmp_path / "killed", **args), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    ours = load_file(str(tmp_path / "whole" / "checkpoints" / "last" / "model.safetensors"))
    theirs = load_file(str(tmp_path / "killed" / "checkpoints" / "last" / "model.safetensors"))
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)
