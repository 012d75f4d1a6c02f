"""Where a command may write: never over an existing file or into another command's finished work, unless asked.

Every command that writes a single file (``promptkit generate --out``, ``embed``, ``map``,
``distill vdna --out``/``--ranking``) checks its path with :func:`check_new_file` before any
work, and every command that fills a folder checks it with :func:`check_output_folder`: a
folder that holds a finished training run, teacher, comparison, adaptation, pseudo-label or
prediction set of another kind is refused, so the metrics a table was built from are never
replaced by an unrelated command. ``--overwrite`` is the user saying "replace it".
"""

from __future__ import annotations

import os
from pathlib import Path

from prompt_kit.errors import PromptKitError

# a file that marks a folder as a command's finished work, and what that work is
FINISHED_WORK = {
    "metrics.json": "a finished run",
    "results.json": "a finished comparison",
    "adapt.json": "an adaptation",
    "pseudo_labels.json": "finished pseudo-labels",
    "predictions.json": "predictions",
}


def finished_work(folder: str | os.PathLike) -> str | None:
    """What finished work ``folder`` holds (``"a finished run"``, ...), or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for marker, what in FINISHED_WORK.items():
        if (folder / marker).is_file():
            return what
    return None


def check_new_file(path: str | os.PathLike, option: str, overwrite: bool = False) -> Path:
    """Refuse ``path`` if it exists or lies in another command's finished folder (unless ``overwrite``).

    A folder in its place, or a file where a parent folder should be, is refused always.
    """
    path = Path(path)
    if path.is_dir():
        raise PromptKitError(f"{option} {path} is a folder: give a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PromptKitError(f"{option} {path}: {parent} is a file, not a folder")
            break
    if overwrite:
        return path
    if path.exists() or path.is_symlink():
        raise PromptKitError(f"{option} {path} exists: choose another path, or pass --overwrite to replace it")
    work = finished_work(path.parent)
    if work is not None:
        raise PromptKitError(
            f"{option} {path} is inside {path.parent}, which holds {work}: write elsewhere, or pass --overwrite"
        )
    return path


def check_output_folder(folder: str | os.PathLike, option: str, own: str | None = None) -> Path:
    """Refuse a folder that holds finished work other than ``own`` (the marker this command writes).

    A folder of this command's own kind is left to the command (it resumes or refuses); another
    kind's is refused always: replacing what a different command made is never what was meant.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise PromptKitError(f"{option} {folder} is a file: give a folder")
    if own is not None and (folder / own).is_file():
        return folder  # the command's own work: it resumes or refuses
    work = finished_work(folder)
    if work is not None:
        raise PromptKitError(f"{option} {folder} holds {work}: choose a new or empty folder")
    return folder


__all__ = ["FINISHED_WORK", "check_new_file", "check_output_folder", "finished_work"]
