"""Checkpoints with exact resume: the training core's own small format, one folder per checkpoint.

``model.safetensors`` (the trainable state), ``optimizer.pt``, ``scheduler.pt``, ``rng_<rank>.pt``
(torch, CUDA, NumPy and Python RNG states of each process, as tensors so they load with
``weights_only=True``), optional ``extra.safetensors`` and ``scaler.pt``, and ``state.json`` (step,
best mIoU, history), written last. A checkpoint is written into a temporary folder and switched
in by rename, the previous one kept until the new one is complete, so a kill at any moment leaves
one whole checkpoint to resume from; an unreadable newest one falls back to the previous.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_save

from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)


@dataclass
class LoopState:
    """What a checkpoint records besides tensors; ``best_miou`` is -1 before the first evaluation."""

    step: int = 0
    best_miou: float = -1.0
    best_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    # wall seconds inside train steps (batch loading included; evaluations and checkpoints not), over every session
    step_seconds: float = 0.0


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


__all__ = ["EXTRA_NAME", "Checkpoints", "LoopState", "checkpoint_exists", "checkpoint_state"]
