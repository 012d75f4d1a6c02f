"""YAML config files validated by pydantic, with ``--set a.b=c`` overrides from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic
import yaml
from pydantic import BeforeValidator, Field

from prompt_kit.bounds import MAX_SIDE
from prompt_kit.errors import PromptKitError
from prompt_kit.readers import parse_yaml, read_yaml
from prompt_kit.yaml_files import describe_validation_error

ConfigT = TypeVar("ConfigT", bound=pydantic.BaseModel)


def _size_value(value: Any) -> Any:
    """``"96x128"`` (as on the command line) or ``[96, 128]``; anything else is left to pydantic to reject."""
    if isinstance(value, str):
        height, sep, width = value.lower().partition("x")
        if sep and height.strip().isdigit() and width.strip().isdigit():
            return int(height), int(width)
    return value


ImageSize = Annotated[
    tuple[Annotated[int, Field(ge=1, le=MAX_SIDE)], Annotated[int, Field(ge=1, le=MAX_SIDE)]],
    BeforeValidator(_size_value),
]
"""Height x width in pixels: ``--set student_size=96x128`` or ``[96, 128]`` in a file."""


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``a.b=c`` entries in a nested dict; values are parsed as YAML (``3``, ``0.1``, ``[96, 128]``)."""
    result = {**values}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise PromptKitError(f"--set {item!r}: write it as key=value, e.g. --set optimizer.lr=0.001")
        value = parse_yaml(raw, f"--set {key.strip()}", "value") if raw.strip() else None
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = {**child} if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = value
    return result


def load_config(
    model: type[ConfigT],
    path: str | Path | None,
    overrides: list[str],
    base: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
) -> ConfigT:
    """``defaults``, then the file, then ``base`` (command-line options), then ``--set``; validated as ``model``."""
    values: dict[str, Any] = dict(defaults or {})
    if path is not None:
        raw = read_yaml(path, "config")
        if not isinstance(raw, dict):
            raise PromptKitError(f"{path} is not a config file: expected a YAML mapping at the top")
        values.update(raw)
    values = {**values, **{key: value for key, value in (base or {}).items() if value is not None}}
    values = apply_overrides(values, overrides)
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        raise PromptKitError(f"invalid config: {describe_validation_error(exc)}") from exc


def config_to_yaml(config: pydantic.BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
