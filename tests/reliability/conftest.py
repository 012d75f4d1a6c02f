"""Shared pieces of the reliability suite: the session's tiny teacher, and what a clean failure is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.distill.conftest import DATA, TINY_TEACHER, kill_after_checkpoint, tiny_teacher_args, trained_teacher

__all__ = ["DATA", "TINY_TEACHER", "kill_after_checkpoint", "tiny_teacher_args", "trained_teacher"]


def files_under(root: Path) -> dict[str, int]:
    """Every file and folder under ``root`` with its size (folders: -1): what a failed command must not change."""
    return {str(path.relative_to(root)): (path.stat().st_size if path.is_file() else -1) for path in root.rglob("*")}


def assert_clean_error(result, exit_code: int = 2) -> str:
    """Exactly one ``error:`` line, the last on stderr, the exit status, and no traceback; returns the line.

    Progress bars and ``warning:`` or progress lines before it are allowed: they were true when
    printed. What is not allowed is a second error, a traceback, or the error glued to another line.
    """
    output = result.output + (result.stderr if result.stderr not in result.output else "")
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == exit_code, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and lines[-1] == errors[0] and errors[0].startswith("error: "), result.stderr
    return errors[0]


@pytest.fixture(scope="session")
def finished_student(trained_teacher, tmp_path_factory) -> Path:
    """A tiny student run distilled from the session teacher (6 steps): what predict, vdna and adapt read."""
    from click.testing import CliRunner

    from cli.distill_cli import distill
    from tests.distill.test_training import run_args

    out = tmp_path_factory.mktemp("student") / "run"
    result = CliRunner().invoke(distill, run_args(out, trained_teacher, kd="none", steps=6))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture()
def teacher_copy(trained_teacher, tmp_path) -> Path:
    """A copy of the session teacher that a test may damage."""
    ignore = shutil.ignore_patterns("output_cache", "view_bank")
    return Path(shutil.copytree(trained_teacher, tmp_path / "teacher", ignore=ignore))
