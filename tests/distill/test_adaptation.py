"""`distill adapt`: vDNA-ordered buckets, pseudo-labelled and KD-fine-tuned in turn, resumable, one table."""

from __future__ import annotations

import json

import pytest

from cli.distill_cli import distill
from distill.unlabelled.adaptation import bucket_order
from prompt_kit.errors import PromptKitError
from tests.distill.conftest import DATA, kill_after_checkpoint
from tests.distill.test_training import run_args

TARGET = DATA + ",domain=target"


def test_buckets_follow_the_order_and_cover_every_image_once():
    distances = [0.5, 0.1, 0.9, 0.3, 0.7]
    assert bucket_order(distances, 2, "asc", 0) == [[1, 3, 0], [4, 2]]
    assert bucket_order(distances, 2, "desc", 0) == [[2, 4, 0], [3, 1]]
    shuffled = bucket_order(distances, 3, "random", 7)
    assert sorted(i for group in shuffled for i in group) == [0, 1, 2, 3, 4] and len(shuffled) == 3
    assert shuffled == bucket_order(distances, 3, "random", 7)
    with pytest.raises(PromptKitError, match="--buckets 6 is more than the 5 target images"):
        bucket_order(distances, 6, "asc", 0)


@pytest.fixture(scope="module")
def student_run(trained_teacher, tmp_path_factory):
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("student") / "run"
    result = CliRunner().invoke(distill, run_args(out, trained_teacher, kd="none", steps=6))
    assert result.exit_code == 0, result.output
    return out


def adapt_args(trained_teacher, student_run, out):
    args = ["adapt", "--teacher", str(trained_teacher), "--student", str(student_run), "--source", DATA]
    args += ["--target", TARGET, "--buckets", "2", "--order", "asc", "--out", str(out)]
    return args + ["--set", "steps_per_bucket=4", "--set", "bins=50", "--set", "max_entropy=2.0"]


def test_adapt_runs_every_bucket_and_reports_gain_and_forgetting(runner, trained_teacher, student_run, tmp_path):
    out = tmp_path / "adapt"
    result = runner.invoke(distill, adapt_args(trained_teacher, student_run, out))
    assert result.exit_code == 0, result.output
    assert "| (unadapted) |" in result.output and "forgetting" in result.output
    record = json.loads((out / "adapt.json").read_text())
    assert [row["bucket"] for row in record["buckets"]] == [0, 1]
    order = record["order"]
    assert sorted(name for group in order["buckets"] for name in group) == [f"{i:02d}" for i in range(24)]
    assert order["mean_distance"][0] <= order["mean_distance"][1]  # ascending: nearest bucket first
    for row in record["buckets"]:
        assert row["target_gain"] == pytest.approx(row["target_miou"] - record["unadapted"]["target_miou"], abs=1e-3)
        assert row["source_forgetting"] == pytest.approx(
            record["unadapted"]["source_miou"] - row["source_miou"], abs=1e-3
        )
    # each bucket started from the previous one's student
    second = json.loads((out / "bucket_1" / "run" / "provenance.json").read_text())
    assert str(out / "bucket_0" / "run") in json.dumps(second["config"]["init_weights"])
    pseudo = json.loads((out / "bucket_0" / "pseudo" / "pseudo_labels.json").read_text())
    assert pseudo["max_entropy"] == 2.0 and pseudo["count"] == 12
    summary = runner.invoke(distill, ["adapt-summary", str(out)])
    assert summary.exit_code == 0, summary.output
    final = record["buckets"][-1]["target_gain"]
    path = ", ".join(f"{row['target_gain']:+.3f}" for row in record["buckets"])
    assert f"| all runs | 1 | 2.0 of 2 | {path} | {final:+.3f} (one run: no interval) |" in summary.output


def test_a_killed_adaptation_continues_where_it_stopped(runner, trained_teacher, student_run, tmp_path, monkeypatch):
    out = tmp_path / "adapt"
    with monkeypatch.context() as patch:
        calls = {"n": 0}
        from distill.training.core import Checkpoints

        original = Checkpoints.save

        def die_in_second_bucket(self, state):
            original(self, state)
            if "bucket_1" in str(self.folder) and state.step == 2:
                raise KeyboardInterrupt
            calls["n"] += 1

        patch.setattr(Checkpoints, "save", die_in_second_bucket)
        killed = runner.invoke(distill, adapt_args(trained_teacher, student_run, out))
    assert killed.exit_code != 0
    assert len(json.loads((out / "adapt.json").read_text())["buckets"]) == 1
    resumed = runner.invoke(distill, adapt_args(trained_teacher, student_run, out))
    assert resumed.exit_code == 0, resumed.output
    assert len(json.loads((out / "adapt.json").read_text())["buckets"]) == 2
    other = adapt_args(trained_teacher, student_run, out)
    other[other.index("--buckets") + 1] = "3"
    refused = runner.invoke(distill, other)
    assert refused.exit_code == 2 and "holds an adaptation with other settings" in refused.stderr


def test_adapt_needs_a_finished_student(runner, trained_teacher, tmp_path, monkeypatch):
    killed = tmp_path / "killed"
    with monkeypatch.context() as patch:
        kill_after_checkpoint(patch, 4)
        runner.invoke(
            distill, run_args(killed, trained_teacher, kd="none", steps=8, extra=["--set", "checkpoint_every=4"])
        )
    result = runner.invoke(distill, adapt_args(trained_teacher, killed, tmp_path / "adapt"))
    assert result.exit_code == 2 and "finished run" in result.stderr, result.output


def test_replay_trains_each_bucket_beside_the_source_labels(runner, trained_teacher, student_run, tmp_path):
    out = tmp_path / "replay"
    args = adapt_args(trained_teacher, student_run, out) + ["--set", "replay=true", "--set", "steps_per_bucket=2"]
    args[args.index("--buckets") + 1] = "1"
    result = runner.invoke(distill, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "bucket_0" / "run" / "provenance.json").read_text())["config"]
    assert config["data"] == f"{DATA}+folder:{out / 'bucket_0' / 'pseudo'}"
    # a record written before min_image_share existed resumes as the same adaptation
    record = json.loads((out / "adapt.json").read_text())
    del record["config"]["min_image_share"]
    (out / "adapt.json").write_text(json.dumps(record))
    again = runner.invoke(distill, args)
    assert again.exit_code == 0, again.output
    assert "| 0 |" in again.output


def test_a_bucket_the_teacher_is_unsure_of_is_skipped(runner, trained_teacher, student_run, tmp_path):
    out = tmp_path / "guarded"
    args = adapt_args(trained_teacher, student_run, out) + ["--set", "max_entropy=0.3", "--set", "min_kept_share=1.0"]
    result = runner.invoke(distill, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "adapt.json").read_text())
    rows = record["buckets"]
    assert [row["skipped"] for row in rows] == [row["kept_share"] < 1.0 for row in rows]
    assert any(row["skipped"] for row in rows)
    for index, row in enumerate(rows):
        if row["skipped"]:  # nothing trained: the student, and so its scores, stay those before the bucket
            before = rows[index - 1] if index else record["unadapted"]
            assert (row["target_miou"], row["source_miou"]) == (before["target_miou"], before["source_miou"])
            assert not (out / f"bucket_{index}" / "run").exists()
    assert "(skipped)" in result.output


def test_images_the_teacher_is_unsure_of_are_left_out_of_their_bucket(runner, trained_teacher, student_run, tmp_path):
    out = tmp_path / "per-image"
    args = adapt_args(trained_teacher, student_run, out) + ["--set", "max_entropy=1.0", "--set", "steps_per_bucket=2"]
    result = runner.invoke(distill, [*args, "--set", "min_image_share=0.5"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "adapt.json").read_text())
    for index, row in enumerate(record["buckets"]):
        pseudo = json.loads((out / f"bucket_{index}" / "pseudo" / "pseudo_labels.json").read_text())
        assert pseudo["min_image_share"] == 0.5 and row["images_kept"] == pseudo["images_written"]
        labels = sorted(path.stem for path in (out / f"bucket_{index}" / "pseudo" / "labels").iterdir())
        assert len(labels) == row["images_kept"] and not set(labels) & set(pseudo["images_dropped"])
        assert row["skipped"] == (row["images_kept"] == 0)
    assert runner.invoke(distill, ["adapt-summary", str(out)]).exit_code == 0


def test_a_bucket_left_with_no_image_is_skipped(runner, trained_teacher, student_run, tmp_path):
    out = tmp_path / "none-left"
    args = adapt_args(trained_teacher, student_run, out) + ["--set", "max_entropy=0.0", "--set", "min_image_share=1.0"]
    result = runner.invoke(distill, args)
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "adapt.json").read_text())["buckets"]
    assert all(row["images_kept"] == 0 and row["skipped"] for row in rows)
    assert "| 0 (skipped) | 0 of 12 |" in result.output
