"""Run a command, record the peak resident memory of its process tree, and stop it before it takes the machine.

    python scripts/rss_guard.py --limit-gib 21 [--report FILE] -- COMMAND ...

Polls every 0.5 s (psutil); above the limit the whole tree is killed and the exit status is 137. Prints (and
writes to ``--report``) one JSON line: the command, its exit status, wall seconds, the peak RSS in GiB and whether
the limit stopped it. A real-size model that does not fit shows up as a line, not as a frozen machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time

import psutil


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-gib", type=float, default=21.0)
    parser.add_argument("--report", help="also write the JSON line here")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    start = time.perf_counter()
    child = subprocess.Popen(command)
    process = psutil.Process(child.pid)
    peak, stopped = 0, False
    while child.poll() is None:
        try:
            rss = tree_rss(process)
        except psutil.Error:
            break
        peak = max(peak, rss)
        if rss > args.limit_gib * 2**30:
            stopped = True
            for member in [*process.children(recursive=True), process]:
                with contextlib.suppress(psutil.Error):
                    member.kill()
            break
        time.sleep(0.5)
    code = child.wait()
    record = {
        "command": " ".join(command),
        "exit": 137 if stopped else code,
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_gib": round(peak / 2**30, 2),
        "stopped_at_limit_gib": args.limit_gib if stopped else None,
    }
    line = json.dumps(record)
    print(line, file=sys.stderr)
    if args.report:
        with open(args.report, "a") as handle:
            handle.write(line + "\n")
    sys.exit(record["exit"])


if __name__ == "__main__":
    main()
