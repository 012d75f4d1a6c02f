"""The results of `distill compare` as files: a Markdown table, CSV, JSON and two charts.

Reads nothing from disk itself: it is given the tables ``distill.compare.tables`` built
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
    if not math.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _number(value: float | None, digits: int = 3) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _interval(low: float, high: float) -> str:
    if math.isnan(low):
        return ""
    if math.isinf(low):
        return "[n/a: one seed]"
    return f"[{low:+.3f}, {high:+.3f}]"


def markdown_table(table: pd.DataFrame, differences: pd.DataFrame | None = None) -> str:
    """The results as Markdown: mIoU as mean ± std, the gain with its 95% interval, then style differences."""
    header = (
        "| style or teacher | KD | max cos | mean cos | teacher mIoU | student mIoU | gain vs no KD | 95% interval "
        "| teacher seeds | student seeds | teacher time | student time |"
    )
    lines = [header, "|" + "---|" * 12]
    for row in table.to_dict("records"):
        baseline = row["kd"] == "none"
        gain = "" if baseline else f"{row['gain_over_no_kd']:+.3f}"
        teacher = "" if math.isnan(row["teacher_miou"]) else f"{row['teacher_miou']:.3f}"
        if teacher and row["teacher_seeds"] > 1:
            teacher += f" ± {row['teacher_std']:.3f}"
        teacher_time = "" if math.isnan(row["teacher_seconds"]) else duration_text(row["teacher_seconds"])
        student_time = duration_text(row["student_seconds"])
        lines.append(
            f"| {row['style']} | {row['kd']} | {_number(row['max_cos'])} | {_number(row['mean_cos'])} "
            f"| {teacher} | {row['student_miou']:.3f} ± {row['student_std']:.3f} | {gain} "
            f"| {'' if baseline else _interval(row['gain_low'], row['gain_high'])} "
            f"| {row['teacher_seeds'] or ''} | {row['seeds']} | {teacher_time} | {student_time} |"
        )
    text = "\n".join(lines) + "\n"
    units = sorted({row["gain_unit"] for row in table.to_dict("records") if row["gain_unit"]})
    if units:
        text += f"\nGain intervals: 95%, Welch t over {'; '.join(units)} (distill/evaluation/seed_statistics.py).\n"
    if differences is not None and len(differences):
        text += "\n" + differences_markdown(differences)
    return text


def differences_markdown(differences: pd.DataFrame) -> str:
    """Each pair of styles: the difference in teacher and student mIoU, its 95% interval, told from noise or not."""
    effect = float(differences["effect"].iloc[0])
    lines = [
        "Differences between styles (first - second), 95% paired t-interval; unit: "
        + ", ".join(sorted(set(differences["unit"])))
        + " (distill/evaluation/seed_statistics.py says why):",
        "",
        f"| mIoU of | KD | first | second | difference | 95% interval | told from noise | replicates "
        f"| needed for {effect:g} |",
        "|" + "---|" * 9,
    ]
    for row in differences.to_dict("records"):
        needed = row["replicates_for_effect"]
        needed_text = "" if needed is None or (isinstance(needed, float) and math.isnan(needed)) else str(int(needed))
        lines.append(
            f"| {row['measure']} | {row['kd']} | {row['first']} | {row['second']} | {row['difference']:+.3f} "
            f"| {_interval(row['low'], row['high'])} | {'**yes**' if row['distinguishable'] else 'no'} "
            f"| {row['replicates']} | {needed_text} |"
        )
    return "\n".join(lines) + "\n"


def write_results(
    table: pd.DataFrame,
    out: Path,
    details: dict[str, Any],
    differences: pd.DataFrame | None = None,
    transfer: pd.DataFrame | None = None,
) -> list[Path]:
    """results.md / .csv / .json, differences.csv, transfer.csv and the charts, each written atomically."""
    from distill.compare.prompt_transfer import transfer_markdown

    paths = [out / "results.md", out / "results.csv", out / "results.json"]
    text = markdown_table(table, differences)
    if table["max_cos"].notna().sum() > 1:
        text += "\n" + orthogonality_correlations(table)
    if transfer is not None and len(transfer):
        text += "\n" + transfer_markdown(transfer)
    atomic_write_text(paths[0], text)

    def joined(values: list[float]) -> str:
        return " ".join(f"{x:.4f}" for x in values)

    flat = table.assign(
        student_mious=table["student_mious"].map(joined), teacher_mious=table["teacher_mious"].map(joined)
    )
    atomic_write_text(paths[1], flat.to_csv(index=False, float_format="%.6g"))
    records = [{key: _json_value(value) for key, value in row.items()} for row in table.to_dict("records")]
    extra: dict[str, Any] = {}
    if differences is not None:
        extra["differences"] = [
            {key: _json_value(value) for key, value in row.items()} for row in differences.to_dict("records")
        ]
        paths.append(out / "differences.csv")
        atomic_write_text(paths[-1], differences.to_csv(index=False, float_format="%.6g"))
    if transfer is not None:
        extra["transfer"] = [
            {key: _json_value(value) for key, value in row.items()} for row in transfer.to_dict("records")
        ]
        paths.append(out / "transfer.csv")
        flat_transfer = transfer.assign(teacher_mious=transfer["teacher_mious"].map(joined))
        atomic_write_text(paths[-1], flat_transfer.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(paths[2], json.dumps({"rows": records, **extra, **details}, indent=2) + "\n")
    paths.append(student_chart(table, out / "student_miou.png"))
    paths.append(orthogonality_chart(table, out / "orthogonality_vs_teacher.png"))
    return paths


def _json_value(value: Any) -> Any:
    """Exact floats (not pandas' 10 digits), NaN and infinities as null, inside lists too."""
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
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
    axes.bar(
        [p - 0.2 for p in positions],
        rows["teacher_miou"],
        0.38,
        yerr=rows["teacher_std"],
        capsize=4,
        label="teacher",
        color="#9ab",
    )
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


ORTHOGONALITY_AXES = (("max_cos", "max off-diagonal cosine"), ("mean_cos", "mean off-diagonal cosine"))
ACCURACY_AXES = (("teacher_mious", "teacher val mIoU"), ("student_by_teacher", "student val mIoU (KD)"))


def orthogonality_points(table: pd.DataFrame, x: str, y: str) -> tuple[list[float], list[float], list[str]]:
    """One point per teacher seed of every style row (first KD spec): (x values, y values, style names)."""
    rows = table[(table["kd"] != "none") & table["max_cos"].notna()].drop_duplicates("style")
    xs, ys, names = [], [], []
    for row in rows.to_dict("records"):
        for value in row[y]:
            xs.append(row[x])
            ys.append(value)
            names.append(row["style"])
    return xs, ys, names


def style_means(xs: list[float], ys: list[float], names: list[str]) -> tuple[list[float], list[float]]:
    """One point per style (the mean over its teacher seeds): a style's seeds share its embeddings, so its
    points are not independent, and a correlation over them would overstate what the data hold."""
    styles = list(dict.fromkeys(names))
    x = [next(xs[k] for k, name in enumerate(names) if name == style) for style in styles]
    y = [sum(ys[k] for k, name in enumerate(names) if name == style) / names.count(style) for style in styles]
    return x, y


def orthogonality_correlations(table: pd.DataFrame) -> str:
    """Spearman's rho of each orthogonality measure against teacher and student mIoU, as Markdown lines."""
    from distill.evaluation.seed_statistics import rank_correlation

    lines = ["Orthogonality against accuracy, Spearman's rho [95% interval] over the styles (mean of their seeds):", ""]
    for y, y_name in ACCURACY_AXES:
        for x, x_name in ORTHOGONALITY_AXES:
            xs, ys, names = orthogonality_points(table, x, y)
            lines.append(f"- {x_name} against {y_name}: {rank_correlation(*style_means(xs, ys, names)).text()}")
    return "\n".join(lines) + "\n"


def orthogonality_chart(table: pd.DataFrame, path: Path) -> Path:
    """Max and mean off-diagonal cosine of each style against its teachers' and students' mIoU, a point per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from distill.evaluation.seed_statistics import rank_correlation

    figure, grid = plt.subplots(2, 2, figsize=(9, 7), squeeze=False)
    for i, (y, y_name) in enumerate(ACCURACY_AXES):
        for j, (x, x_name) in enumerate(ORTHOGONALITY_AXES):
            axes = grid[i][j]
            xs, ys, names = orthogonality_points(table, x, y)
            axes.scatter(xs, ys, color="#26a" if i == 0 else "#2a6", alpha=0.8)
            for style in dict.fromkeys(names):
                mine = [k for k, name in enumerate(names) if name == style]
                mean = sum(ys[k] for k in mine) / len(mine)
                axes.annotate(style, (xs[mine[0]], mean), textcoords="offset points", xytext=(5, 0), fontsize=8)
            axes.set_xlabel(f"{x_name} (lower: more orthogonal)")
            axes.set_ylabel(y_name)
            axes.set_title(f"Spearman over styles {rank_correlation(*style_means(xs, ys, names)).text()}", fontsize=9)
    figure.suptitle("Orthogonality of the class embeddings against accuracy (one point per teacher seed)")
    figure.tight_layout()
    return save_figure_png(figure, path, dpi=110)


__all__ = [
    "differences_markdown",
    "markdown_table",
    "orthogonality_correlations",
    "orthogonality_chart",
    "student_chart",
    "write_results",
]
