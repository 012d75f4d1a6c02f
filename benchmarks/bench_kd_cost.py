"""What KD costs per student step: no teacher, cached teacher outputs, live teacher, for two teacher kinds.

    python benchmarks/bench_kd_cost.py [--steps 60] [--teacher-steps 2] [--network efficientnet_lite2]

Trains (barely: their weights do not change the cost) a tiny diffusion teacher and a network
teacher (``distill teacher --model NETWORK``, at its default 192x256) once, then runs `distill run`
with the tiny student at 96x128, batch 8, in this process: ``--kd none``, and for each teacher
``--kd kl`` with the teacher-output cache (the default; the one-off cache pass is timed apart) and
``--kd kl --set teacher_cache=false`` (the teacher runs on every batch). Prints seconds per step
and each one's ratio to ``--kd none``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from distill.network_teacher import network_teacher_config
from distill.run_config import RunConfig
from distill.student_training import train_student
from distill.teacher_training import TeacherTrainingConfig, train_teacher
from prompt_kit.resources import prompts_dir


def timed_run(folder: Path, steps: int, **fields) -> float:
    config = RunConfig(out=str(folder), steps=steps, eval_every=10**6, checkpoint_every=10**6, val_images=8, **fields)
    start = time.perf_counter()
    train_student(config)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--teacher-steps", type=int, default=2)
    parser.add_argument("--network", default="efficientnet_lite2", help="the network teacher (distill networks)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        teacher = root / "teacher"
        train_teacher(
            TeacherTrainingConfig(
                prompts=str(prompts_dir() / "camvid" / "label.yaml"),
                out=str(teacher),
                steps=args.teacher_steps,
                pretrain_denoiser=0,
                val_images=8,
                panels=0,
            )
        )
        none = timed_run(root / "none", args.steps, kd="none")
        start = time.perf_counter()
        timed_run(root / "warm", 1, kd="kl", teacher=str(teacher))  # computes the cache once
        cache_seconds = time.perf_counter() - start
        cached = timed_run(root / "cached", args.steps, kd="kl", teacher=str(teacher))
        live = timed_run(root / "live", args.steps, kd="kl", teacher=str(teacher), teacher_cache=False)
        network = root / "network"
        network_config = network_teacher_config(
            args.network, {"out": str(network), "steps": args.teacher_steps, "val_images": 8, "panels": 0}
        )
        train_student(network_config)
        start = time.perf_counter()
        timed_run(root / "network-warm", 1, kd="kl", teacher=str(network))
        network_cache_seconds = time.perf_counter() - start
        network_cached = timed_run(root / "network-cached", args.steps, kd="kl", teacher=str(network))
        network_live = timed_run(root / "network-live", args.steps, kd="kl", teacher=str(network), teacher_cache=False)
    rows = [
        ("kd none", none),
        ("kd kl, cached diffusion teacher", cached),
        ("kd kl, live diffusion teacher", live),
        (f"kd kl, cached {args.network}", network_cached),
        (f"kd kl, live {args.network}", network_live),
    ]
    for name, seconds in rows:
        print(f"{name:<40} {seconds * 1000:8.1f} ms/step   {seconds / none:.2f}x")
    print(f"one-off cache pass (200 train images) and a 1-step run: diffusion {cache_seconds:.1f} s, ", end="")
    print(f"{args.network} {network_cache_seconds:.1f} s")


if __name__ == "__main__":
    main()
