"""The one training loop that teacher and student training sit on.

What every trainer shares lives here, and only here: the accelerator (CPU, one GPU or many
processes through one code path), seeding, step-addressed batches (a pure function of seed,
step and rank), optimizer and schedule, checkpoints with exact resume, evaluation with
best-checkpoint keeping, and the finishing files (provenance, then ``metrics.json`` last). A
trainer brings only what is its own: the model, a loss for a batch, how to evaluate, and what to
keep of the best model.

Checkpoints (their format, atomic switch and fallback) are ``distill.training.checkpoints``; they are
re-exported here, so a trainer imports its whole toolkit from one place.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from distill.training.checkpoints import Checkpoints, LoopState, checkpoint_exists, checkpoint_state
from distill.training.step_sampling import EpochAddressed, StepBatchSampler
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_text

logger = logging.getLogger(__name__)

LossFn = Callable[[dict[str, Any]], tuple[torch.Tensor, dict[str, float]]]


def make_accelerator(mixed_precision: str) -> Accelerator:
    """CPU, one GPU or many through one code path; bf16 autocast on CUDA when it is supported."""
    if mixed_precision == "auto":
        mixed_precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if torch.cuda.is_available() else "no"
    # cpu=True without CUDA makes torchrun/accelerate launch start gloo processes instead of one
    return Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available())


def poly_factor(total: int, warmup: int, power: float = 0.9) -> Callable[[int], float]:
    """The learning-rate factor at each step: linear warmup, then polynomial decay to zero."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 1 - (step - warmup) / max(1, total - warmup)) ** power

    return factor


def poly_schedule(optimizer: torch.optim.Optimizer, total: int, warmup: int, power: float = 0.9):
    """Linear warmup, then polynomial decay to zero: the usual segmentation schedule."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, poly_factor(total, warmup, power))


def constant_schedule(optimizer: torch.optim.Optimizer):
    """The learning rate as given, every step (denoiser pretraining)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def make_optimizer(
    parameters: Iterable[torch.nn.Parameter], name: str, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """AdamW, or SGD with momentum 0.9, over ``parameters``."""
    parameters = list(parameters)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise PromptKitError(f"unknown optimizer {name!r}: choose adamw or sgd")


def tensorboard_writer(folder: Path, accelerator: Accelerator):
    """A TensorBoard writer on the main process, None elsewhere."""
    if not accelerator.is_main_process:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(folder))


@dataclass
class LoopSettings:
    """How long to train and how often to evaluate and checkpoint (``eval_every=None``: never)."""

    steps: int
    batch_size: int
    seed: int
    checkpoint_every: int
    eval_every: int | None = None
    grad_clip: float = 0.0
    num_workers: int = 0


# -- the loop -------------------------------------------------------------------------------------
class NonFiniteLoss(PromptKitError):
    """The loss became NaN or infinite: training stops there, naming the step and the term."""

    def __init__(self, description: str, step: int, value: float, logged: dict[str, float], saved_step: int) -> None:
        bad = [name for name, term in logged.items() if not math.isfinite(term)]
        term = f" ({bad[0]} = {logged[bad[0]]})" if bad else ""
        kept = f"; the checkpoint of step {saved_step} is kept" if saved_step else ""
        super().__init__(
            f"{description}: the loss is {value} at step {step}{term}: lower the learning rate or check the data "
            f"and the loss settings{kept}",
            exit_code=1,
        )
        self.step, self.term = step, bad[0] if bad else "loss"


def train_steps(
    *,
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer,
    scheduler,
    views,
    settings: LoopSettings,
    checkpoints: Checkpoints,
    loss_fn: LossFn,
    evaluate: Callable[[], dict[str, Any]] | None = None,
    keep_best: Callable[[], None] | None = None,
    resume: bool = False,
    writer=None,
    description: str = "train",
    log_prefix: str = "train",
    synced_by_hand: list[torch.nn.Parameter] | None = None,
) -> LoopState:
    """Train ``model`` for ``settings.steps`` steps on step-addressed batches of ``views``.

    Args:
        views: a dataset with ``set_epoch`` (``PairedViews`` or a wrapper of it).
        loss_fn: a batch (on the device; ``batch['step']`` is the 0-based step) -> (loss, numbers to log).
            Runs under autocast.
        evaluate: the model's metrics (``miou`` at least), every ``eval_every`` steps and at the end.
        keep_best: called on the main process when an evaluation beats the best so far.
        resume: continue from the checkpoint when there is one.
        synced_by_hand: parameters whose gradients are averaged over processes here, for a phase whose
            forward does not go through the DistributedDataParallel wrapper (which would sync them).

    Returns:
        The final loop state (step, best mIoU and step, evaluation history).
    """
    state = checkpoints.load() if resume and checkpoint_exists(checkpoints.folder) else LoopState()
    sampler = StepBatchSampler(
        len(views),
        settings.batch_size,
        settings.seed,
        settings.steps,
        start_step=state.step,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    # the loader's own generator: without one, starting its iterator draws from the global RNG, which a
    # resumed run has just restored, and every later random draw (dropout, noise) would shift by one
    loader = DataLoader(
        EpochAddressed(views),
        batch_sampler=sampler,
        num_workers=settings.num_workers,
        generator=torch.Generator().manual_seed(settings.seed),
    )
    progress = tqdm(
        total=settings.steps, initial=state.step, desc=description, disable=not accelerator.is_local_main_process
    )
    parameters = [p for p in model.parameters() if p.requires_grad]
    step = state.step
    tick = time.perf_counter()
    try:  # the bar is closed on an error too, so the error line starts on a line of its own
        for batch in loader:
            model.train()
            batch = {
                key: value.to(accelerator.device) if torch.is_tensor(value) else value for key, value in batch.items()
            }
            batch["step"] = step  # 0-based index of this step: schedules read it
            with accelerator.autocast():
                loss, logged = loss_fn(batch)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise NonFiniteLoss(description, step + 1, loss_value, logged, state.step)
            accelerator.backward(loss)
            if synced_by_hand and accelerator.num_processes > 1:
                for parameter in synced_by_hand:
                    if parameter.grad is not None:
                        torch.distributed.all_reduce(parameter.grad)
                        parameter.grad /= accelerator.num_processes
            if settings.grad_clip:
                accelerator.clip_grad_norm_(parameters, settings.grad_clip)
            optimizer.step()
            scheduler.step()
            # the model's, not only the optimizer's: a phase that trains part of a model (the denoiser) must not
            # leave gradients on the rest that the next phase's first step would add in
            model.zero_grad(set_to_none=True)
            optimizer.zero_grad(set_to_none=True)
            step += 1
            state.step_seconds += time.perf_counter() - tick
            progress.update(1)
            progress.set_postfix(loss=f"{loss_value:.3f}")
            if writer is not None:
                for name, value in {"loss": loss_value, **logged}.items():
                    writer.add_scalar(f"{log_prefix}/{name}", value, step)
                writer.add_scalar(f"{log_prefix}/lr", scheduler.get_last_lr()[0], step)
            if (
                evaluate is not None
                and settings.eval_every
                and (step % settings.eval_every == 0 or step == settings.steps)
            ):
                metrics = evaluate()
                state.history.append({"step": step, "miou": metrics["miou"]})
                if writer is not None and metrics["miou"] is not None:
                    writer.add_scalar("val/miou", metrics["miou"], step)
                # no labelled pixel to score (a tiny pseudo-labelled val split): the latest weights are kept
                if metrics["miou"] is None or metrics["miou"] > state.best_miou:
                    state.best_step = step
                    state.best_miou = state.best_miou if metrics["miou"] is None else metrics["miou"]
                    if keep_best is not None and accelerator.is_main_process:
                        keep_best()
            if step % settings.checkpoint_every == 0 or step == settings.steps:
                state.step = step
                checkpoints.save(state)
            tick = time.perf_counter()
    finally:
        progress.close()
    state.step = step
    accelerator.wait_for_everyone()
    return state


def write_finished(out: Path, accelerator: Accelerator, record: dict[str, Any], metrics: dict[str, Any]) -> None:
    """``provenance.json``, then ``metrics.json`` last: its presence marks the folder finished."""
    if not accelerator.is_main_process:
        return
    atomic_write_text(out / "provenance.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def elapsed(start: float) -> float:
    return round(time.time() - start, 1)


__all__ = [
    "Checkpoints",
    "LoopSettings",
    "LoopState",
    "NonFiniteLoss",
    "checkpoint_exists",
    "checkpoint_state",
    "constant_schedule",
    "elapsed",
    "make_accelerator",
    "make_optimizer",
    "poly_factor",
    "poly_schedule",
    "tensorboard_writer",
    "train_steps",
    "write_finished",
]
