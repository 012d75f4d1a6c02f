"""`distill compare`, `promptkit demo` and `distill eval` end to end on tiny synthetic data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from cli.distill_cli import distill
from cli.promptkit_cli import promptkit
from tests.distill.conftest import DATA, kill_after_checkpoint

TINY = [
    "--set",
    "teacher.steps=6",
    "--set",
    "teacher.pretrain_denoiser=2",
    "--set",
    "teacher.image_size=[32, 48]",
    "--set",
    "teacher.batch_size=4",
    "--set",
    "teacher.val_images=8",
    "--set",
    "teacher.model.block_out_channels=[16, 32, 32]",
    "--set",
    "teacher.model.head_channels=16",
    "--set",
    "teacher.model.class_dim=16",
    "--set",
    "run.steps=6",
    "--set",
    "run.student_size=[32, 48]",
    "--set",
    "run.batch_size=4",
    "--set",
    "run.val_images=8",
    "--set",
    "run.eval_every=3",
    "--set",
    "run.checkpoint_every=2",
]


def compare_args(out, styles="label,orthogonal", seeds=2):
    return ["compare", "--data", DATA, "--styles", styles, "--seeds", str(seeds), "--out", str(out), *TINY]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("compare")
    result = CliRunner().invoke(distill, compare_args(out))
    assert result.exit_code == 0, result.output
    return out, result


def test_compare_writes_one_row_per_style_and_the_baseline(finished):
    out, result = finished
    for name in ("results.md", "results.csv", "results.json", "student_miou.png", "orthogonality_vs_teacher.png"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "results.csv")
    assert list(table["style"]) == ["label", "orthogonal", "(no KD)"]
    assert list(table["kd"]) == ["dist", "dist", "none"]  # DIST is compare's default KD
    assert "| label | dist |" in result.stdout and "(no KD)" in (out / "results.md").read_text()
    assert "[1/8] teacher label seed 0" in result.stderr and "left" in result.stderr


def test_the_students_of_a_teacher_share_one_view_bank(finished):
    out, _ = finished
    for style in ("label", "orthogonal"):
        runs = sorted((out / "students" / style).glob("*/teacher0/seed*/metrics.json"))
        assert len(runs) == 2
        first, second = (json.loads(path.read_text()) for path in runs)
        assert first["teacher_cache"] == "views" and first["teacher_forward_images"] > 0
        assert second["teacher_forward_images"] == 0  # the second seed reads the first one's bank
        assert second["view_bank"]["folder"] == first["view_bank"]["folder"]


def test_table_numbers_are_read_from_the_run_folders(finished):
    out, _ = finished
    rows = {row["style"]: row for row in json.loads((out / "results.json").read_text())["rows"]}
    for style in ("label", "orthogonal"):
        seeds = [
            read_json(out / "students" / style / "dist" / "teacher0" / f"seed{seed}" / "metrics.json")["miou"]
            for seed in range(2)
        ]
        assert rows[style]["student_mious"] == seeds
        assert math.isclose(rows[style]["student_miou"], sum(seeds) / 2)
        teacher = json.loads((out / "teachers" / style / "seed0" / "metrics.json").read_text())
        assert rows[style]["teacher_miou"] == teacher["miou"]
    baseline = [
        json.loads((out / "students" / "no_kd" / f"seed{s}" / "metrics.json").read_text())["miou"] for s in (0, 1)
    ]
    assert math.isclose(rows["orthogonal"]["gain_over_no_kd"], rows["orthogonal"]["student_miou"] - sum(baseline) / 2)
    # the orthogonal set is the more orthogonal one, as `promptkit score` reports
    assert rows["orthogonal"]["max_cos"] < rows["label"]["max_cos"]


def test_rerun_skips_finished_cells_and_resumes_a_killed_one(finished, runner, tmp_path, monkeypatch):
    import shutil

    import distill.training.prompt_teacher as teacher_training

    out = tmp_path / "again"
    shutil.copytree(finished[0], out)
    killed = out / "students" / "orthogonal" / "dist" / "teacher0" / "seed1"
    shutil.rmtree(killed)
    (out / "results.md").unlink()
    with monkeypatch.context() as patch:
        kill_after_checkpoint(patch, 4)
        first = runner.invoke(distill, compare_args(out))
    assert first.exit_code != 0 and not (killed / "metrics.json").exists()
    assert json.loads((killed / "checkpoints" / "last" / "state.json").read_text())["step"] == 4

    def no_teacher_training(config, resume=False):
        raise AssertionError(f"finished teacher {config.out} trained again")

    monkeypatch.setattr(teacher_training, "train_teacher", no_teacher_training)
    second = runner.invoke(distill, compare_args(out))
    assert second.exit_code == 0, second.output
    assert "7 of 8 cells already finished" in second.stderr
    resumed = json.loads((killed / "metrics.json").read_text())
    uninterrupted = json.loads(
        (finished[0] / "students" / "orthogonal" / "dist" / "teacher0" / "seed1" / "metrics.json").read_text()
    )
    assert resumed["miou"] == uninterrupted["miou"] and resumed["history"] == uninterrupted["history"]
    rows = json.loads((out / "results.json").read_text())["rows"]
    before = json.loads((finished[0] / "results.json").read_text())["rows"]
    assert [row["student_mious"] for row in rows] == [row["student_mious"] for row in before]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--styles", "label,poetic"], "unknown style poetic"),
        (["--kd", "none"], "other than none"),
        (["--set", "teacher.stepz=3"], "teacher.stepz"),
        (["--student", "resnet999", "--styles", "label"], "unknown student 'resnet999'"),
        (["--set", "run.student=lraspp_mobilenetv3"], "use --student instead of run.student"),
        (["--prompt-sets", "/nonexistent"], "no prompt set for style"),
    ],
)
def test_compare_errors_exit_2_without_traceback(runner, tmp_path, args, message):
    result = runner.invoke(distill, ["compare", "--data", DATA, "--out", str(tmp_path / "c"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_eval_reproduces_the_run_and_the_teacher_numbers(finished, runner):
    out, _ = finished
    run = out / "students" / "label" / "dist" / "teacher0" / "seed0"
    expected = json.loads((run / "metrics.json").read_text())
    for target in (run, run / "checkpoints" / "best" / "model.safetensors"):
        result = runner.invoke(distill, ["eval", str(target), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["miou"] == expected["miou"]
    teacher = out / "teachers" / "label" / "seed0"
    result = runner.invoke(distill, ["eval", str(teacher)])
    assert result.exit_code == 0, result.output
    teacher_miou = json.loads((teacher / "metrics.json").read_text())["miou"]
    assert f"mIoU {teacher_miou:.4f}" in result.stdout and "road" in result.stdout.lower()


def test_eval_on_another_split_and_bad_paths(finished, runner, tmp_path):
    run = finished[0] / "students" / "no_kd" / "seed0"
    result = runner.invoke(distill, ["eval", str(run), "--split", "test", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["split"] == "test"
    for bad, message in ((tmp_path / "nothing", "does not exist"), (finished[0], "neither a teacher folder")):
        result = runner.invoke(distill, ["eval", str(bad)])
        assert result.exit_code == 2 and message in result.stderr, result.output


def test_demo_runs_the_whole_comparison(runner, tmp_path):
    """The demo's own pipeline with every size shrunk (the real demo is timed by benchmarks/bench_demo.py)."""
    network = ["--set", "network_teacher.steps=2", "--set", "network_teacher.student_size=[32, 48]"]
    network += ["--set", "network_teacher.batch_size=4", "--set", "network_teacher.val_images=8"]
    args = ["demo", "--out", str(tmp_path / "demo"), "--seeds", "1", "--set", f"data={DATA}", *TINY, *network]
    result = runner.invoke(promptkit, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "demo" / "results.csv")
    styles = ["label", "sentence", "bag_of_words", "orthogonal"]
    assert list(table["style"]) == [*styles, "efficientnet_lite0", "(no KD)"]
    assert list(table["seeds"]) == [1] * 6 and list(table["teacher_seeds"]) == [2, 2, 2, 2, 1, 0]
    assert "Prompt transfer" in result.stdout and "Differences between styles" in result.stdout
    teacher_config = (tmp_path / "demo" / "teachers" / "efficientnet_lite0" / "seed0" / "config.yaml").read_text()
    assert "student_pretrained: imagenet" in teacher_config and "kd: none" in teacher_config


def test_demo_command_uses_the_documented_settings(runner, tmp_path, monkeypatch):
    """Without options the demo runs DEMO_SETTINGS (2 teacher seeds, 1 student each), not CompareConfig's defaults."""
    import distill.compare.run as compare
    from distill.compare.demo import DEMO_SETTINGS

    seen = []

    def capture(config, log=None):
        seen.append(config)
        Path(config.out).mkdir(parents=True)
        (Path(config.out) / "results.md").write_text("| label | dist |\n")

    monkeypatch.setattr(compare, "run_compare", capture)
    result = runner.invoke(promptkit, ["demo", "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert "| label | dist |" in result.stdout
    (config,) = seen
    assert config.seeds == DEMO_SETTINGS["seeds"] == 1 and config.teacher_seeds == 2
    assert config.teacher["model"] == {"conditioning": "pooled", "class_projection": "frozen"}
    assert config.run["student_size"] == (48, 64)
    assert config.teachers == ["efficientnet_lite0"] and config.network_teacher["student_size"] == (96, 128)


def test_compare_with_named_teachers_gives_one_row_each(runner, trained_teacher, tmp_path):
    """A network trained by compare itself and an existing teacher folder, beside the no-KD baseline."""
    network = ["--set", "network_teacher.steps=4", "--set", "network_teacher.student_size=[32, 48]"]
    network += ["--set", "network_teacher.batch_size=4", "--set", "network_teacher.val_images=8"]
    args = ["compare", "--data", DATA, "--styles", "none", "--teacher", "tiny", "--teacher", str(trained_teacher)]
    args += ["--kd", "kl", "--seeds", "1", "--out", str(tmp_path / "c"), *TINY, *network]
    result = runner.invoke(distill, args)
    assert result.exit_code == 0, result.output
    rows = {row["style"]: row for row in json.loads((tmp_path / "c" / "results.json").read_text())["rows"]}
    assert set(rows) == {"tiny", trained_teacher.name, "(no KD)"}
    trained_here = json.loads((tmp_path / "c" / "teachers" / "tiny" / "seed0" / "metrics.json").read_text())
    assert rows["tiny"]["teacher_miou"] == trained_here["miou"]
    assert rows["tiny"]["teacher_seconds"] == trained_here["train_seconds"]
    folder = json.loads((trained_teacher / "metrics.json").read_text())
    assert rows[trained_teacher.name]["teacher_miou"] == folder["miou"]
    assert rows[trained_teacher.name]["max_cos"] is None  # no prompt style: no orthogonality column
    config = tmp_path / "c" / "students" / trained_teacher.name / "kl" / "teacher0" / "seed0" / "config.yaml"
    config = config.read_text()
    assert f"teacher: {trained_teacher}" in config


def test_compare_needs_something_to_compare(runner, tmp_path):
    result = runner.invoke(distill, ["compare", "--data", DATA, "--styles", "none", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "no teachers to compare" in result.stderr


SEEDED = ["--teacher-seeds", "2", "--set", "teacher.checkpoint_every=2"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Two teacher seeds per style, one student seed on each."""
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("seeded")
    result = CliRunner().invoke(distill, [*compare_args(out, seeds=1), *SEEDED])
    assert result.exit_code == 0, result.output
    return out, result


def test_teacher_seeds_give_means_over_teachers_and_intervals(seeded):
    out, result = seeded
    report = json.loads((out / "results.json").read_text())
    rows = {row["style"]: row for row in report["rows"]}
    grids = {}
    for style in ("label", "orthogonal"):
        teachers = [json.loads((out / "teachers" / style / f"seed{t}" / "metrics.json").read_text()) for t in (0, 1)]
        seeds = [yaml_field(out / "teachers" / style / f"seed{t}" / "config.yaml", "seed") for t in (0, 1)]
        assert seeds == [0, 1]
        assert rows[style]["teacher_mious"] == [t["miou"] for t in teachers]
        assert rows[style]["teacher_seeds"] == 2 and rows[style]["seeds"] == 1
        grids[style] = [
            read_json(out / "students" / style / "dist" / f"teacher{t}" / "seed0" / "metrics.json")["miou"]
            for t in (0, 1)
        ]
        assert rows[style]["student_mious"] == grids[style]
        assert rows[style]["gain_low"] <= rows[style]["gain_over_no_kd"] <= rows[style]["gain_high"]
    teacher_pair, pair = report["differences"]
    assert teacher_pair["measure"] == "teacher" and pair["measure"] == "student"
    teacher_gaps = [
        a - b for a, b in zip(rows["label"]["teacher_mious"], rows["orthogonal"]["teacher_mious"], strict=True)
    ]
    assert math.isclose(teacher_pair["difference"], sum(teacher_gaps) / 2)
    assert (pair["first"], pair["second"], pair["unit"]) == ("label", "orthogonal", "teacher seed")
    assert pair["replicates"] == 2
    differences = [a - b for a, b in zip(grids["label"], grids["orthogonal"], strict=True)]
    assert math.isclose(pair["difference"], sum(differences) / 2)
    assert pair["low"] <= pair["difference"] <= pair["high"]
    assert "95% interval" in result.stdout and "| student | dist | label | orthogonal |" in result.stdout
    assert (out / "differences.csv").is_file()


def read_json(path):
    return json.loads(path.read_text())


def yaml_field(path, key):
    import yaml

    return yaml.safe_load(path.read_text())[key]


def test_a_killed_teacher_seed_resumes_to_the_same_table(seeded, runner, tmp_path, monkeypatch):
    import shutil

    out = tmp_path / "again"
    shutil.copytree(seeded[0], out)
    shutil.rmtree(out / "teachers" / "orthogonal" / "seed1")
    shutil.rmtree(out / "students" / "orthogonal" / "dist" / "teacher1")
    with monkeypatch.context() as patch:
        kill_after_checkpoint(patch, 4)
        first = runner.invoke(distill, [*compare_args(out, seeds=1), *SEEDED])
    assert first.exit_code != 0
    assert not (out / "teachers" / "orthogonal" / "seed1" / "metrics.json").exists()
    second = runner.invoke(distill, [*compare_args(out, seeds=1), *SEEDED])
    assert second.exit_code == 0, second.output
    before = json.loads((seeded[0] / "results.json").read_text())
    after = json.loads((out / "results.json").read_text())
    assert [r["teacher_mious"] for r in after["rows"]] == [r["teacher_mious"] for r in before["rows"]]
    assert [r["student_mious"] for r in after["rows"]] == [r["student_mious"] for r in before["rows"]]


def test_prompt_transfer_gives_each_teacher_the_other_styles_prompts(seeded, runner):
    out, result = seeded
    transfer = {(r["trained_with"], r["given"]): r for r in json.loads((out / "results.json").read_text())["transfer"]}
    assert set(transfer) == {(a, b) for a in ("label", "orthogonal") for b in ("label", "orthogonal")}
    for style in ("label", "orthogonal"):
        own = [read_json(out / "teachers" / style / f"seed{t}" / "metrics.json")["miou"] for t in (0, 1)]
        assert transfer[(style, style)]["teacher_mious"] == own
    # an off-diagonal cell is what `distill eval --prompts` gives for that teacher
    from prompt_kit.resources import prompts_dir

    teacher, prompts = out / "teachers" / "label" / "seed1", prompts_dir() / "camvid" / "orthogonal.yaml"
    evaluated = runner.invoke(distill, ["eval", str(teacher), "--prompts", str(prompts), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert transfer[("label", "orthogonal")]["teacher_mious"][1] == json.loads(evaluated.stdout)["miou"]
    assert len(json.loads((out / "transfer.json").read_text())) == 4  # the off-diagonal evaluations, kept
    assert "Prompt transfer" in result.stdout and (out / "transfer.csv").is_file()
