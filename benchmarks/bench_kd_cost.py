"""What KD costs per student step: no teacher, the view bank, the whole-image cache, the live teacher.

    python benchmarks/bench_kd_cost.py [--steps 60] [--teacher-steps 2] [--views 16] [--network efficientnet_lite2]

Trains (barely: their weights do not change the cost) a tiny diffusion teacher and a network
teacher (``distill teacher --model NETWORK``, at its default 192x256) once, then runs `distill run`
with the tiny student at 96x128, batch 8, in this process: ``--kd none``, and for each teacher
``--kd kl`` from its view bank (the default, ``teacher_cache=views``; the one-off build is timed
apart, with the bank's size on disk, and a top-3 bank's), from the whole-image cache (``teacher_cache=image``, its pass
timed apart) and live (``teacher_cache=live``: the teacher runs on every batch). Prints seconds per
step and each one's ratio to ``--kd none``, then what a bank of Cityscapes' size would take.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from distill.kd.view_bank import BANK_FOLDER
from distill.training.network_teacher import network_teacher_config
from distill.training.prompt_teacher import TeacherTrainingConfig, train_teacher
from distill.training.run_config import RunConfig
from distill.training.student import train_student
from prompt_kit.resources import prompts_dir


def timed_run(folder: Path, steps: int, **fields) -> float:
    config = RunConfig(out=str(folder), steps=steps, eval_every=10**6, checkpoint_every=10**6, val_images=8, **fields)
    start = time.perf_counter()
    train_student(config)
    return (time.perf_counter() - start) / steps


def one_off(folder: Path, **fields) -> float:
    """Seconds of a 1-step run that builds the bank or cache ``fields`` name (the steps after it are timed apart)."""
    start = time.perf_counter()
    timed_run(folder, 1, **fields)
    return time.perf_counter() - start


def bank_bytes(teacher: Path) -> int:
    return sum(path.stat().st_size for path in (teacher / BANK_FOLDER).rglob("shard-*.safetensors"))


def cityscapes_lines(views: int) -> list[str]:
    """Disk a bank of Cityscapes' train set would take (2975 images, 19 classes), by label size and storage."""
    lines = []
    for height, width in ((64, 128), (128, 256)):
        pixels = 2975 * views * height * width
        dense = {size: pixels * 19 * size for size in (4, 2)}  # float32 (the default), float16
        # view_bank_top_k=3: per pixel 3 logits, 3 uint8 classes and one logsumexp
        top3 = {size: pixels * (3 * (size + 1) + size) for size in (4, 2)}
        lines.append(
            f"Cityscapes bank, {views} views, logits at {height}x{width}: {dense[4] / 2**30:.1f} GiB float32 "
            f"({dense[2] / 2**30:.1f} float16); view_bank_top_k=3: {top3[4] / 2**30:.1f} GiB "
            f"({top3[2] / 2**30:.1f} float16)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--teacher-steps", type=int, default=2)
    parser.add_argument("--views", type=int, default=16, help="views per image in the banks")
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
        rows, one_offs = [("kd none", none)], []
        network = root / "network"
        network_config = network_teacher_config(
            args.network, {"out": str(network), "steps": args.teacher_steps, "val_images": 8, "panels": 0}
        )
        train_student(network_config)
        for name, folder in (("diffusion teacher", teacher), (args.network, network)):
            common = {"kd": "kl", "teacher": str(folder), "teacher_views": args.views}
            build = one_off(root / f"{folder.name}-build", **common)
            dense_bytes = bank_bytes(folder)
            one_off(root / f"{folder.name}-top3", **common, view_bank_top_k=3)
            top3_bytes = bank_bytes(folder) - dense_bytes
            banked = timed_run(root / f"{folder.name}-views", args.steps, **common)
            image_pass = one_off(root / f"{folder.name}-image-pass", **common, teacher_cache="image")
            image = timed_run(root / f"{folder.name}-image", args.steps, **common, teacher_cache="image")
            live = timed_run(root / f"{folder.name}-live", args.steps, **common, teacher_cache="live")
            rows += [
                (f"kd kl, {name}, view bank", banked),
                (f"kd kl, {name}, whole-image cache", image),
                (f"kd kl, {name}, live", live),
            ]
            one_offs.append(
                f"{name}: view bank ({args.views} views of 200 train images) built in {build:.1f} s, "
                f"{dense_bytes / 2**20:.1f} MiB on disk (top-3: {top3_bytes / 2**20:.1f} MiB); "
                f"whole-image cache pass {image_pass:.1f} s"
            )
    for name, seconds in rows:
        print(f"{name:<48} {seconds * 1000:8.1f} ms/step   {seconds / none:.2f}x")
    print("one-off, each with a 1-step run:")
    for line in one_offs + cityscapes_lines(args.views):
        print("  " + line)


if __name__ == "__main__":
    main()
