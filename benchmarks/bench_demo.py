"""Wall time of `promptkit demo` (target: at most 10 minutes on two CPU cores).

    python benchmarks/bench_demo.py [--out DIR]

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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or Path(tmp) / "demo")
        if out.exists():
            sys.exit(f"{out} exists: the benchmark times a run from scratch; pass a new --out")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli.promptkit_cli", "demo", "--out", str(out)], check=True)
        seconds = time.perf_counter() - start
        teachers = sum(json.loads(p.read_text())["train_seconds"] for p in out.glob("teachers/**/metrics.json"))
        students = sum(json.loads(p.read_text())["train_seconds"] for p in out.glob("students/**/metrics.json"))
    print(f"promptkit demo: {seconds:.0f} s wall, {seconds / TARGET_SECONDS:.2f}x the {TARGET_SECONDS:.0f} s target")
    print(
        f"  teachers {teachers:.0f} s, students {students:.0f} s, rest (imports, embeddings, caches) "
        f"{seconds - teachers - students:.0f} s"
    )


if __name__ == "__main__":
    main()
