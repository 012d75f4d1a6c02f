"""Output folders: one writer at a time, resume only with the same config, refuse to overwrite, file modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cli.distill_cli import distill
from distill.training.run_folder import LOCK_NAME, FolderLock, config_digest
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_text
from tests.reliability.conftest import DATA, assert_clean_error, kill_after_checkpoint, tiny_teacher_args

REPOSITORY = Path(__file__).resolve().parents[2]


def run_args(out: Path, *extra: str) -> list[str]:
    return ["run", "--student", "tiny", "--kd", "none", "--data", DATA, "--steps", "4", "--student-size", "32x48",
            "--set", "checkpoint_every=2", "--set", "eval_every=2", "--out", str(out), *extra]  # fmt: skip


def killed_run(runner, monkeypatch, out: Path, *extra: str) -> None:
    """A run killed right after its step-2 checkpoint."""
    with monkeypatch.context() as patch:
        kill_after_checkpoint(patch, 2)
        result = runner.invoke(distill, run_args(out, *extra))
    assert result.exit_code != 0 and (out / "checkpoints" / "last" / "state.json").is_file()


# -- one writer ---------------------------------------------------------------------------------
def test_a_second_writer_is_refused_at_once_naming_the_first(runner, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = FolderLock(out).acquire()  # another process writing the folder (a separate open file: a separate lock)
    try:
        started = time.monotonic()
        line = assert_clean_error(runner.invoke(distill, run_args(out)))
        assert time.monotonic() - started < 30
    finally:
        holder.release()
    assert "being written by another process" in line and f"pid {os.getpid()}" in line
    assert sorted(path.name for path in out.iterdir()) == []  # the refused writer wrote nothing


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(runner, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "gone", "since": "2026-01-01T00:00:00"}))
    result = runner.invoke(distill, run_args(out))
    assert result.exit_code == 0, result.output
    assert "left locked by a process that is gone (pid 999999 on gone" in result.stderr
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_two_processes_on_one_out_one_refused_and_the_folder_consistent(tmp_path):
    """The issue's reproduction: two `distill run` with seeds 0 and 1 into one --out."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    slow = ("--set", "steps=1500", "--set", "eval_every=1500", "--set", "checkpoint_every=1500")
    command = [sys.executable, "-m", "cli.distill_cli", *run_args(out, *slow)]
    first = subprocess.Popen([*command, "--seed", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / LOCK_NAME).is_file() or not (out / LOCK_NAME).read_text():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = subprocess.run([*command, "--seed", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2 and second.stderr.strip().startswith("error: "), second.stderr
    assert "being written by another process" in second.stderr and "Traceback" not in second.stderr
    _, errors = first.communicate(timeout=600)
    assert first.returncode == 0, errors.decode()[-2000:]
    config = yaml.safe_load((out / "config.yaml").read_text())
    provenance = json.loads((out / "provenance.json").read_text())
    assert config["seed"] == provenance["seed"] == 0


# -- finished folders and resume ----------------------------------------------------------------
def test_a_finished_run_is_refused_and_overwrite_starts_it_over(runner, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(distill, run_args(out)).exit_code == 0
    (out / "mine.txt").write_text("left by the user")
    line = assert_clean_error(runner.invoke(distill, run_args(out, "--seed", "1")))
    assert "already holds a finished run" in line and "--overwrite" in line
    assert (out / "mine.txt").is_file()
    result = runner.invoke(distill, run_args(out, "--seed", "1", "--overwrite"))
    assert result.exit_code == 0, result.output
    assert not (out / "mine.txt").exists() and yaml.safe_load((out / "config.yaml").read_text())["seed"] == 1


def test_a_finished_teacher_is_refused_and_overwrite_replaces_all_of_it(runner, tmp_path):
    out = tmp_path / "teacher"
    assert runner.invoke(distill, tiny_teacher_args(out, steps=2)).exit_code == 0
    weights = (out / "teacher.safetensors").read_bytes()
    line = assert_clean_error(runner.invoke(distill, tiny_teacher_args(out, steps=2, extra=["--seed", "3"])))
    assert "already holds a finished teacher" in line
    assert (out / "teacher.safetensors").read_bytes() == weights  # untouched by the refused run
    result = runner.invoke(distill, tiny_teacher_args(out, steps=2, extra=["--seed", "3", "--overwrite"]))
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((out / "config.yaml").read_text())["seed"] == 3
    assert json.loads((out / "provenance.json").read_text())["seed"] == 3


def test_a_killed_run_needs_resume_or_overwrite(runner, tmp_path, monkeypatch):
    out = tmp_path / "run"
    killed_run(runner, monkeypatch, out)
    line = assert_clean_error(runner.invoke(distill, run_args(out)))
    assert "killed run (checkpoint at step 2)" in line and "--resume" in line
    assert runner.invoke(distill, run_args(out, "--resume")).exit_code == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [(["--kd", "none", "--set", "lr=0.05"], "lr was 0.002, now 0.05"), (["--seed", "3"], "seed was 0, now 3"),
     (["--set", "eval_every=4"], "--allow-change eval_every")],
    ids=["lr", "seed", "eval-every"],
)  # fmt: skip
def test_resume_with_another_config_names_the_first_difference(runner, tmp_path, monkeypatch, change, named):
    out = tmp_path / "run"
    killed_run(runner, monkeypatch, out)
    recorded = (out / "config.yaml").read_text()
    line = assert_clean_error(runner.invoke(distill, [*run_args(out, "--resume"), *change]))
    assert "--resume with a different config" in line and named in line, line
    assert (out / "config.yaml").read_text() == recorded  # the record is not rewritten


def test_allow_change_resumes_with_a_result_neutral_field_and_records_it(runner, tmp_path, monkeypatch):
    out = tmp_path / "run"
    killed_run(runner, monkeypatch, out)
    args = [*run_args(out, "--resume", "--allow-change", "eval_every"), "--set", "eval_every=4"]
    result = runner.invoke(distill, args)
    assert result.exit_code == 0, result.output
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["changed_on_resume"] == {"eval_every": [2, 4]} and provenance["resumed_from_step"] == 2


def test_a_config_edited_after_the_checkpoint_is_refused(runner, tmp_path, monkeypatch):
    out = tmp_path / "run"
    killed_run(runner, monkeypatch, out)
    edited = (out / "config.yaml").read_text().replace("lr: 0.002", "lr: 0.05")
    (out / "config.yaml").write_text(edited)
    line = assert_clean_error(runner.invoke(distill, [*run_args(out, "--resume"), "--set", "lr=0.05"]))
    assert "was changed after the checkpoint" in line


def test_resume_of_a_finished_run_says_there_is_nothing_to_resume(runner, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(distill, run_args(out)).exit_code == 0
    assert "nothing to resume" in assert_clean_error(runner.invoke(distill, run_args(out, "--resume")))


def test_the_checkpoint_records_the_config_digest(runner, tmp_path, monkeypatch):
    out = tmp_path / "run"
    killed_run(runner, monkeypatch, out)
    state = json.loads((out / "checkpoints" / "last" / "state.json").read_text())
    assert state["config_sha256"] == config_digest(yaml.safe_load((out / "config.yaml").read_text()))


# -- eval of unfinished runs, file modes ----------------------------------------------------------
def test_eval_of_a_killed_run_says_it_is_unfinished(runner, tmp_path, monkeypatch):
    out = tmp_path / "run"
    killed_run(runner, monkeypatch, out)
    result = runner.invoke(distill, ["eval", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert "is an unfinished run (it stopped after step 2)" in result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["finished"] is False and metrics["checkpoint_step"] == 2


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_keep_the_users_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == mode


def test_run_folder_files_are_readable_by_the_team_under_umask_022(runner, tmp_path):
    previous = os.umask(0o022)
    try:
        assert runner.invoke(distill, run_args(tmp_path / "run")).exit_code == 0
    finally:
        os.umask(previous)
    written = ("config.yaml", "metrics.json", "provenance.json", "network.json", "checkpoints/best/model.safetensors")
    for name in written:
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644, name


def test_lock_refuses_in_process_too(tmp_path):
    first = FolderLock(tmp_path).acquire()
    try:
        with pytest.raises(PromptKitError, match="being written by another process"):
            FolderLock(tmp_path).acquire()
    finally:
        first.release()
    FolderLock(tmp_path).acquire().release()  # free again once released


def test_config_digests_of_folders_written_before_the_configs_were_composed_still_match():
    """Run folders resume on their config digest: composing the configs from shared parts changed no digest.

    The digests were computed at commit b4d1a20 (flat RunConfig and TeacherTrainingConfig).
    """
    from distill.training.prompt_teacher import TeacherTrainingConfig
    from distill.training.run_config import RunConfig
    from distill.training.run_folder import config_digest

    assert config_digest(RunConfig(kd="kl", steps=5)) == (
        "77248d00ad3bddf2d652f31597efdc098fb91b2474d8078fa470f5fee2e52bc0"
    )
    assert config_digest(TeacherTrainingConfig(prompts="p.yaml", steps=3)) == (
        "aa4145e0b3204698ed1f052e3f5a17a2fb6afecacc4ee2bfce39040b86b36603"
    )


def test_both_trainers_build_the_loop_settings_from_the_shared_fields():
    from distill.training.prompt_teacher import TeacherTrainingConfig
    from distill.training.run_config import RunConfig

    run = RunConfig(steps=7, batch_size=2, seed=3, checkpoint_every=4, eval_every=5, grad_clip=0.5, num_workers=1)
    settings = run.loop_settings()
    assert (settings.steps, settings.batch_size, settings.seed, settings.checkpoint_every) == (7, 2, 3, 4)
    assert (settings.eval_every, settings.grad_clip, settings.num_workers) == (5, 0.5, 1)
    teacher = TeacherTrainingConfig(prompts="p.yaml", steps=9, pretrain_denoiser=6)
    denoiser = teacher.loop_settings(steps=teacher.pretrain_denoiser, eval_every=None, grad_clip=0.0)
    assert (denoiser.steps, denoiser.eval_every, denoiser.grad_clip) == (6, None, 0.0)
    assert teacher.loop_settings().steps == 9
