"""The results of `distill compare` as files: a Markdown table, CSV, JSON and two charts.

Reads nothing from disk itself: it is given the table ``distill.compare.results_table`` built
from the run folders, so every number here can be traced back to a ``metrics.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from prompt_kit.files import atomic_write_text
from prompt_kit.score_report import save_figure_png


def duration_text(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def markdown_table(table: pd.DataFrame) -> str:
    """The results as a Markdown table: mIoU as mean ± std, cosines and seconds rounded."""

    def number(value: float, digits: int = 3) -> str:
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"

    header = (
        "| style or teacher | KD | max cos | mean cos | teacher mIoU | student mIoU (mean ± std) | gain vs no KD "
        "| seeds | teacher time | student time |"
    )
    lines = [header, "|" + "---|" * 10]
    for row in table.to_dict("records"):
        gain = "" if row["kd"] == "none" else f"{row['gain_over_no_kd']:+.3f}"
        teacher_time = "" if math.isnan(row["teacher_seconds"]) else duration_text(row["teacher_seconds"])
        lines.append(
            f"| {row['style']} | {row['kd']} | {number(row['max_cos'])} | {number(row['mean_cos'])} "
            f"| {number(row['teacher_miou'])} | {row['student_miou']:.3f} ± {row['student_std']:.3f} | {gain} "
            f"| {row['seeds']} | {teacher_time} | {duration_text(row['student_seconds'])} |"
        )
    return "\n".join(lines) + "\n"


def write_results(table: pd.DataFrame, out: Path, details: dict[str, Any]) -> list[Path]:
    """results.md / .csv / .json and the two charts, each written atomically."""
    paths = [out / "results.md", out / "results.csv", out / "results.json"]
    atomic_write_text(paths[0], markdown_table(table))
    flat = table.assign(student_mious=table["student_mious"].map(lambda v: " ".join(f"{x:.4f}" for x in v)))
    atomic_write_text(paths[1], flat.to_csv(index=False, float_format="%.6g"))
    records = [{key: _json_value(value) for key, value in row.items()} for row in table.to_dict("records")]
    atomic_write_text(paths[2], json.dumps({"rows": records, **details}, indent=2) + "\n")
    paths.append(student_chart(table, out / "student_miou.png"))
    paths.append(orthogonality_chart(table, out / "orthogonality_vs_teacher.png"))
    return paths


def _json_value(value: Any) -> Any:
    """Exact floats (not pandas' 10 digits), NaN as null."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "item"):
        return _json_value(value.item())
    return value


def student_chart(table: pd.DataFrame, path: Path) -> Path:
    """Student mIoU per style (error bars: std over seeds), the teacher's beside it, no-KD as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table[table["kd"] != "none"]
    names = [r["style"] if table["kd"].nunique() <= 2 else f"{r['style']}\n{r['kd']}" for r in rows.to_dict("records")]
    positions = list(range(len(rows)))
    figure, axes = plt.subplots(figsize=(1.6 * len(rows) + 2.5, 4))
    axes.bar([p - 0.2 for p in positions], rows["teacher_miou"], 0.38, label="teacher", color="#9ab")
    axes.bar(
        [p + 0.2 for p in positions],
        rows["student_miou"],
        0.38,
        yerr=rows["student_std"],
        capsize=4,
        label="student (KD)",
        color="#2a6",
    )
    baseline = table[table["kd"] == "none"]
    if len(baseline):
        mean, std = float(baseline["student_miou"].iloc[0]), float(baseline["student_std"].iloc[0])
        axes.axhline(mean, color="#c33", linestyle="--", label="student, no KD")
        axes.axhspan(mean - std, mean + std, color="#c33", alpha=0.12)
    axes.set_xticks(positions, names)
    axes.set_ylabel("val mIoU")
    axes.set_title("Teacher and distilled student per prompt style")
    axes.legend(loc="lower right", fontsize=8)
    return save_figure_png(figure, path, dpi=120)


def orthogonality_chart(table: pd.DataFrame, path: Path) -> Path:
    """Max off-diagonal cosine of each style's class embeddings against its teacher's mIoU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table[table["kd"] != "none"].drop_duplicates("style")
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.scatter(rows["max_cos"], rows["teacher_miou"], color="#26a")
    for row in rows.to_dict("records"):
        axes.annotate(row["style"], (row["max_cos"], row["teacher_miou"]), textcoords="offset points", xytext=(4, 4))
    axes.set_xlabel("max off-diagonal cosine of the class embeddings (lower: more orthogonal)")
    axes.set_ylabel("teacher val mIoU")
    axes.set_title("Orthogonality against teacher quality")
    return save_figure_png(figure, path, dpi=120)


__all__ = ["markdown_table", "orthogonality_chart", "student_chart", "write_results"]
