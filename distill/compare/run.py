"""`distill compare` run: train (or skip, or resume) every cell of the plan, then write the tables.

The plan (``distill.compare.plan``) says what the cells are; this module only runs them in order,
with a progress line per cell and an estimate of the time left, and hands the finished folders to
``distill.compare.tables``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import pandas as pd

from distill.compare.plan import CELL_KINDS, Cell, CompareConfig, plan_cells
from distill.compare.report import duration_text, write_results
from distill.compare.tables import details, differences_table, prompt_transfer, results_table
from distill.training.configuration import config_to_yaml
from prompt_kit.files import atomic_write_text


class ProgressView:
    """Which cell runs, how long the finished ones took, and an estimate for the rest."""

    def __init__(self, cells: list[Cell], log: Callable[[str], None]) -> None:
        self.cells, self.log = cells, log
        self.start = time.time()
        self.seconds: dict[str, list[float]] = {kind: [] for kind in CELL_KINDS}

    def estimate_left(self, remaining: list[Cell]) -> str:
        """``about 5m30s left`` from the mean time of each kind of cell so far ('' before any)."""
        todo = [cell for cell in remaining if not cell.done]
        timed = sum(statistics.mean(self.seconds[c.kind]) for c in todo if self.seconds[c.kind])
        untimed = {kind: sum(c.kind == kind for c in todo) for kind in CELL_KINDS if not self.seconds[kind]}
        if not any(self.seconds.values()):
            return ""
        unknown = ", ".join(
            f"{count} {kind.replace('_', ' ')} cells not yet timed" for kind, count in untimed.items() if count
        )
        return f", about {duration_text(timed)} left" + (f" + {unknown}" if unknown else "")

    def starting(self, number: int, cell: Cell) -> None:
        eta = self.estimate_left(self.cells[number - 1 :])
        self.log(f"[{number}/{len(self.cells)}] {cell.label} ({duration_text(time.time() - self.start)} elapsed{eta})")

    def finished(self, cell: Cell, seconds: float) -> None:
        self.seconds[cell.kind].append(seconds)


def run_compare(config: CompareConfig, log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Run (or finish) every cell, then write and return the results table."""
    from distill.training.prompt_teacher import train_teacher
    from distill.training.student import train_student
    from prompt_kit.outputs import check_output_folder

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    out = check_output_folder(config.out, "--out", own="results.json")  # never into a run or an adaptation
    cells = plan_cells(config)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "compare.yaml", config_to_yaml(config))
    finished = sum(cell.done for cell in cells)
    if finished:
        log(f"{finished} of {len(cells)} cells already finished in {out}: skipping them")
    view = ProgressView(cells, log)
    for number, cell in enumerate(cells, start=1):
        if cell.done:
            continue
        view.starting(number, cell)
        began = time.time()
        if cell.kind == "teacher":
            train_teacher(cell.config, resume=cell.resumable)
        else:  # a network teacher is a student run without KD
            train_student(cell.config, resume=cell.resumable)
        view.finished(cell, time.time() - began)
    table, differences = results_table(config, cells), differences_table(config, cells)
    write_results(table, out, details(config, cells), differences)  # kept even if the transfer fails
    if config.transfer and len(config.styles) > 1:
        write_results(table, out, details(config, cells), differences, prompt_transfer(config, cells, log))
    log(f"finished {len(cells)} cells in {duration_text(time.time() - view.start)}; wrote {out}/results.md")
    return table


__all__ = ["ProgressView", "run_compare"]
