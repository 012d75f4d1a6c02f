"""The tiny teacher's cost on a CPU: train step and inference per image at 64/96/128 px, peak memory.

    python benchmarks/bench_teacher.py

Each size: batch 8, images H x 4H/3 (64x96, 96x128, 128x176), MiniLM-sized embeddings for 11
classes (6 tokens each). Train step = forward + backward + AdamW step. The tiny student's train
step at the same size, and the previous default teacher (``space_to_depth=2``), are measured in
the same run; both ratios are printed.
"""

from __future__ import annotations

import resource
import statistics
import time

import torch
import torch.nn.functional as F

from networks import create_network, normalize_images
from prompt_kit.class_embeddings import ClassEmbeddings
from teacher import DiffusionSegTeacher, DiffusionTeacherConfig

SIZES = [(64, 96), (96, 128), (128, 176)]  # multiples of 16, the default teacher's
BATCH = 8


def embeddings() -> ClassEmbeddings:
    generator = torch.Generator().manual_seed(0)
    return ClassEmbeddings(
        tokens=torch.randn(11, 6, 384, generator=generator),
        attention_mask=torch.ones(11, 6, dtype=torch.int64),
        pooled=torch.randn(11, 384, generator=generator),
        class_names=[f"c{i}" for i in range(11)],
        encoder="random",
    )


def median_seconds(step, repeats: int = 5, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_size(teacher, student, emb, t_opt, s_opt, height: int, width: int) -> tuple[float, float, float]:
    """(teacher train step s, teacher inference s per image, student train step s) at one size."""
    images = torch.rand(BATCH, 3, height, width)
    labels = torch.randint(0, 11, (BATCH, height, width))

    def teacher_step():
        teacher.train()
        logits = F.interpolate(teacher(images, emb), size=(height, width), mode="bilinear")
        F.cross_entropy(logits, labels).backward()
        t_opt.step()
        t_opt.zero_grad()

    def teacher_infer():
        teacher.eval()
        with torch.no_grad():
            teacher(images, emb)

    def student_step():
        student.train()
        F.cross_entropy(student(normalize_images(images)), labels).backward()
        s_opt.step()
        s_opt.zero_grad()

    return median_seconds(teacher_step), median_seconds(teacher_infer) / BATCH, median_seconds(student_step)


def main() -> None:
    torch.manual_seed(0)
    teacher = DiffusionSegTeacher(DiffusionTeacherConfig(num_classes=11, embedding_dim=384))
    # the previous default (UNet on the image unshuffled by 2): the baseline the default is compared with
    baseline = DiffusionSegTeacher(DiffusionTeacherConfig(num_classes=11, embedding_dim=384, space_to_depth=2))
    student = create_network("tiny", 11)
    emb = embeddings()
    t_opt = torch.optim.AdamW([p for p in teacher.parameters() if p.requires_grad], 1e-4)
    b_opt = torch.optim.AdamW([p for p in baseline.parameters() if p.requires_grad], 1e-4)
    s_opt = torch.optim.AdamW(student.parameters(), 1e-4)
    params = sum(p.numel() for p in teacher.parameters()) / 1e6
    print(
        f"tiny teacher: {params:.2f} M parameters, {teacher.cross_attention_layers} cross-attention layers, "
        f"space_to_depth {teacher.config.space_to_depth}; torch threads {torch.get_num_threads()}"
    )
    print(
        f"{'size':>9} {'teacher train s':>15} {'infer ms/img':>12} {'s2d=2 train s':>13} {'vs s2d=2':>8} "
        f"{'student train s':>15} {'vs student':>10}"
    )
    for height, width in SIZES:
        train, infer, student_train = measure_size(teacher, student, emb, t_opt, s_opt, height, width)
        base_train, _, _ = measure_size(baseline, student, emb, b_opt, s_opt, height, width)
        print(
            f"{height:>4}x{width:<4} {train:>15.3f} {infer * 1000:>12.1f} {base_train:>13.3f} "
            f"{train / base_train:>7.2f}x {student_train:>15.3f} {train / student_train:>9.1f}x"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process (all sizes): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
