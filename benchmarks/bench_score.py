"""Scoring ADE20K-sized prompt sets: 150 classes x 4 styles with MiniLM.

    python benchmarks/bench_score.py

Times ``promptkit score`` end to end in a fresh process (imports and model load included, empty
embedding cache; target: at most 5 s on 2 cores), the same re-score with a warm cache, and the
metric computation itself against a plain Python double loop over class pairs on the same
embeddings, measured in this run.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ade150 import ADE20K_CLASSES, LABELS, candidate_pools  # noqa: E402

from prompt_kit.encoders import create_encoder, encode_prompt_set  # noqa: E402
from prompt_kit.generate import build_prompt_set  # noqa: E402
from prompt_kit.orthogonal_selection import measured_selector  # noqa: E402
from prompt_kit.orthogonality import score_vectors  # noqa: E402
from prompt_kit.prompt_set import save_prompt_set  # noqa: E402
from prompt_kit.styles import get_style, style_names  # noqa: E402
from prompt_kit.taxonomy import ClassInfo, Taxonomy  # noqa: E402
from prompt_kit.templates import PromptTemplates  # noqa: E402

STYLES = style_names()


def write_sets(folder: Path, encoder) -> list[Path]:
    classes = tuple(ClassInfo(name=name, label=label) for name, label in zip(ADE20K_CLASSES, LABELS, strict=True))
    taxonomy = Taxonomy(name="ade150", classes=classes)
    pools = candidate_pools(encoder)
    answer = {
        name: {"sentence": f"A {label} as it looks in a photo of a room or a street.", "words": pools[name]}
        for name, label in zip(ADE20K_CLASSES, LABELS, strict=True)
    }
    paths = []
    for style in STYLES:  # every style reads the words it needs from the same answer (a word list takes 4)
        selector = measured_selector(encoder) if get_style(style).selects_words else None
        prompt_set = build_prompt_set(taxonomy, style, [answer], PromptTemplates(), select_words=selector)
        paths.append(save_prompt_set(prompt_set, folder / f"{style}.yaml"))
    return paths


def python_double_loop(vectors: list[list[float]]) -> tuple[float, float]:
    """The baseline: cosine of every ordered pair with Python floats, then max and mean."""
    norms = [math.sqrt(sum(v * v for v in row)) for row in vectors]
    values = []
    for i, a in enumerate(vectors):
        for j, b in enumerate(vectors):
            if i != j:
                values.append(sum(x * y for x, y in zip(a, b, strict=True)) / (norms[i] * norms[j]))
    return max(values), sum(values) / len(values)


def run_score(paths: list[Path], cache_home: Path) -> float:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cli.promptkit_cli", "score", *map(str, paths), "--format", "csv"],
        check=True, capture_output=True, env=env, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    encoder = create_encoder("minilm")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_sets(folder, encoder)
        cache_home = folder / "cache"
        cold = run_score(paths, cache_home)
        warm = run_score(paths, cache_home)
        shutil.rmtree(cache_home)

        from prompt_kit.prompt_set import load_prompt_set

        pooled = [encode_prompt_set(load_prompt_set(path), encoder).pooled for path in paths]
        repeats = 5
        start = time.perf_counter()
        for _ in range(repeats):
            ours = [score_vectors(p, ADE20K_CLASSES) for p in pooled]
        vectorised = (time.perf_counter() - start) / repeats
        lists = [p.tolist() for p in pooled]
        start = time.perf_counter()
        loops = [python_double_loop(v) for v in lists]
        looped = time.perf_counter() - start
    for (max_loop, mean_loop), scores in zip(loops, ours, strict=True):
        assert abs(max_loop - scores.max_offdiag) < 1e-4 and abs(mean_loop - scores.mean_offdiag) < 1e-4
    print(f"150 classes x {len(STYLES)} styles, encoder minilm, 2 cores expected")
    for style, scores in zip(STYLES, ours, strict=True):
        print(f"  {style:<13} max_offdiag {scores.max_offdiag:.3f}  mean_offdiag {scores.mean_offdiag:.3f}")
    print(f"promptkit score, fresh process, empty cache: {cold:.2f} s (target <= 5 s)")
    print(f"promptkit score, fresh process, warm cache:  {warm:.2f} s")
    print(f"all metrics for 4 sets: {vectorised * 1000:.1f} ms vectorised vs {looped * 1000:.0f} ms Python double loop "
          f"(max and mean only): ratio {looped / vectorised:.0f}x")  # fmt: skip


if __name__ == "__main__":
    main()
