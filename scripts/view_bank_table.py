"""The table of scripts/view_bank_camvid.sh: val mIoU per row, gain over no KD paired by seed, cost.

python scripts/view_bank_table.py runs/view-bank none v16 live16 v16f16 v4 v1 v16top3 image
python scripts/view_bank_table.py runs/view-bank-features none cwd-views cwd-image hint-views hint-image
"""

import json
import statistics
import sys
from pathlib import Path

from distill.evaluation.seed_statistics import t_interval

out, rows = Path(sys.argv[1]), sys.argv[2:]


def read(row):
    return {int(p.parent.name[4:]): json.loads(p.read_text()) for p in sorted((out / row).glob("seed*/metrics.json"))}


base = read("none")
print(
    "| row | seeds | val mIoU (mean ± std) | per seed | gain over no KD, per seed | s/step (median) | teacher forwards |"  # noqa: E501
)
print("|---|---:|---|---|---|---:|---:|")
for row in rows:
    runs = read(row)
    if not runs:
        continue
    seeds = sorted(runs)
    miou = [runs[s]["miou"] for s in seeds]
    spread = statistics.stdev(miou) if len(miou) > 1 else 0.0
    gains = [runs[s]["miou"] - base[s]["miou"] for s in seeds if s in base] if row != "none" else []
    gain = f"{statistics.mean(gains):+.3f} ({', '.join(f'{g:+.3f}' for g in gains)})" if gains else ""
    step = statistics.median(runs[s]["seconds_per_step"] for s in seeds)  # a run beside other work is slower
    forwards = ", ".join(str(runs[s].get("teacher_forward_images", 0)) for s in seeds)
    print(
        f"| {row} | {len(seeds)} | {statistics.mean(miou):.3f} ± {spread:.3f} | "
        f"{', '.join(f'{m:.3f}' for m in miou)} | {gain} | {step:.3f} | {forwards} |"
    )
for row in rows:
    for s, metrics in read(row).items():
        bank = metrics.get("view_bank")
        if bank and bank["built"]:
            kept = f"top-k {bank.get('top_k') or 'all'}"
            size = f", {bank['bytes'] / 1e6:.0f} MB ({bank['dtype']}, {kept})" if "bytes" in bank else ""
            print(f"{row}: bank of {bank['views']} views built in seed {s}'s run: {bank['build_seconds']} s{size}")


def paired_gap(row: str, against: str) -> None:
    """``row - against`` paired by seed, with its t interval, where both have runs of the same seeds."""
    first, second = read(row), read(against)
    paired = sorted(set(first) & set(second))
    if paired:
        gaps = [first[s]["miou"] - second[s]["miou"] for s in paired]
        gap = t_interval(gaps, "student seed")
        print(
            f"{row} - {against}, paired by seed ({gap.replicates}): {gap.mean:+.4f}, 95% interval "
            f"[{gap.low:+.4f}, {gap.high:+.4f}] ({', '.join(f'{g:+.3f}' for g in gaps)})"
        )


for row in rows:
    if row.startswith("v"):  # a banked row of view_bank_camvid.sh against the live teacher on the same views
        paired_gap(row, "live16")
    if row.endswith("-views"):  # a feature term of view_bank_features.sh against its whole-image-cache row
        paired_gap(row, row.removesuffix("-views") + "-image")
