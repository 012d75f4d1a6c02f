"""Orthogonality reports: one row per prompt set, as a table, Markdown, CSV or JSON, plus PNG plots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.files import atomic_write_bytes, atomic_write_files
from prompt_kit.orthogonality import OrthogonalityScores, score_vectors

SUMMARY_COLUMNS = [
    "set", "style", "encoder", "classes", "mean_offdiag", "max_offdiag", "max_offdiag_centered",
    "min_angle_degrees", "effective_rank", "tokens_max_offdiag", "tokens_max_offdiag_centered", "closest_pair",
]  # fmt: skip


@dataclass
class SetScores:
    """Scores of one prompt set: on the pooled vectors and on the masked-mean token sequences."""

    name: str
    embeddings: ClassEmbeddings
    pooled: OrthogonalityScores
    tokens: OrthogonalityScores

    def row(self) -> dict[str, object]:
        a, b, value = self.pooled.most_confusable[0]
        return {
            "set": self.name,
            "style": self.embeddings.style,
            "encoder": self.embeddings.encoder,
            "classes": self.embeddings.num_classes,
            **self.pooled.summary(),
            "tokens_max_offdiag": self.tokens.max_offdiag,
            "tokens_max_offdiag_centered": self.tokens.max_offdiag_centered,
            "closest_pair": f"{a}~{b}",
        }

    def to_json(self) -> dict[str, object]:
        def view(scores: OrthogonalityScores) -> dict[str, object]:
            return {
                **{key: round(value, 6) for key, value in scores.summary().items()},
                "most_confusable": [{"a": a, "b": b, "cosine": round(v, 6)} for a, b, v in scores.most_confusable],
                "nearest": [
                    {"class": c, "nearest": n, "cosine": round(v, 6), "margin": round(m, 6)}
                    for c, n, v, m in scores.nearest
                ],
            }

        return {
            "set": self.name,
            "style": self.embeddings.style,
            "encoder": self.embeddings.encoder,
            "prompt_set_hash": self.embeddings.prompt_set_hash,
            "classes": self.embeddings.class_names,
            **{key: round(value, 6) for key, value in self.pooled.summary().items()},
            "pooled": view(self.pooled),
            "tokens": view(self.tokens),
        }


def score_embeddings(name: str, embeddings: ClassEmbeddings) -> SetScores:
    """Scores for the pooled view and the token view (masked mean of the token sequence)."""
    names = embeddings.class_names
    return SetScores(
        name=name,
        embeddings=embeddings,
        pooled=score_vectors(embeddings.pooled, names),
        tokens=score_vectors(embeddings.token_mean(), names),
    )


def summary_table(results: list[SetScores]) -> pd.DataFrame:
    return pd.DataFrame([result.row() for result in results], columns=SUMMARY_COLUMNS)


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' own needs the optional ``tabulate`` package)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---:" if frame[c].dtype.kind in "fi" else "---" for c in frame.columns) + "|"
    rows = ["| " + " | ".join(_fmt(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def render_report(results: list[SetScores], fmt: str) -> str:
    """The comparison in ``table`` (terminal), ``md``, ``csv`` or ``json`` form."""
    frame = summary_table(results)
    if fmt == "json":
        return json.dumps([result.to_json() for result in results], indent=2) + "\n"
    if fmt == "csv":
        return frame.to_csv(index=False, float_format="%.4f")
    if fmt == "md":
        return markdown_table(frame)
    if fmt == "table":
        shown = frame.drop(columns=["encoder"])
        text = shown.to_string(index=False, float_format=lambda v: f"{v:.3f}")
        return f"encoder: {frame['encoder'].iloc[0]}\n{text}\n" + _pairs_text(results)
    raise ValueError(f"unknown format {fmt!r}")


def _pairs_text(results: list[SetScores]) -> str:
    lines = ["", "most confusable pairs (pooled cosine):"]
    for result in results:
        pairs = ", ".join(f"{a}~{b} {v:.3f}" for a, b, v in result.pooled.most_confusable)
        lines.append(f"  {result.name}: {pairs}")
    return "\n".join(lines) + "\n"


def figure_png(figure, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(figure)
    return buffer.getvalue()


def save_figure_png(figure, path: str | Path, dpi: int = 110) -> Path:
    """Write a matplotlib figure as PNG atomically, then close it."""
    return atomic_write_bytes(Path(path), figure_png(figure, dpi))


def heatmap_figure(result: SetScores):
    """Pooled cosine matrix with class names on both axes and every value written in its cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sim = result.pooled.similarity.numpy()
    names = result.embeddings.class_names
    size = len(names)
    figure, axis = plt.subplots(figsize=(max(5.0, 0.55 * size + 2), max(4.2, 0.5 * size + 1.5)))
    image = axis.imshow(sim, cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1.0)
    axis.set_xticks(range(size), names, rotation=55, ha="right", fontsize=8)
    axis.set_yticks(range(size), names, fontsize=8)
    threshold = (float(sim.min()) + 1.0) / 2
    for i in range(size):
        for j in range(size):
            color = "black" if sim[i, j] > threshold else "white"
            axis.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=6 if size > 12 else 7, color=color)
    a, b, value = result.pooled.most_confusable[0]
    axis.set_title(
        f"{result.name} ({result.embeddings.encoder})\nmax off-diagonal {value:.3f} ({a}~{b}), "
        f"mean {result.pooled.mean_offdiag:.3f}",
        fontsize=9,
    )
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="cosine")
    return figure


def comparison_figure(results: list[SetScores]):
    """Grouped bars: max, centred max and mean off-diagonal cosine for every set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("max_offdiag", "max"), ("max_offdiag_centered", "max (centred)"), ("mean_offdiag", "mean")]
    width = 0.8 / len(metrics)
    figure, axis = plt.subplots(figsize=(max(5.0, 1.3 * len(results) + 2), 4.0))
    for k, (key, label) in enumerate(metrics):
        values = [result.pooled.summary()[key] for result in results]
        positions = [i + (k - (len(metrics) - 1) / 2) * width for i in range(len(results))]
        bars = axis.bar(positions, values, width, label=label)
        axis.bar_label(bars, fmt="%.2f", fontsize=7)
    axis.set_xticks(range(len(results)), [result.name for result in results], rotation=20, ha="right")
    axis.set_ylabel("off-diagonal cosine (pooled)")
    axis.set_title(f"inter-class similarity, lower is more orthogonal ({results[0].embeddings.encoder})", fontsize=9)
    axis.axhline(0, color="grey", linewidth=0.5)
    axis.legend(fontsize=8)
    return figure


def write_report(results: list[SetScores], out_dir: str | Path) -> list[Path]:
    """Markdown, CSV and JSON tables, a heatmap per set and the comparison chart, all in ``out_dir``.

    Everything is rendered before anything is written, and written as one (an error leaves none of
    it); each set gets its own heatmap file even when two sets share a name.
    """
    out = Path(out_dir)
    files = {
        out / "scores.md": render_report(results, "md").encode(),
        out / "scores.csv": render_report(results, "csv").encode(),
        out / "scores.json": render_report(results, "json").encode(),
    }
    for name, result in zip(unique_file_names([f"heatmap_{_safe(r.name)}" for r in results]), results, strict=True):
        files[out / f"{name}.png"] = figure_png(heatmap_figure(result))
    files[out / "comparison.png"] = figure_png(comparison_figure(results))
    return atomic_write_files(files)


def unique_file_names(names: list[str]) -> list[str]:
    """``names`` with a ``-2``, ``-3``, ... suffix on repeats (compared case-insensitively, as some disks do)."""
    seen: set[str] = set()
    unique = []
    for name in names:
        candidate, number = name, 1
        while candidate.lower() in seen:
            number += 1
            candidate = f"{name}-{number}"
        seen.add(candidate.lower())
        unique.append(candidate)
    return unique


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


__all__ = ["SetScores", "render_report", "score_embeddings", "summary_table", "write_report"]
