"""Class taxonomies: the ordered classes of a dataset (position = label id), colours, ignore id."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prompt_kit.errors import PromptKitError
from prompt_kit.resources import prompts_dir
from prompt_kit.yaml_files import load_model

TAXONOMY_SCHEMA_VERSION = 1


class ClassInfo(BaseModel):
    """One class: ``name`` as the dataset spells it, ``label`` as a prompt says it, a display colour."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    label: str = Field(default="", description="natural-language name used in prompts; default: name")
    color: tuple[int, int, int] = (0, 0, 0)

    @model_validator(mode="after")
    def _default_label(self) -> ClassInfo:
        if not self.label.strip():
            object.__setattr__(self, "label", self.name)
        return self

    @field_validator("color")
    @classmethod
    def _rgb(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(not 0 <= channel <= 255 for channel in value):
            raise ValueError(f"colour {list(value)} must have three values in 0..255")
        return value


class Taxonomy(BaseModel):
    """The contract every later stage relies on: class order is label id order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = TAXONOMY_SCHEMA_VERSION
    name: str = Field(min_length=1)
    description: str = ""
    ignore_index: int = 255
    classes: tuple[ClassInfo, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> Taxonomy:
        if self.schema_version != TAXONOMY_SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported (expected {TAXONOMY_SCHEMA_VERSION})"
            )
        for attribute in ("name", "label"):
            seen: set[str] = set()
            for info in self.classes:
                key = getattr(info, attribute).strip().lower()
                if key in seen:
                    raise ValueError(f"duplicate class {attribute} {getattr(info, attribute)!r}")
                seen.add(key)
        if 0 <= self.ignore_index < len(self.classes):
            raise ValueError(
                f"ignore_index {self.ignore_index} is a class id (0..{len(self.classes) - 1}); "
                "use a value outside that range such as 255"
            )
        return self

    @property
    def class_names(self) -> list[str]:
        return [info.name for info in self.classes]

    @property
    def labels(self) -> list[str]:
        return [info.label for info in self.classes]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _builtin_dir() -> Path:
    return prompts_dir() / "classes"


def list_taxonomies() -> list[str]:
    """Names of the built-in taxonomies."""
    return sorted(path.stem for path in _builtin_dir().glob("*.yaml"))


def load_taxonomy(name_or_path: str | Path) -> Taxonomy:
    """A built-in taxonomy by name (``camvid``) or a user's taxonomy file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        return load_model(Taxonomy, candidate, "taxonomy")
    builtin = _builtin_dir() / f"{name_or_path}.yaml"
    if not builtin.is_file():
        raise PromptKitError(
            f"unknown dataset {str(name_or_path)!r}: choose one of {', '.join(list_taxonomies())} "
            "or pass a taxonomy file (--classes FILE)"
        )
    return load_model(Taxonomy, builtin, "taxonomy")
