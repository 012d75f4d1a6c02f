"""The prompt search's controls on real data: does the wording of class prompts matter to a quick teacher?

    python scripts/prompt_search_controls.py --data camvid:../shared/data/camvid --holdout 60 \
        --out runs/prompt-search-controls [--seeds 0,1,2] [--size 192x256] [--views 4] [--steps 300]

Builds the frozen backbone's feature bank once (train images minus the holdout, ``--views`` views
each; the held-out train images whole: val is never read), then trains the quick teacher
(``distill/prompt_search/quick_teacher.py``) under each control's frozen class vectors for each
seed: every shipped style, random words, random unit vectors, and learned vectors. Resumable:
each (control, seed) score is appended to ``scores.jsonl`` as it finishes and skipped on a rerun.
Writes ``controls.md`` / ``controls.csv`` (mean ± sd, paired difference from ``label`` with its
95% interval over seeds) and ``run.json`` (settings, timings, package versions, git commit).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from distill.datasets.holdout import training_and_evaluation_data
from distill.prompt_search.controls import ControlScore, build_controls, control_table
from distill.prompt_search.feature_bank import build_feature_bank
from distill.prompt_search.quick_teacher import QuickTeacherSettings, train_quick_teacher
from distill.training.provenance import provenance
from prompt_kit.embedding_cache import EmbeddingCache
from prompt_kit.encoders import create_encoder
from prompt_kit.files import atomic_write_text
from teacher.feature_latent import BackboneFeatureLatent


def markdown(table: pd.DataFrame) -> str:
    """The table as GitHub markdown, numbers to 4 decimals, differences signed."""
    signed = {"difference", "low", "high"}

    def cell(column: str, value: object) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        if isinstance(value, float):
            return f"{value:+.4f}" if column in signed else f"{value:.4f}"
        return str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(c, v) for c, v in zip(table.columns, row, strict=True)) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--dataset", default="camvid", help="the shipped prompt sets' folder under prompts/")
    parser.add_argument("--holdout", type=int, default=60)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--size", default="192x256")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--backbone", default="efficientnet_lite2")
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = tuple(int(side) for side in args.size.split("x"))
    seeds = [int(seed) for seed in args.seeds.split(",")]
    settings = QuickTeacherSettings(steps=args.steps)

    asked = {**{k: v for k, v in vars(args).items() if k not in ("out", "seeds")}, **settings.model_dump()}
    settings_path = out / "settings.json"
    if settings_path.is_file() and json.loads(settings_path.read_text()) != asked:
        raise SystemExit(f"{out} holds scores of other settings ({settings_path}): pass a new --out")
    atomic_write_text(settings_path, json.dumps(asked, indent=2))

    start = time.perf_counter()
    train_data, held_out = training_and_evaluation_data(args.data, args.holdout)
    backbone = BackboneFeatureLatent(args.backbone, stride=args.stride)
    train = build_feature_bank(train_data, backbone, size, views=args.views)
    evaluation = build_feature_bank(held_out, backbone, size, views=0)
    bank_seconds = time.perf_counter() - start
    controls = build_controls(args.dataset, train_data.taxonomy, create_encoder(args.encoder), EmbeddingCache())

    scores_path = out / "scores.jsonl"
    done = {}
    if scores_path.is_file():
        for line in scores_path.read_text().splitlines():
            row = json.loads(line)
            done[(row["name"], row["seed"])] = row
    for control in controls:
        for seed in seeds:
            if (control.name, seed) in done:
                continue
            began = time.perf_counter()
            result = train_quick_teacher(
                train, evaluation, control.vectors, settings, seed, learn_class_vectors=control.learned
            )
            row = {"name": control.name, "seed": seed, "miou": result.miou, "seconds": time.perf_counter() - began}
            row["per_class_iou"] = result.per_class_iou
            done[(control.name, seed)] = row
            with scores_path.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(f"{control.name} seed {seed}: held-out mIoU {result.miou:.4f} ({row['seconds']:.0f} s)", flush=True)

    scores = [ControlScore(row["name"], row["seed"], row["miou"]) for row in done.values() if row["seed"] in seeds]
    table = pd.DataFrame(control_table(scores))
    atomic_write_text(out / "controls.csv", table.to_csv(index=False))
    atomic_write_text(out / "controls.md", markdown(table))
    record = provenance(
        stage="prompt_search_controls",
        seed=seeds[0],
        config={**vars(args), "quick_teacher": settings.model_dump()},
        data=args.data,
        encoder=args.encoder,
    )
    trial_seconds = [row["seconds"] for row in done.values()]
    record["bank_seconds"] = round(bank_seconds, 1)
    record["bank_rows"] = {"train": len(train), "held_out": len(evaluation)}
    record["median_trial_seconds"] = round(sorted(trial_seconds)[len(trial_seconds) // 2], 1)
    atomic_write_text(out / "run.json", json.dumps(record, indent=2, default=str))
    print(markdown(table), end="")


if __name__ == "__main__":
    main()
