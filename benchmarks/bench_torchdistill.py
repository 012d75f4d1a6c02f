"""The same KD run under torchdistill's training loop and under `distill run`: step time and final mIoU.

    pip install -e ".[bench]"          # torchdistill, for this benchmark only
    python benchmarks/bench_torchdistill.py [--data SPEC] [--teacher DIR] [--steps 200] [--kd kl]

torchdistill (PyPI ``torchdistill``) is the field's configuration-driven KD framework: a
``DistillationBox`` built from a config (models, data loader, criterion, optimizer, scheduler)
whose loop is ``pre_epoch_process``, then per batch ``forward_process`` and
``post_forward_process`` (backward, clip, step, schedule), then ``post_epoch_process``. Both runs
here share everything but the loop: the student (``--student``, ImageNet weights, the same seeded
initialisation, channels-last), the frozen teacher (``--teacher``, a finished teacher folder;
without one a network teacher is trained first), the data (promptkit's ``PairedViews`` with the
same augmentation, the teacher's view at its own size, the student's at ``--student-size``), the
loss (cross-entropy plus promptkit's own KD loss module, registered in torchdistill as a
middle-level loss), AdamW with the same warm-up and poly schedule, gradient clipping at 1, batch
size and steps. Both run the teacher live on every batch (torchdistill has no output cache);
`distill run` is timed once more with its default teacher-output cache. Each run is timed per
train step (from fetching the batch to the optimizer's step; evaluations and checkpoints not
counted) and whole (setup, steps, evaluation: `distill run` also evaluates the teacher and writes
its run folder), one after the other in this process. What differs: torchdistill draws its
batches with a ``RandomSampler``, promptkit's batches are a function of (seed, step), so the two
mIoUs differ by about a seed's noise.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, RandomSampler

from distill.datasets import PairedViews
from distill.datasets.holdout import training_and_evaluation_data
from distill.kd.losses import create_loss, kd_pixel_mask
from distill.training.core import make_accelerator, poly_factor
from distill.training.network_teacher import network_teacher_config
from distill.training.run_bank import run_views
from distill.training.run_config import RunConfig
from distill.training.student import build_network, evaluate_student, load_run_teacher, train_student
from networks import normalize_images
from networks.registry import OFFLINE_IMAGENET_NETWORKS


class StudentInputs(Dataset):
    """promptkit's paired views as torchdistill wants them: ``(sample, target)`` with both images in the sample."""

    def __init__(self, views: PairedViews) -> None:
        self.views = views

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, index: int):
        item = self.views[index]
        return {"student_image": item["student_image"], "teacher_image": item["teacher_image"]}, item["student_label"]


class NormalizedStudent(nn.Module):
    """The student on images in [0, 1], normalised and channels-last as `distill run` feeds it."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(normalize_images(images).contiguous(memory_format=torch.channels_last))


def register_promptkit_parts(ignore_index: int) -> None:
    """The forward processes and the KD loss torchdistill's config refers to by key."""
    from torchdistill.core.interfaces.registry import register_forward_proc_func
    from torchdistill.losses.registry import register_mid_level_loss

    @register_forward_proc_func
    def promptkit_student_view(model, sample_batch, targets=None, supp_dict=None, **kwargs):
        return model(sample_batch["student_image"])

    @register_forward_proc_func
    def promptkit_teacher_view(model, sample_batch, targets=None, supp_dict=None, **kwargs):
        return model(sample_batch["teacher_image"])

    @register_mid_level_loss
    class PromptkitKDLoss(nn.Module):
        """promptkit's KD loss on torchdistill's io dicts: both models' outputs, at the labelled pixels."""

        def __init__(self, name: str, **params) -> None:
            super().__init__()
            self.loss = create_loss(name, **params)

        def forward(self, student_io_dict, teacher_io_dict, targets, *args, **kwargs):
            student = student_io_dict["."]["output"]
            teacher = teacher_io_dict["."]["output"]
            valid = kd_pixel_mask(targets, teacher, ignore_index, "valid")
            return self.loss(student.float(), teacher.float(), valid)


def torchdistill_config(config: RunConfig, batches: int, ignore_index: int) -> dict:
    """torchdistill's train config (what its YAML files hold) with the loss, optimizer and schedule of ``config``."""
    return {
        "num_epochs": math.ceil(config.steps / batches),
        "train_data_loader": {
            "dataset_id": "train",
            "sampler": {"class_or_func": RandomSampler, "kwargs": {}},
            "kwargs": {"batch_size": config.batch_size, "num_workers": 0, "drop_last": True},
            "requires_supp": False,
        },
        "teacher": {"forward_proc": "promptkit_teacher_view", "requires_grad": False},
        "student": {"forward_proc": "promptkit_student_view", "requires_grad": True},
        "optimizer": {
            "key": "AdamW",
            "kwargs": {"lr": config.lr, "weight_decay": config.weight_decay},
            "max_grad_norm": config.grad_clip,
        },
        "scheduler": {
            "key": "LambdaLR",
            "kwargs": {"lr_lambda": poly_factor(config.steps, config.warmup_steps)},
            "scheduling_step": 1,
        },
        "criterion": {
            "key": "WeightedSumLoss",
            "kwargs": {
                "sub_terms": {
                    "ce": {
                        "criterion": {"key": "CrossEntropyLoss", "kwargs": {"ignore_index": ignore_index}},
                        "criterion_wrapper": {
                            "key": "SimpleLossWrapper",
                            "kwargs": {
                                "input": {"is_from_teacher": False, "module_path": ".", "io": "output"},
                                "target": {"uses_label": True},
                            },
                        },
                        "weight": config.ce_weight,
                    },
                    "kd": {
                        "criterion": {"key": "PromptkitKDLoss", "kwargs": {"name": config.kd, "align": config.align}},
                        "weight": 1.0,
                    },
                }
            },
        },
    }


def run_torchdistill(config: RunConfig) -> dict[str, float]:
    """Seconds per train step (batch loading included), whole wall time and val mIoU under torchdistill's loop."""
    from torchdistill.core.distillation import get_distillation_box

    start = time.perf_counter()
    accelerator = make_accelerator(config.mixed_precision)
    torch.manual_seed(config.seed)
    train_data, val_data = training_and_evaluation_data(config.data, config.holdout)
    teacher, teacher_size = load_run_teacher(config)
    teacher = teacher.to(accelerator.device).eval()
    torch.manual_seed(config.seed)  # as `distill run`: the student's initialisation depends on the seed only
    student = NormalizedStudent(build_network(config, train_data.taxonomy.num_classes))
    register_promptkit_parts(train_data.taxonomy.ignore_index)
    views = run_views(config, train_data, teacher_size)  # the crops `distill run` draws (teacher_views=0: fresh)
    batches = len(views) // config.batch_size
    train_config = torchdistill_config(config, batches, train_data.taxonomy.ignore_index)
    box = get_distillation_box(
        teacher,
        student,
        {"train": StudentInputs(views)},
        copy.deepcopy(train_config),
        accelerator.device,
        None,
        False,
        1.0,
    )
    steps, step_seconds = 0, 0.0
    for epoch in range(box.num_epochs):
        if steps == config.steps:
            break
        views.set_epoch(epoch)
        box.pre_epoch_process(epoch=epoch)
        tick = time.perf_counter()
        for sample_batch, targets in box.train_data_loader:
            if steps == config.steps:
                break
            sample_batch = {key: value.to(accelerator.device) for key, value in sample_batch.items()}
            loss = box.forward_process(sample_batch, targets.to(accelerator.device))
            box.post_forward_process(loss=loss)
            steps += 1
            step_seconds += time.perf_counter() - tick
            tick = time.perf_counter()
        box.post_epoch_process()
    metrics = evaluate_student(student.network, val_data, config, accelerator)
    return {
        "seconds_per_step": step_seconds / steps,
        "wall_seconds": time.perf_counter() - start,
        "miou": metrics["miou"],
    }


def run_promptkit(config: RunConfig) -> dict[str, float]:
    """The same numbers for `distill run` (its metrics.json times the train steps the same way)."""
    start = time.perf_counter()
    metrics = train_student(config)
    return {
        "seconds_per_step": metrics["seconds_per_step"],
        "wall_seconds": time.perf_counter() - start,
        "miou": metrics["miou"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic:size=96x128", help="a dataset spec (default: synthetic scenes)")
    parser.add_argument("--teacher", help="a finished teacher folder; default: train a network teacher first")
    parser.add_argument("--network", default="efficientnet_lite2", help="the network teacher trained without --teacher")
    parser.add_argument("--teacher-steps", type=int, default=300, help="steps of that network teacher")
    parser.add_argument("--student", default="efficientnet_lite0")
    parser.add_argument("--student-size", default="96x128")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--kd", default="kl", help="one KD loss name (promptkit's module, in both frameworks)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    size = tuple(int(side) for side in args.student_size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        teacher = args.teacher
        if teacher is None:
            teacher = str(root / "teacher")
            train_student(network_teacher_config(
                args.network, {"data": args.data, "out": teacher, "steps": args.teacher_steps, "panels": 0}
            ))  # fmt: skip
        common = {
            "data": args.data, "teacher": teacher, "student": args.student,
            "student_pretrained": "imagenet" if args.student in OFFLINE_IMAGENET_NETWORKS else None,
            "student_size": size, "kd": args.kd, "steps": args.steps, "eval_every": args.steps,
            "checkpoint_every": args.steps, "panels": 0, "seed": args.seed,
        }  # fmt: skip
        rows = {
            "torchdistill (DistillationBox), live teacher": run_torchdistill(
                RunConfig(out=str(root / "torchdistill"), teacher_cache="live", teacher_views=0, **common)
            ),
            "distill run, live teacher": run_promptkit(
                RunConfig(out=str(root / "live"), teacher_cache="live", teacher_views=0, **common)
            ),
            "distill run, cached teacher (default)": run_promptkit(RunConfig(out=str(root / "cached"), **common)),
        }
    baseline = rows["torchdistill (DistillationBox), live teacher"]["seconds_per_step"]
    print(f"{args.student} {args.student_size}, --kd {args.kd}, {args.steps} steps, data {args.data}")
    for name, row in rows.items():
        seconds = row["seconds_per_step"]
        print(
            f"{name:<40} {seconds * 1000:7.1f} ms/step  {seconds / baseline:.2f}x of torchdistill  "
            f"whole run {row['wall_seconds']:6.1f} s  val mIoU {row['miou']:.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
