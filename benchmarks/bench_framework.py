"""What `distill run` costs over a bare PyTorch loop: same student, data, batch size and steps.

    python benchmarks/bench_framework.py [--steps 150] [--student tiny]

Both train the student with cross-entropy only (no teacher) on synthetic scenes at 96x128,
batch 8, AdamW. The bare loop is the few lines anyone would write; `distill run` adds paired
views, accelerate, logging, checkpoints and a final evaluation (kept small: 8 val images, one
checkpoint). Prints seconds per step of each and the ratio (target: at most 1.10).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from distill.datasets import PairedViews, create_dataset
from distill.training.run_config import RunConfig
from distill.training.student import train_student
from networks import create_network, normalize_images

SIZE = (96, 128)


def bare_loop(student_name: str, steps: int, batch_size: int) -> float:
    torch.manual_seed(0)
    data = PairedViews(create_dataset("synthetic", "train"), SIZE, SIZE, train=True, seed=0)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
    model = create_network(student_name, 11)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    start = time.perf_counter()
    done = 0
    while done < steps:
        for batch in loader:
            logits = model(normalize_images(batch["student_image"]))
            loss = F.cross_entropy(logits, batch["student_label"], ignore_index=11)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    return (time.perf_counter() - start) / steps


def framework(student_name: str, steps: int, batch_size: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = RunConfig(
            student=student_name,
            kd="none",
            data="synthetic",
            out=str(Path(folder) / "run"),
            steps=steps,
            batch_size=batch_size,
            student_size=SIZE,
            eval_every=steps,
            checkpoint_every=steps,
            val_images=8,
            panels=1,
        )
        start = time.perf_counter()
        train_student(config)
        return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--student", default="tiny")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    bare = bare_loop(args.student, args.steps, args.batch_size)
    ours = framework(args.student, args.steps, args.batch_size)
    print(f"student {args.student}, {args.steps} steps, batch {args.batch_size}, {SIZE[0]}x{SIZE[1]}")
    print(f"bare PyTorch loop: {bare * 1000:.1f} ms/step")
    print(f"distill run:       {ours * 1000:.1f} ms/step (including a final evaluation and checkpoint)")
    print(f"ratio distill run / bare loop: {ours / bare:.2f} (target <= 1.10)")


if __name__ == "__main__":
    main()
