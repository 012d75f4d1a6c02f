"""Read YAML into pydantic models with one-line errors instead of tracebacks."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pydantic
import yaml

from prompt_kit.errors import PromptKitError

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

# libyaml's loader parses a 150-class prompt set about ten times faster than the pure-Python one.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def describe_validation_error(error: pydantic.ValidationError) -> str:
    """The first problem of a pydantic error as ``where: what`` (one line)."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "file"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {first['msg']}{suffix}"


def read_yaml(path: str | Path, what: str) -> object:
    """Parse a YAML file; a missing or malformed file is a :class:`PromptKitError`."""
    path = Path(path)
    if not path.is_file():
        raise PromptKitError(f"{what} file not found: {path}")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PromptKitError(f"{path} is not valid YAML{where}: fix the {what} file") from exc


def load_model(model: type[ModelT], path: str | Path, what: str) -> ModelT:
    """Read ``path`` and validate it as ``model``; errors name the file and the first problem."""
    raw = read_yaml(path, what)
    if not isinstance(raw, dict):
        raise PromptKitError(f"{path} is not a {what} file: expected a YAML mapping at the top")
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise PromptKitError(f"invalid {what} {path}: {describe_validation_error(exc)}") from exc
