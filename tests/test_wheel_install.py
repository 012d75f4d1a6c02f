"""The wheel carries templates and curated sets: install it (not editable) and run from elsewhere."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_generates_from_another_folder(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    wheel = next(dist.glob("promptkit-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Dependencies come from this environment's site-packages (a plain path: its editable .pth of
    # promptkit is not processed), promptkit itself only from the wheel.
    new_site = next((venv / "lib").glob("python*/site-packages"))
    (new_site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import prompt_kit; print(prompt_kit.__file__)"],
        cwd=work, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(venv)), where
    command = [str(venv / "bin" / "promptkit"), "generate", "--dataset", "camvid", "--style", "orthogonal"]
    result = subprocess.run([*command, "--out", "o.yaml"], cwd=work, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "style: orthogonal" in (work / "o.yaml").read_text()
    listing = subprocess.run([str(venv / "bin" / "promptkit"), "classes"], cwd=work, capture_output=True, text=True)
    assert "cityscapes" in listing.stdout
