"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    ``durable=False`` skips the fsync: still never half a file, but a power cut may lose the
    write. Right for caches, which can be rebuilt, where hundreds of fsyncs would dominate.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would hide results from the user's team
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_files(files: dict[Path, bytes]) -> list[Path]:
    """Write several files as one: an error leaves none of the new files behind.

    Every file is staged as a temporary file first (the slow part, where a full disk or a bad
    path shows up); only then are they renamed into place. A rename that fails takes back the ones
    already made (files that were there before are replaced, not restored).
    """
    staged: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    created_folders: list[Path] = []
    try:
        for path, data in files.items():
            path = Path(path)
            missing = [parent for parent in [path.parent, *path.parent.parents] if not parent.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            created_folders.extend(reversed(missing))
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((Path(tmp), path))
            os.fchmod(fd, 0o666 & ~current_umask())
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
            placed.append(path)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for path in placed:
            path.unlink(missing_ok=True)
        for folder in reversed(created_folders):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return placed
