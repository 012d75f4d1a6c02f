"""Output folders of training runs: one writer at a time, resume only what was started, no debris.

Every trainer (``distill teacher``, ``distill run``, each cell of ``distill compare``) opens its
``--out`` through :func:`open_run_folder`, which

- checks the path can be written (not a file, not under a file, permission) before any work;
- locks the folder for this process (``.promptkit.lock``: an ``flock`` plus the owner's pid, host and
  start time, so a second writer is refused at once with who holds it; the kernel drops the lock
  when its process dies, so a lock left by a killed run is taken over, with a warning);
- refuses a finished folder (unless ``overwrite``) and a killed run's checkpoint without
  ``resume``; with ``resume`` refuses a folder with nothing to resume and a config that differs
  from the recorded one, naming the first differing field;
- removes the folder again if this process created it and fails before its first checkpoint, so
  a bad input leaves nothing behind.

Only rank 0 of a multi-process launch locks and cleans up; the other ranks write nothing here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from distill.training.checkpoints import checkpoint_exists, checkpoint_state
from prompt_kit.errors import PromptKitError
from prompt_kit.readers import read_yaml

logger = logging.getLogger(__name__)

LOCK_NAME = ".promptkit.lock"
CONFIG_NAME = "config.yaml"
FINISHED_NAME = "metrics.json"
# fields that change neither the trained weights nor the data they see: --allow-change may differ on resume
RESULT_NEUTRAL = frozenset({"checkpoint_every", "eval_every", "num_workers", "panels", "val_images"})
_ALWAYS_IGNORED = frozenset({"out"})  # a folder may be moved between the kill and the resume


def is_main_rank() -> bool:
    """Rank 0 of an ``accelerate launch``/``torchrun`` job, or a plain process."""
    return int(os.environ.get("RANK", "0")) == 0


# -- the config record ---------------------------------------------------------------------------
def config_values(config: pydantic.BaseModel | dict[str, Any]) -> dict[str, Any]:
    values = config.model_dump(mode="json") if isinstance(config, pydantic.BaseModel) else dict(config)
    return {key: value for key, value in values.items() if key not in _ALWAYS_IGNORED}


def config_digest(config: pydantic.BaseModel | dict[str, Any]) -> str:
    """SHA-256 of the resolved config (without ``out``), as recorded in checkpoints and provenance."""
    text = json.dumps(config_values(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Every dotted key whose values differ, with the old and new value, in the new config's order."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [*new, *(key for key in old if key not in new)]
        return [found for key in keys for found in differences(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [(prefix.rstrip("."), old, new)]


# -- the lock ------------------------------------------------------------------------------------
class FolderLock:
    """An exclusive ``flock`` on ``folder/.promptkit.lock`` holding who took it."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.descriptor: int | None = None

    def acquire(self) -> FolderLock:
        for _ in range(5):  # the file may be replaced under us by a releasing owner: lock what the path names
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_owner(descriptor)
                os.close(descriptor)
                raise PromptKitError(
                    f"{self.path.parent} is being written by another process ({owner}): wait for it to finish, "
                    "or choose another --out"
                ) from None
            if os.path.exists(self.path) and os.fstat(descriptor).st_ino == os.stat(self.path).st_ino:
                break
            os.close(descriptor)
        else:
            raise PromptKitError(f"cannot lock {self.path}: it keeps being replaced; is another process cleaning up?")
        previous = _read_owner(descriptor)
        if previous:
            logger.warning(
                "%s was left locked by a process that is gone (%s): taking it over", self.path.parent, previous
            )
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(record) + "\n").encode(), 0)
        self.descriptor = descriptor
        return self

    def release(self) -> None:
        if self.descriptor is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still holding it: a waiting locker re-checks the path (acquire)
        os.close(self.descriptor)
        self.descriptor = None


def _read_owner(descriptor: int) -> str:
    try:
        record = json.loads(os.pread(descriptor, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return ""
    if not isinstance(record, dict) or "pid" not in record:
        return ""
    return f"pid {record['pid']} on {record.get('host', '?')} since {record.get('since', '?')}"


# -- the folder ----------------------------------------------------------------------------------
@dataclass
class RunFolder:
    """An opened output folder: where it is, whether this process made it, what resume changed."""

    path: Path
    created: bool
    config_sha256: str
    resumed_from_step: int | None = None
    changed_on_resume: dict[str, list[Any]] = field(default_factory=dict)


def check_writable(out: Path) -> None:
    """One clear error when ``out`` cannot become a folder we write (before any work is done)."""
    if out.exists() and not out.is_dir():
        raise PromptKitError(f"--out {out} is a file, not a folder: choose a folder path")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PromptKitError(f"--out {out} is under {ancestor}, which is a file: choose a folder path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PromptKitError(f"cannot write into {ancestor} (permission denied): choose another --out")


@contextlib.contextmanager
def open_run_folder(
    out: str | Path,
    config: pydantic.BaseModel,
    *,
    what: str,
    checkpoints: Iterable[Path | str],
    resume: bool = False,
    overwrite: bool = False,
    allow_changes: Iterable[str] = (),
) -> Iterator[RunFolder]:
    """Open ``out`` for a run of ``config`` (see the module docstring); ``checkpoints`` are its folders."""
    out = Path(out)
    checkpoints = [Path(path) for path in checkpoints]
    digest = config_digest(config)
    if resume and overwrite:
        raise PromptKitError("--resume continues a run and --overwrite starts it over: pass one of them")
    if not is_main_rank():
        yield RunFolder(out, created=False, config_sha256=digest)
        return
    check_writable(out)
    made = _first_missing(out)  # the topmost folder this call creates (None: out exists)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PromptKitError(f"cannot create {out} ({exc.strerror}): choose another --out") from exc
    lock = FolderLock(out)
    try:
        lock.acquire()
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise
    try:
        folder = RunFolder(out, created=made is not None, config_sha256=digest)
        _check_state(folder, config, what, checkpoints, resume, overwrite, set(allow_changes))
        yield folder
    except BaseException:
        if made is not None and not any(checkpoint_exists(path) for path in checkpoints):
            shutil.rmtree(made, ignore_errors=True)  # nothing to resume: leave no half-made folder (lock held)
        raise
    finally:
        lock.release()


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet, or None when ``path`` exists."""
    missing = None
    for candidate in [path, *path.parents]:
        if candidate.exists():
            return missing
        missing = candidate
    return missing


def _check_state(
    folder: RunFolder,
    config: pydantic.BaseModel,
    what: str,
    checkpoints: list[Path],
    resume: bool,
    overwrite: bool,
    allow_changes: set[str],
) -> None:
    out = folder.path
    finished = (out / FINISHED_NAME).is_file()
    started = [path for path in checkpoints if checkpoint_exists(path)]
    if overwrite:
        for child in out.iterdir():
            if child.name != LOCK_NAME:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        return
    if not resume:
        if finished:
            raise PromptKitError(f"{out} already holds a finished {what}: choose another --out, or pass --overwrite")
        if started:
            step = checkpoint_state(started[-1]).get("step", "?")
            raise PromptKitError(
                f"{out} holds a killed {what} (checkpoint at step {step}): pass --resume to continue it, "
                "or --overwrite to start over"
            )
        return
    if finished:
        raise PromptKitError(f"{out} holds a finished {what}: nothing to resume")
    if not started:
        raise PromptKitError(f"nothing to resume in {out}: no checkpoint was written yet; start it without --resume")
    unknown = allow_changes - RESULT_NEUTRAL
    if unknown:
        raise PromptKitError(
            f"--allow-change {sorted(unknown)[0]}: only fields that do not change the result may change on resume "
            f"({', '.join(sorted(RESULT_NEUTRAL))})"
        )
    state = checkpoint_state(started[-1])
    folder.resumed_from_step = int(state.get("step", 0))
    recorded_path = out / CONFIG_NAME
    if not recorded_path.is_file():
        raise PromptKitError(f"{recorded_path} is missing, so the resumed run cannot be checked: start it over")
    recorded = read_yaml(recorded_path, "run config")
    if not isinstance(recorded, dict):
        raise PromptKitError(f"{recorded_path} is not a config: the folder is damaged; start it over")
    recorded_digest = state.get("config_sha256")
    if recorded_digest and recorded_digest != config_digest(recorded):
        raise PromptKitError(
            f"{recorded_path} was changed after the checkpoint was written: put it back, or start the run over"
        )
    for key, old, new in differences(config_values(recorded), config_values(config)):
        if key.split(".")[0] in allow_changes:
            folder.changed_on_resume[key] = [old, new]
            continue
        hint = f" (or --allow-change {key})" if key in RESULT_NEUTRAL else ""
        raise PromptKitError(
            f"--resume with a different config: {key} was {old!r}, now {new!r}; resume with the options the run "
            f"started with{hint}"
        )


def resumable(out: str | Path, checkpoints: Iterable[Path | str]) -> bool:
    """Whether ``out`` holds an unfinished run with a checkpoint (what ``distill compare`` resumes)."""
    out = Path(out)
    return not (out / FINISHED_NAME).is_file() and any(checkpoint_exists(Path(path)) for path in checkpoints)


__all__ = [
    "LOCK_NAME",
    "RESULT_NEUTRAL",
    "FolderLock",
    "RunFolder",
    "check_writable",
    "config_digest",
    "differences",
    "open_run_folder",
    "resumable",
]
