"""The tables of `distill compare`, read back from its run folders: results, style differences, transfer.

Every number comes from a cell's ``metrics.json`` (or, for the transfer, one evaluation kept in
``transfer.json``); ``distill.evaluation.seed_statistics`` gives the intervals, ``distill.compare.report``
writes the files.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from distill.evaluation.seed_statistics import gain_over_baseline, mean_std, paired_difference
from teacher import TeacherFolder

if TYPE_CHECKING:
    from distill.compare.plan import Cell, CompareConfig


def prompt_transfer(config: CompareConfig, cells: list[Cell], log: Callable[[str], None]) -> pd.DataFrame:
    """Style x style teacher mIoU: each style's teachers given every style's prompts (``prompt_transfer``)."""
    from distill.compare.prompt_transfer import transfer_mious, transfer_table

    teachers = [cell for cell in cells if cell.kind == "teacher"]
    folders = {style: [c.path for c in teachers if c.style == style] for style in config.styles}
    prompt_sets = {style: Path(next(c.config.prompts for c in teachers if c.style == style)) for style in config.styles}
    return transfer_table(transfer_mious(folders, prompt_sets, Path(config.out), log))


def _style_scores(teacher: TeacherFolder) -> dict[str, float]:
    from prompt_kit.score_report import score_embeddings

    scores = score_embeddings(teacher.path.name, teacher.class_embeddings()).pooled
    return {"max_cos": scores.max_offdiag, "mean_cos": scores.mean_offdiag}


def _seed_grid(cells: list[Cell]) -> dict[tuple[int, int], float]:
    """Student mIoU by (teacher seed, student seed)."""
    return {(cell.teacher_seed, cell.seed): cell.metrics()["miou"] for cell in cells}


def _mean_seconds(cells: list[Cell]) -> float:
    seconds = [cell.metrics().get("train_seconds", math.nan) for cell in cells]
    return statistics.mean(seconds) if seconds else math.nan


def _row_grids(config: CompareConfig, students: list[Cell]) -> dict[tuple[str, str], dict[tuple[int, int], float]]:
    """(row label, KD spec) -> its student grid, in the order the rows are shown."""
    labels = list(dict.fromkeys(cell.style for cell in students if cell.style is not None))
    return {
        (label, kd): _seed_grid([c for c in students if c.style == label and c.kd == kd])
        for label in labels
        for kd in config.kd
    }


def results_table(config: CompareConfig, cells: list[Cell]) -> pd.DataFrame:
    """One row per (style or teacher, KD spec) plus the no-KD row; numbers read back from the run folders.

    Teacher mIoU is the mean ± std over teacher seeds; student mIoU over every (teacher seed,
    student seed); the gain over no KD comes with its 95% interval (``distill.evaluation.seed_statistics``).
    """
    students = [cell for cell in cells if cell.kind == "student"]
    baseline = [cell for cell in students if cell.style is None]
    base_values = [cell.metrics()["miou"] for cell in baseline]
    base_mean, base_std = mean_std(base_values)
    rows = []
    no_scores = {"max_cos": math.nan, "mean_cos": math.nan}
    for (label, kd), grid in _row_grids(config, students).items():
        mine = [cell for cell in students if cell.style == label and cell.kd == kd]
        by_seed = sorted(mine, key=lambda cell: cell.teacher_seed)
        teacher_folders = [TeacherFolder(path) for path in dict.fromkeys(cell.config.teacher for cell in by_seed)]
        teacher_metrics = [folder.metrics or {} for folder in teacher_folders]
        teacher_mious = [metrics.get("miou", math.nan) for metrics in teacher_metrics]
        scores = _style_scores(teacher_folders[0]) if label in config.styles else no_scores
        values = [grid[key] for key in sorted(grid)]
        mean, std = mean_std(values)
        base = {cell.seed: cell.metrics()["miou"] for cell in baseline}
        gain = gain_over_baseline(grid, base) if baseline else None
        rows.append(
            {
                "style": label,
                "kd": kd,
                **scores,
                "teacher_miou": mean_std(teacher_mious)[0],
                "teacher_std": mean_std(teacher_mious)[1],
                "teacher_mious": teacher_mious,
                "student_miou": mean,
                "student_std": std,
                "gain_over_no_kd": mean - base_mean,
                "gain_low": gain.low if gain else math.nan,
                "gain_high": gain.high if gain else math.nan,
                "gain_unit": gain.unit if gain else "",
                "teacher_seeds": len(teacher_folders),
                "seeds": len({s for _, s in grid}),
                "student_mious": values,
                "student_by_teacher": [
                    statistics.mean(v for (t, _), v in grid.items() if t == seed)
                    for seed in sorted({t for t, _ in grid})
                ],
                "teacher_seconds": statistics.mean(m.get("train_seconds", math.nan) for m in teacher_metrics),
                "student_seconds": _mean_seconds(mine),
            }
        )
    if baseline:
        rows.append(
            {
                "style": "(no KD)",
                "kd": "none",
                **no_scores,
                "teacher_miou": math.nan,
                "teacher_std": math.nan,
                "teacher_mious": [],
                "student_miou": base_mean,
                "student_std": base_std,
                "gain_over_no_kd": 0.0,
                "gain_low": math.nan,
                "gain_high": math.nan,
                "gain_unit": "",
                "teacher_seeds": 0,
                "seeds": len(base_values),
                "student_mious": base_values,
                "student_by_teacher": [],
                "teacher_seconds": math.nan,
                "student_seconds": _mean_seconds(baseline),
            }
        )
    return pd.DataFrame(rows)


def differences_table(config: CompareConfig, cells: list[Cell], effect: float = 0.01) -> pd.DataFrame:
    """Every pair of prompt styles: the difference in teacher mIoU, and per KD spec in student mIoU.

    Only style rows: they share the design (teacher seeds x student seeds) the interval pairs on;
    a network or folder teacher has one teacher, its row's gain interval says what it can.
    Teacher differences pair teacher seed ``t`` of one style with teacher seed ``t`` of the other.

    ``replicates_for_effect``: how many teacher seeds (or student seeds, when there is one teacher
    seed) a difference of ``effect`` would need to be seen at 80% power, at the spread measured.
    """
    students = [cell for cell in cells if cell.kind == "student"]
    student_grids = _row_grids(config, students)
    teacher_grids = {
        style: {(c.teacher_seed, 0): c.metrics()["miou"] for c in cells if c.kind == "teacher" and c.style == style}
        for style in config.styles
    }
    comparisons = [("teacher", "", teacher_grids)] + [
        ("student", kd, {label: grid for (label, spec), grid in student_grids.items() if spec == kd})
        for kd in config.kd
    ]
    rows = []
    for measure, kd, grids in comparisons:
        labels = [label for label in config.styles if label in grids and grids[label]]
        for i, first in enumerate(labels):
            for second in labels[i + 1 :]:
                difference = paired_difference(grids[first], grids[second])
                rows.append(
                    {
                        "measure": measure,
                        "kd": kd,
                        "first": first,
                        "second": second,
                        "difference": difference.mean,
                        "low": difference.low,
                        "high": difference.high,
                        "unit": difference.unit,
                        "replicates": difference.replicates,
                        "distinguishable": difference.distinguishable,
                        "replicates_for_effect": difference.replicates_for(effect),
                        "effect": effect,
                    }
                )
    return pd.DataFrame(
        rows,
        columns=[
            "measure", "kd", "first", "second", "difference", "low", "high", "unit", "replicates",
            "distinguishable", "replicates_for_effect", "effect",
        ],
    )  # fmt: skip


def details(config: CompareConfig, cells: list[Cell]) -> dict[str, Any]:
    return {
        "config": config.model_dump(mode="json"),
        "cells": [
            {
                "kind": c.kind,
                "path": str(c.path),
                "style": c.style,
                "kd": c.kd,
                "seed": c.seed,
                "teacher_seed": c.teacher_seed,
            }
            for c in cells
        ],
    }


__all__ = ["details", "differences_table", "prompt_transfer", "results_table"]
