"""Training-step cost of every student on CPU: forward + backward + AdamW step.

    python benchmarks/bench_students.py [--size 128] [--batch 8] [--warmup 3] [--steps 10] [--threads N]

For each student: random images ``[batch, 3, size, size]`` and labels, a few warm-up steps (oneDNN
picks its kernels on the first calls), then the median wall time of ``--steps`` steps, once with
the default contiguous (NCHW) layout and once with model and images in channels-last (NHWC), the
layout ``distill run`` uses. Prints parameters (millions), milliseconds per step in each layout,
their ratio and the cost relative to ``tiny``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from networks import create_network, list_students

NUM_CLASSES = 11  # CamVid


def train_step_ms(
    name: str, size: int, batch: int, warmup: int, steps: int, channels_last: bool = False
) -> tuple[float, float]:
    """Return (parameters in millions, median milliseconds per training step) for one student."""
    torch.manual_seed(0)
    model = create_network(name, NUM_CLASSES).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, NUM_CLASSES, (batch, size, size), generator=generator)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
        if step >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return params, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="image height and width in pixels")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--students", nargs="*", default=list_students(), choices=list_students())
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    names = args.students if "tiny" in args.students else ["tiny", *args.students]
    results = {name: train_step_ms(name, args.size, args.batch, args.warmup, args.steps) for name in names}
    last = {name: train_step_ms(name, args.size, args.batch, args.warmup, args.steps, True)[1] for name in names}

    print(
        f"train step (forward + backward + AdamW), {args.size}x{args.size} px, batch {args.batch}, "
        f"CPU, {torch.get_num_threads()} threads, median of {args.steps} after {args.warmup} warm-up"
    )
    print("| student | params (M) | ms/step NCHW | ms/step channels-last | channels-last / NCHW | x tiny |")
    print("|---|---:|---:|---:|---:|---:|")
    tiny_ms = results["tiny"][1]
    for name, (params, ms) in sorted(results.items(), key=lambda item: item[1][1]):
        print(f"| {name} | {params:.2f} | {ms:.0f} | {last[name]:.0f} | {last[name] / ms:.2f} | {ms / tiny_ms:.1f} |")


if __name__ == "__main__":
    main()
