"""The one training loop that teacher and student training sit on.

What every trainer shares lives here, and only here: the accelerator (CPU, one GPU or many
processes through one code path), seeding, step-addressed batches (a pure function of seed,
step and rank), optimizer and schedule, checkpoints with exact resume, evaluation with
best-checkpoint keeping, and the finishing files (provenance, then ``metrics.json`` last). A
trainer brings only what is its own: the model, a loss for a batch, how to evaluate, and what to
keep of the best model.

Checkpoints are our own small format, one folder per checkpoint: ``model.safetensors`` (the
trainable state), ``optimizer.pt``, ``scheduler.pt``, ``rng_<rank>.pt`` (torch, CUDA, NumPy and
Python RNG states of each process) and ``state.json`` (step, best mIoU, history). A checkpoint
is written into a temporary folder and switched in by rename, the previous one kept until the
new one is complete, so a kill at any moment leaves one whole checkpoint to resume from.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_save
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from distill.step_sampling import EpochAddressed, StepBatchSampler
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes, atomic_write_text

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


@dataclass
class LoopState:
    """What a checkpoint records besides tensors; ``best_miou`` is -1 before the first evaluation."""

    step: int = 0
    best_miou: float = -1.0
    best_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    # wall seconds inside train steps (batch loading included; evaluations and checkpoints not), over every session
    step_seconds: float = 0.0


# -- checkpoints ----------------------------------------------------------------------------------
def _rng_states() -> dict[str, Any]:
    """Every RNG state as tensors and plain values, so it loads with ``weights_only=True`` (no pickled code)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "python": (version, torch.tensor(python_state, dtype=torch.int64), gauss_next),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, python_state, gauss_next = states["python"]
    random.setstate((version, tuple(int(v) for v in python_state.tolist()), gauss_next))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def checkpoint_exists(folder: Path) -> bool:
    """A complete checkpoint is at ``folder`` (or its previous copy, if a kill came mid-switch)."""
    return any((path / "state.json").is_file() for path in (folder, _previous(folder)))


def _previous(folder: Path) -> Path:
    return folder.with_name(folder.name + ".previous")


EXTRA_NAME = "extra.safetensors"


class Checkpoints:
    """Write and read one rolling checkpoint folder for a model, its optimizer and schedule."""

    def __init__(
        self,
        folder: Path,
        accelerator: Accelerator,
        model: torch.nn.Module,
        optimizer,
        scheduler,
        keep: Callable[[str], bool] = lambda key: True,
        config_sha256: str = "",
        extra: torch.nn.Module | None = None,
    ) -> None:
        """``extra``: modules trained or stepped beside the model whose state a resume needs too (KD
        terms: a loss's call count, a connector's weights), saved as ``extra.safetensors``."""
        self.folder, self.accelerator = Path(folder), accelerator
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.extra = extra
        self.keep = keep
        self.config_sha256 = config_sha256  # recorded in state.json: --resume checks config.yaml against it

    def _extra_state(self) -> dict[str, torch.Tensor]:
        if self.extra is None:
            return {}
        return {key: value.detach().cpu().contiguous() for key, value in self.extra.state_dict().items()}

    def _model_state(self) -> dict[str, torch.Tensor]:
        state = self.accelerator.unwrap_model(self.model).state_dict()
        return {key: value.detach().cpu().contiguous() for key, value in state.items() if self.keep(key)}

    def save(self, state: LoopState) -> None:
        """Write the checkpoint for ``state`` into a new folder, then switch it in."""
        accelerator, folder = self.accelerator, self.folder
        staging = folder.with_name(folder.name + ".incoming")
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        accelerator.wait_for_everyone()
        torch.save(_rng_states(), staging / f"rng_{accelerator.process_index}.pt")
        if accelerator.is_main_process:
            atomic_write_bytes(staging / "model.safetensors", safetensors_save(self._model_state()))
            atomic_write_bytes(staging / "optimizer.pt", _torch_bytes(self.optimizer.state_dict()))
            atomic_write_bytes(staging / "scheduler.pt", _torch_bytes(self.scheduler.state_dict()))
            extra = self._extra_state()
            if extra:
                atomic_write_bytes(staging / EXTRA_NAME, safetensors_save(extra))
            if accelerator.scaler is not None:  # fp16 loss scaling: its scale and growth tracker
                atomic_write_bytes(staging / "scaler.pt", _torch_bytes(accelerator.scaler.state_dict()))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            record = {**asdict(state), "config_sha256": self.config_sha256}
            atomic_write_text(staging / "state.json", json.dumps(record, indent=1) + "\n")  # written last
            _fsync_folder(staging)
            previous = _previous(folder)
            if (folder / "state.json").is_file():  # else a kill mid-switch left only the previous one: keep it
                shutil.rmtree(previous, ignore_errors=True)
                folder.rename(previous)  # kept: the fallback if the new one turns out unreadable
            else:
                shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
            _fsync_folder(folder.parent)
        accelerator.wait_for_everyone()

    def load(self) -> LoopState:
        """Restore model, optimizer, schedule and RNG states from the newest readable checkpoint.

        A checkpoint that cannot be read (a disk error, a file damaged after it was written) is
        reported and the previous one is used; the step-addressed loop then redoes the steps between.
        """
        candidates = [path for path in (self.folder, _previous(self.folder)) if (path / "state.json").is_file()]
        problems = []
        for folder in candidates:
            try:
                return self._load_from(folder)
            except PromptKitError as exc:
                problems.append(str(exc))
                if folder is not candidates[-1]:
                    logger.warning("%s; using the previous checkpoint %s", exc, candidates[-1])
        if not problems:
            raise PromptKitError(f"no checkpoint in {self.folder}: nothing to resume")
        raise PromptKitError(problems[-1] + ("; the previous checkpoint too" if len(problems) > 1 else ""))

    def _load_from(self, folder: Path) -> LoopState:
        try:
            recorded = json.loads((folder / "state.json").read_text())
            state = LoopState(**{key: recorded[key] for key in LoopState.__dataclass_fields__ if key in recorded})
            model_state = load_file(str(folder / "model.safetensors"))
            optimizer_state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
            scheduler_state = torch.load(folder / "scheduler.pt", map_location="cpu", weights_only=True)
            rng_path = folder / f"rng_{self.accelerator.process_index}.pt"
            rng = torch.load(rng_path, weights_only=True) if rng_path.is_file() else None
            scaler_path = folder / "scaler.pt"
            scaler_state = torch.load(scaler_path, weights_only=True) if scaler_path.is_file() else None
            extra_path = folder / EXTRA_NAME
            extra_state = load_file(str(extra_path)) if extra_path.is_file() else None
        except Exception as exc:  # noqa: BLE001 (damaged pickles raise IndexError, KeyError, ...: all mean unreadable)
            raise PromptKitError(
                f"the checkpoint in {folder} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]})"
            ) from exc
        model = self.accelerator.unwrap_model(self.model)
        misfit = f"the checkpoint in {folder} does not fit this model: resume with the same config"
        try:
            missing, unexpected = model.load_state_dict(model_state, strict=False)
        except RuntimeError as exc:  # a tensor of another shape
            raise PromptKitError(misfit) from exc
        if unexpected or [key for key in missing if self.keep(key)]:
            raise PromptKitError(misfit)
        if extra_state is not None and self.extra is not None:
            try:
                self.extra.load_state_dict(extra_state)
            except RuntimeError as exc:
                raise PromptKitError(misfit) from exc
        self.optimizer.load_state_dict(optimizer_state)
        self.scheduler.load_state_dict(scheduler_state)
        if scaler_state is not None and self.accelerator.scaler is not None:
            self.accelerator.scaler.load_state_dict(scaler_state)
        if rng is not None:
            _set_rng_states(rng)
        return state


def checkpoint_state(folder: Path) -> dict[str, Any]:
    """The ``state.json`` of the checkpoint at ``folder`` (or its previous copy); empty if unreadable."""
    for path in (Path(folder), _previous(Path(folder))):
        try:
            record = json.loads((path / "state.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            return record
    return {}


def _torch_bytes(value: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


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
                if writer is not None:
                    writer.add_scalar("val/miou", metrics["miou"], step)
                if metrics["miou"] > state.best_miou:
                    state.best_miou, state.best_step = metrics["miou"], step
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
