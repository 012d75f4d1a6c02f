"""Outputs of the prompt side and of training: all or nothing, unique names, a NaN stops the run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import prompt_kit.score_report as score_report
from cli.distill_cli import distill
from cli.promptkit_cli import promptkit
from prompt_kit.resources import prompts_dir
from tests.reliability.conftest import DATA, assert_clean_error, files_under

SETS = prompts_dir() / "camvid"


def test_two_sets_with_one_name_get_their_own_heatmaps_and_the_count_is_true(runner, tmp_path):
    for folder in ("a/x", "b/x"):
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(SETS / "label.yaml", tmp_path / folder / "label.yaml")
    report = tmp_path / "report"
    result = runner.invoke(promptkit, ["score", str(tmp_path / "a/x/label.yaml"), str(tmp_path / "b/x/label.yaml"),
                                       "--out", str(report)])  # fmt: skip
    assert result.exit_code == 0, result.output
    heatmaps = sorted(path.name for path in report.glob("heatmap_*.png"))
    assert heatmaps == ["heatmap_x_label-2.png", "heatmap_x_label.png"]
    files = [path for path in report.iterdir() if path.is_file()]
    assert f"wrote {len(files)} files" in result.stderr


def test_a_failing_heatmap_leaves_none_of_the_report(runner, tmp_path, monkeypatch):
    calls = {"count": 0}
    original = score_report.figure_png

    def failing(figure, dpi=110):
        calls["count"] += 1
        if calls["count"] == 2:
            raise OSError(28, "No space left on device")
        return original(figure, dpi)

    monkeypatch.setattr(score_report, "figure_png", failing)
    report = tmp_path / "report"
    result = runner.invoke(promptkit, ["score", str(SETS / "label.yaml"), str(SETS / "sentence.yaml"), "--out",
                                       str(report)])  # fmt: skip
    assert_clean_error(result, exit_code=1)
    assert not report.exists() or list(report.iterdir()) == []


def test_a_set_that_cannot_be_saved_leaves_no_report(runner, tmp_path):
    (tmp_path / "file").write_text("x")
    before = files_under(tmp_path)
    args = ["generate", "--style", "orthogonal", "--out", str(tmp_path / "file" / "o.yaml"), "--report",
            str(tmp_path / "report.json")]  # fmt: skip
    assert_clean_error(runner.invoke(promptkit, args))
    assert files_under(tmp_path) == before


def _loss_becomes(monkeypatch, value: float) -> None:
    """The cross-entropy returns ``value`` (a config can no longer ask for it: ``ce_weight=.nan`` is refused)."""
    import distill.training.student as student_training

    original = student_training.F.cross_entropy

    def poisoned(*args, **kwargs):
        return original(*args, **kwargs) * value

    monkeypatch.setattr(student_training.F, "cross_entropy", poisoned)


def test_a_nan_loss_stops_the_run_naming_the_step_and_the_term(runner, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ["run", "--student", "tiny", "--kd", "none", "--data", DATA, "--steps", "4", "--student-size", "32x48",
            "--out", str(out)]  # fmt: skip
    _loss_becomes(monkeypatch, float("nan"))
    line = assert_clean_error(runner.invoke(distill, args), exit_code=1)
    assert "the loss is nan at step 1 (ce = nan)" in line
    assert not out.exists()  # nothing was checkpointed: nothing to keep


@pytest.mark.parametrize("value", [float("inf"), -float("inf")])
def test_an_infinite_loss_stops_the_run_too(runner, tmp_path, monkeypatch, value):
    args = ["run", "--student", "tiny", "--kd", "none", "--data", DATA, "--steps", "2", "--student-size", "32x48",
            "--out", str(tmp_path / "run")]  # fmt: skip
    _loss_becomes(monkeypatch, value)
    line = assert_clean_error(runner.invoke(distill, args), exit_code=1)
    assert "at step 1" in line and "inf" in line


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_non_finite_loss_weight_is_refused_before_training(runner, tmp_path, value):
    args = ["run", "--student", "tiny", "--kd", "none", "--data", DATA, "--steps", "2", "--student-size", "32x48",
            "--set", f"ce_weight={value}", "--out", str(tmp_path / "run")]  # fmt: skip
    assert "ce_weight" in assert_clean_error(runner.invoke(distill, args))
    assert not (tmp_path / "run").exists()


def test_a_damaged_embedding_cache_entry_is_dropped_and_recomputed(tmp_path, caplog):
    import torch

    from prompt_kit.embedding_cache import EmbeddingCache
    from prompt_kit.encoders import TextEmbedding

    cache = EmbeddingCache(tmp_path / "cache")
    item = TextEmbedding(torch.zeros(1, 3, 4), torch.ones(1, 3, dtype=torch.int64), torch.zeros(1, 4))
    cache.put_many("encoder", {"a road": item, "a tree": item})
    damaged = cache._path("encoder", "a road")
    damaged.write_bytes(damaged.read_bytes()[:40])
    found = cache.get_many("encoder", ["a road", "a tree"])
    assert list(found) == ["a tree"] and not damaged.exists()
    assert "dropping a damaged embedding-cache entry" in caplog.text


def test_a_damaged_teacher_output_cache_entry_is_computed_again(runner, teacher_copy, tmp_path):
    args = ["run", "--teacher", str(teacher_copy), "--student", "tiny", "--kd", "kl", "--data", DATA, "--steps", "2",
            "--student-size", "32x48", "--set", "val_images=8", "--set", "teacher_cache=image"]  # fmt: skip
    first = runner.invoke(distill, [*args, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    (entry,) = (teacher_copy / "output_cache").glob("*.safetensors")
    entry.write_bytes(entry.read_bytes()[:100])
    second = runner.invoke(distill, [*args, "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert "cannot be used: computing it again" in second.stderr
    a, b = ((tmp_path / name / "metrics.json").read_text() for name in "ab")
    assert json.loads(a)["miou"] == json.loads(b)["miou"]


def test_a_damaged_view_bank_shard_is_computed_again(runner, teacher_copy, tmp_path, caplog):
    args = ["run", "--teacher", str(teacher_copy), "--student", "tiny", "--kd", "kl", "--data", DATA, "--steps", "2",
            "--student-size", "32x48", "--set", "val_images=8", "--set", "teacher_views=2"]  # fmt: skip
    first = runner.invoke(distill, [*args, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    folder = Path(json.loads((tmp_path / "a" / "metrics.json").read_text())["view_bank"]["folder"])
    (shard,) = folder.glob("shard-*.safetensors")
    shard.write_bytes(shard.read_bytes()[:100])
    with caplog.at_level("WARNING"):
        second = runner.invoke(distill, [*args, "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert "cannot be used: computing it again" in caplog.text
    a, b = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in "ab")
    assert b["teacher_forward_images"] == a["teacher_forward_images"] == 24 * 2
    assert a["miou"] == b["miou"]
