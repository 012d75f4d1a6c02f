"""Read the files users hand us (YAML, JSON, safetensors, torch pickles) with bounds and one-line errors.

Every reader here turns "cannot open", "not UTF-8", "not YAML", "truncated" and "too big" into a
:class:`PromptKitError` that names the file and says what is wrong, so no bad file ends in a
traceback. YAML is bounded twice: by the size of the text and by the size of the document once
aliases are expanded (a "billion laughs" file is a few hundred bytes that expand to 10^9 nodes,
which PyYAML builds as shared references but every later walk, validation or dump expands).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from prompt_kit.errors import PromptKitError

MAX_TEXT_BYTES = 16 * 2**20  # a config, prompt set, taxonomy or record file is kilobytes
MAX_YAML_NODES = 200_000  # values in a YAML document with every alias expanded

# libyaml's loader parses a 150-class prompt set about ten times faster than the pure-Python one.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def read_text(path: str | os.PathLike, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a small file; missing, unreadable, too big or not UTF-8 is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise PromptKitError(f"{what} file not found: {path}")
    try:
        size = path.stat().st_size
        if size > limit:
            raise PromptKitError(
                f"{path} is {size:,} bytes, more than a {what} file may be ({limit:,}): is it the right file?"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise PromptKitError(f"cannot read {what} file {path} ({_reason(exc)})") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PromptKitError(
            f"{path} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}): save the {what} file as UTF-8"
        ) from exc


def expanded_size(value: Any, limit: int = MAX_YAML_NODES) -> int:
    """How many values ``value`` holds with shared references counted each time (stops past ``limit``).

    Raises ``ValueError`` for a structure that contains itself.
    """
    sizes: dict[int, int] = {}
    open_ids: set[int] = set()

    def size(item: Any) -> int:
        if not isinstance(item, (dict, list)):
            return 1
        key = id(item)
        if key in sizes:
            return sizes[key]
        if key in open_ids:
            raise ValueError("it contains itself through an alias")
        open_ids.add(key)
        children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        open_ids.discard(key)
        sizes[key] = total
        return total

    return size(value)


def parse_yaml(text: str, source: str, what: str = "YAML") -> Any:
    """Parse YAML text from ``source`` (a file name or ``--set KEY``) with the size bounds above."""
    if len(text) > MAX_TEXT_BYTES:
        raise PromptKitError(f"{source} holds {len(text):,} characters of YAML, more than {MAX_TEXT_BYTES:,}")
    try:
        value = yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or ""
        detail = f": {problem}" if problem else ""
        raise PromptKitError(f"{source} is not valid YAML{where}{detail}: fix the {what}") from exc
    except RecursionError as exc:
        raise PromptKitError(f"{source} nests too deeply to be a {what}") from exc
    try:
        nodes = expanded_size(value)
    except ValueError as exc:
        raise PromptKitError(f"{source} cannot be used: {exc}") from exc
    except RecursionError as exc:
        raise PromptKitError(f"{source} nests too deeply to be a {what}") from exc
    if nodes > MAX_YAML_NODES:
        raise PromptKitError(
            f"{source} expands to more than {MAX_YAML_NODES:,} values through its aliases (&/*): "
            f"write the {what} out without them"
        )
    return value


def read_yaml(path: str | os.PathLike, what: str) -> Any:
    """Parse a YAML file; missing, not UTF-8, malformed or too big is a :class:`PromptKitError`."""
    return parse_yaml(read_text(path, what), str(path), f"{what} file")


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Parse a JSON file with one-line errors."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PromptKitError(f"{path} is not valid JSON ({_reason(exc)}): the {what} file is damaged") from exc


def read_safetensors(path: str | os.PathLike, what: str, device: str = "cpu") -> dict[str, Any]:
    """All tensors of a safetensors file; missing, truncated or not safetensors is one clear error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise PromptKitError(f"{what} file not found: {path}")
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise PromptKitError(
            f"{path} is not a readable safetensors file ({_reason(exc)}): the {what} is damaged"
        ) from exc


def read_safetensors_metadata(
    path: str | os.PathLike, what: str, keys: tuple[str, ...] | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """``(metadata, tensors)`` of a safetensors file: the named ``keys`` (each required), or every tensor."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise PromptKitError(f"{what} file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            present = list(handle.keys())
            missing = [key for key in keys or () if key not in set(present)]
            if missing:
                raise PromptKitError(f"{path} is not a {what} file: it has no tensor {missing[0]!r}")
            return metadata, {key: handle.get_tensor(key) for key in (present if keys is None else keys)}
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise PromptKitError(
            f"{path} is not a readable safetensors file ({_reason(exc)}): the {what} is damaged"
        ) from exc


__all__ = [
    "MAX_TEXT_BYTES",
    "MAX_YAML_NODES",
    "expanded_size",
    "parse_yaml",
    "read_json",
    "read_safetensors",
    "read_safetensors_metadata",
    "read_text",
    "read_yaml",
]
