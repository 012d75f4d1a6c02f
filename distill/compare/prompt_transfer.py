"""Prompt transfer: a teacher trained with style A, evaluated when given style B's embeddings.

None of the systems promptkit grew from measures this. It says how much a prompt-conditioned
teacher depends on the exact wording it was trained with: a teacher whose head ignores the
prompts (a learned class projection can, see ``teacher/head.py``) loses nothing when the wording
changes, while one that reads them (``class_projection: frozen``) should lose more the further
style B's embeddings lie from A's. The table is style x style teacher mIoU, mean over teacher
seeds, on the images the teacher reported on (val, or its ``holdout``). The diagonal is each
teacher's own ``metrics.json``; every other cell is one evaluation, kept in ``transfer.json`` so
that a rerun evaluates only what is new.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from prompt_kit.files import atomic_write_text
from prompt_kit.readers import read_json

CACHE_NAME = "transfer.json"


def evaluate_with_prompts(teacher_dir: Path, prompts: Path) -> float:
    """mIoU of the diffusion teacher in ``teacher_dir`` given another prompt set, on what it reported on."""
    from distill.datasets.holdout import training_and_evaluation_data
    from distill.training.core import make_accelerator
    from distill.training.saved_evaluation import evaluate_teacher_folder
    from teacher import TeacherFolder

    trained = TeacherFolder(teacher_dir).training_config
    _, eval_data = training_and_evaluation_data(trained.get("data", "synthetic"), trained.get("holdout", 0))
    accelerator = make_accelerator(trained.get("mixed_precision", "auto"))
    return evaluate_teacher_folder(teacher_dir, eval_data, accelerator, prompts)["miou"]


def transfer_mious(
    teachers: Mapping[str, list[Path]],
    prompt_sets: Mapping[str, Path],
    out: Path,
    log: Callable[[str], None] = lambda message: None,
) -> dict[tuple[str, str], list[float]]:
    """(trained with, given) -> teacher mIoU per teacher seed, for every pair of styles."""
    from prompt_kit.prompt_set import load_prompt_set
    from teacher import TeacherFolder

    cache_path = out / CACHE_NAME
    cache: dict[str, float] = read_json(cache_path, "prompt-transfer results") if cache_path.is_file() else {}
    hashes = {style: load_prompt_set(path).content_hash() for style, path in prompt_sets.items()}
    results: dict[tuple[str, str], list[float]] = {}
    for trained, folders in teachers.items():
        for given in prompt_sets:
            values = []
            for folder in folders:
                if given == trained:
                    values.append(read_json(folder / "metrics.json", "teacher metrics")["miou"])
                    continue
                trained_config = TeacherFolder(folder).training_config
                settings = [trained_config.get(k) for k in ("data", "holdout", "val_images", "mixed_precision")]
                key = "|".join(map(str, [TeacherFolder(folder).identity(), hashes[given], *settings]))
                if key not in cache:
                    log(f"prompt transfer: {folder.name if len(folders) > 1 else trained} of {trained} given {given}")
                    cache[key] = evaluate_with_prompts(folder, prompt_sets[given])
                    atomic_write_text(cache_path, json.dumps(cache, indent=2, sort_keys=True) + "\n")
                values.append(cache[key])
            results[(trained, given)] = values
    return results


def transfer_table(results: Mapping[tuple[str, str], list[float]]) -> pd.DataFrame:
    """Long form: one row per (trained with, given) with the mean and std over teacher seeds."""
    rows = []
    for (trained, given), values in results.items():
        rows.append(
            {
                "trained_with": trained,
                "given": given,
                "teacher_miou": statistics.mean(values),
                "teacher_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "teacher_mious": values,
            }
        )
    return pd.DataFrame(rows, columns=["trained_with", "given", "teacher_miou", "teacher_std", "teacher_mious"])


def transfer_markdown(table: pd.DataFrame) -> str:
    """The style x style matrix, and each teacher's mean change when given the other styles' prompts."""
    styles = list(dict.fromkeys(table["trained_with"]))
    given = list(dict.fromkeys(table["given"]))
    cell = {(r["trained_with"], r["given"]): r for r in table.to_dict("records")}
    lines = [
        "Prompt transfer: teacher mIoU (mean ± std over teacher seeds) when the teacher trained with the row's "
        "prompts is given the column's:",
        "",
        "| trained with \\ given | " + " | ".join(given) + " | mean change off its own |",
        "|" + "---|" * (len(given) + 2),
    ]
    for style in styles:
        own = cell[(style, style)]["teacher_miou"] if (style, style) in cell else math.nan
        others = [cell[(style, g)]["teacher_miou"] for g in given if g != style and (style, g) in cell]
        change = statistics.mean(others) - own if others and not math.isnan(own) else math.nan
        values = [f"{cell[(style, g)]['teacher_miou']:.3f} ± {cell[(style, g)]['teacher_std']:.3f}" for g in given]
        lines.append(f"| {style} | " + " | ".join(values) + f" | {change:+.3f} |")
    return "\n".join(lines) + "\n"


__all__ = ["evaluate_with_prompts", "transfer_markdown", "transfer_mious", "transfer_table"]
