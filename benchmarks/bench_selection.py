"""Orthogonal word selection at ADE20K scale: 150 classes x 20 candidates, MiniLM.

    python benchmarks/bench_selection.py

Prints the achieved max off-diagonal cosine of the real rendered prompts for a random pick, the
first-4 pick, greedy only, greedy + local search, and the full selection (with exact polish), and
the selection's wall time (target: at most 2 s), split into time inside the text encoder (3,150
words and labels plus the rendered prompts it evaluates) and time in the search itself.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ade150 import ADE20K_CLASSES, LABELS, candidate_pools  # noqa: E402

from prompt_kit.encoders import create_encoder  # noqa: E402
from prompt_kit.orthogonal_selection import SelectionSettings, objective, select_orthogonal_words  # noqa: E402


def main() -> None:
    encoder = create_encoder("minilm")
    encoder.pooled(["warm up"])  # model load is not part of the selection's time
    pools = candidate_pools(encoder)
    label_of = dict(zip(ADE20K_CLASSES, LABELS, strict=True))

    def render(name, words):
        return ", ".join([*words, label_of[name]])

    def exact(chosen: dict[str, list[str]]) -> float:
        return objective(encoder.pooled([render(name, chosen[name]) for name in ADE20K_CLASSES]))[0]

    rng = random.Random(0)
    random_pick = {name: rng.sample(pool, 4) for name, pool in pools.items()}
    first_pick = {name: pool[:4] for name, pool in pools.items()}

    spent = {"encoder": 0.0}

    def timed_embed(texts):
        start = time.perf_counter()
        vectors = encoder.pooled(texts)
        spent["encoder"] += time.perf_counter() - start
        return vectors

    rows = []
    for label, settings in [
        ("greedy + local search (surrogate)", SelectionSettings(restarts=0, polish_steps=0)),
        ("+ 4 restarts + exact polish (default)", SelectionSettings()),
    ]:
        spent["encoder"] = 0.0
        start = time.perf_counter()
        result = select_orthogonal_words(ADE20K_CLASSES, LABELS, pools, render, timed_embed, settings)
        rows.append((label, result, time.perf_counter() - start, spent["encoder"]))

    print(f"classes {len(pools)}, candidates per class {len(next(iter(pools.values())))}")
    print(f"{'pick':<40} {'max offdiag':>11}")
    print(f"{'random 4':<40} {exact(random_pick):>11.4f}")
    print(f"{'first 4':<40} {exact(first_pick):>11.4f}")
    report = rows[-1][1].report
    print(f"{'greedy only':<40} {report['greedy']['max_offdiag']:>11.4f}")
    print(f"{'greedy + local search':<40} {report['local_search']['max_offdiag']:>11.4f}")
    print(f"{'best of greedy, local search, restarts':<40} {report['best_of_restarts']['max_offdiag']:>11.4f}")
    print(f"\n{'run':<40} {'max offdiag':>11} {'total s':>8} {'encoder s':>9} {'search s':>8}")
    for label, result, seconds, in_encoder in rows:
        after = result.report["after"]["max_offdiag"]
        print(f"{label:<40} {after:>11.4f} {seconds:>8.2f} {in_encoder:>9.2f} {seconds - in_encoder:>8.2f}")
    total, in_encoder = rows[-1][2], rows[-1][3]
    print(f"\nselection, default settings: {total:.2f} s total (target <= 2 s), of which {in_encoder:.2f} s in MiniLM")
    print(f"ratio max offdiag, selection / first 4: {report['after']['max_offdiag'] / exact(first_pick):.3f}")


if __name__ == "__main__":
    main()
