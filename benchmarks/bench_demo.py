"""Wall time of `promptkit demo` (target: at most 10 minutes on two CPU cores).

    python benchmarks/bench_demo.py [--out DIR] [--set KEY=VALUE ...]

``--set`` passes compare overrides to the demo, e.g. ``--set run.teacher_cache=image --set
run.teacher_views=0`` for the whole-image cache the demo read before the view bank (a baseline in
the same session: the demo's wall time moves with the machine).

Runs the demo from scratch in a new folder, then prints its wall time, the ratio to the
600-second target, and how the time splits between teachers and students (from the run
folders' own ``train_seconds``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for the demo (default: a temporary one)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or Path(tmp) / "demo")
        if out.exists():
            sys.exit(f"{out} exists: the benchmark times a run from scratch; pass a new --out")
        start = time.perf_counter()
        overrides = [part for value in args.overrides for part in ("--set", value)]
        command = [sys.executable, "-m", "cli.promptkit_cli", "demo", "--out", str(out), *overrides]
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        teachers = sum(json.loads(p.read_text())["train_seconds"] for p in out.glob("teachers/**/metrics.json"))
        students = [json.loads(p.read_text()) for p in out.glob("students/**/metrics.json")]
        banks = sum(m["view_bank"]["build_seconds"] for m in students if m.get("view_bank", {}).get("built"))
        students = sum(m["train_seconds"] for m in students)
    print(f"promptkit demo: {seconds:.0f} s wall, {seconds / TARGET_SECONDS:.2f}x the {TARGET_SECONDS:.0f} s target")
    print(
        f"  teachers {teachers:.0f} s, students {students:.0f} s (of which view-bank builds {banks:.0f} s), "
        f"rest (imports, embeddings, caches) {seconds - teachers - students:.0f} s"
    )


if __name__ == "__main__":
    main()
