"""Kill a run at chosen moments, including in the middle of writing a checkpoint; resume; same numbers.

Each kill point is made deterministic by a hook on the file operations the checkpoint writer uses
(the Nth write of a given file raises ``KeyboardInterrupt``, as a Ctrl-C or SIGINT would there), or
on the loss function for a kill mid-step. After the kill, ``--resume`` must finish with the metrics
and best weights of a run that was never interrupted.
"""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import pytest

import distill.training.checkpoints as checkpoint_files
import distill.training.core as core
from cli.distill_cli import distill
from tests.reliability.conftest import DATA, kill_after_checkpoint

STEPS, CHECKPOINT_EVERY = 6, 2


def run_args(out: Path, *extra: str) -> list[str]:
    return ["run", "--student", "tiny", "--kd", "none", "--data", DATA, "--steps", str(STEPS), "--student-size",
            "32x48", "--set", f"checkpoint_every={CHECKPOINT_EVERY}", "--set", "eval_every=3", "--set", "val_images=8",
            "--set", "batch_size=4", "--out", str(out), *extra]  # fmt: skip


def _kill_on_write(patch, function: str, name: str, occurrence: int) -> None:
    """The ``occurrence``-th call of ``checkpoints.<function>`` writing a file called ``name`` raises."""
    original = getattr(checkpoint_files, function)
    seen = {"count": 0}

    def writer(path, *args, **kwargs):
        if Path(path).name == name:
            seen["count"] += 1
            if seen["count"] == occurrence:
                if function == "atomic_write_bytes":  # half a file on disk first, as a real kill mid-write
                    Path(path).with_name(f".{name}.partial.tmp").write_bytes(args[0][: len(args[0]) // 2])
                raise KeyboardInterrupt
        return original(path, *args, **kwargs)

    patch.setattr(checkpoint_files, function, writer)


def _kill_on_rename(patch, source_name: str, occurrence: int) -> None:
    """The ``occurrence``-th rename of a folder called ``source_name`` raises (a kill mid-switch)."""
    original = pathlib.Path.rename
    seen = {"count": 0}

    def rename(self, target):
        if self.name == source_name:
            seen["count"] += 1
            if seen["count"] == occurrence:
                raise KeyboardInterrupt
        return original(self, target)

    patch.setattr(pathlib.Path, "rename", rename)


def _kill_in_step(patch, step: int) -> None:
    """The loss of step ``step`` (1-based) raises, after the batch was drawn and the forward began."""
    original = core.train_steps

    def train_steps(**kwargs):
        loss_fn, calls = kwargs["loss_fn"], {"count": 0}

        def dying(batch):
            calls["count"] += 1
            if calls["count"] == step:
                raise KeyboardInterrupt
            return loss_fn(batch)

        return original(**{**kwargs, "loss_fn": dying})

    patch.setattr("distill.training.student.train_steps", train_steps)


KILLS = {
    "after-the-step-2-checkpoint": lambda patch: kill_after_checkpoint(patch, 2),
    "mid-step-5": lambda patch: _kill_in_step(patch, 5),
    "writing-weights-of-step-4": lambda patch: _kill_on_write(patch, "atomic_write_bytes", "model.safetensors", 2),
    "writing-optimizer-of-step-4": lambda patch: _kill_on_write(patch, "atomic_write_bytes", "optimizer.pt", 2),
    "writing-state-json-of-step-4": lambda patch: _kill_on_write(patch, "atomic_write_text", "state.json", 2),
    "switching-in-the-step-4-checkpoint": lambda patch: _kill_on_rename(patch, "last.incoming", 2),
    "switching-in-the-step-6-checkpoint": lambda patch: _kill_on_rename(patch, "last.incoming", 3),
}  # fmt: skip


def _result(folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    weights = (folder / "checkpoints" / "best" / "model.safetensors").read_bytes()
    keys = ("miou", "pixel_accuracy", "per_class_iou", "history", "best_step")
    return {**{key: metrics[key] for key in keys}, "best_weights": weights}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = CliRunner().invoke(distill, run_args(out))
    assert result.exit_code == 0, result.output
    return _result(out)


def test_at_least_five_kill_points_including_checkpoint_writes():
    assert len(KILLS) >= 5 and sum("writing" in name or "switching" in name for name in KILLS) >= 3


@pytest.mark.parametrize("kill", list(KILLS), ids=list(KILLS))
def test_a_kill_then_resume_ends_with_the_uninterrupted_numbers(kill, runner, tmp_path, monkeypatch, uninterrupted):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        KILLS[kill](patch)
        killed = runner.invoke(distill, run_args(out))
    assert killed.exit_code == 130 and killed.stderr.strip().endswith("error: interrupted"), killed.output
    assert not (out / "metrics.json").exists()
    resumed = runner.invoke(distill, run_args(out, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert _result(out) == uninterrupted
    leftovers = [path.name for path in (out / "checkpoints").iterdir() if path.name.endswith(".incoming")]
    assert leftovers == []


def test_an_unreadable_newest_checkpoint_falls_back_to_the_previous_one(runner, tmp_path, monkeypatch, uninterrupted):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        kill_after_checkpoint(patch, 4)
        runner.invoke(distill, run_args(out))
    newest = out / "checkpoints" / "last" / "optimizer.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # damaged after it was written (a disk error)
    resumed = runner.invoke(distill, run_args(out, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert "using the previous checkpoint" in resumed.stderr
    assert _result(out) == uninterrupted
