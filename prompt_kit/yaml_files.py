"""Read YAML into pydantic models with one-line errors instead of tracebacks."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pydantic

from prompt_kit.errors import PromptKitError
from prompt_kit.readers import read_yaml

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


def describe_validation_error(error: pydantic.ValidationError) -> str:
    """The first problem of a pydantic error as ``where: what`` (one line)."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "file"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    message = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's ValueError
    return f"{where}: {message}{suffix}"


def load_model(model: type[ModelT], path: str | Path, what: str) -> ModelT:
    """Read ``path`` and validate it as ``model``; errors name the file and the first problem."""
    raw = read_yaml(path, what)
    if not isinstance(raw, dict):
        raise PromptKitError(f"{path} is not a {what} file: expected a YAML mapping at the top")
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise PromptKitError(f"invalid {what} {path}: {describe_validation_error(exc)}") from exc
