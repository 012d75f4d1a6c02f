"""PromptSet: the validated, schema-versioned file that says how each class is named to a teacher."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_text
from prompt_kit.styles import get_style
from prompt_kit.taxonomy import Taxonomy
from prompt_kit.yaml_files import load_model

PROMPT_SET_SCHEMA_VERSION = 1


def _clean_words(words: list[str]) -> list[str]:
    cleaned = [word.strip() for word in words]
    if any(not word for word in cleaned):
        raise ValueError("words must not be empty")
    return cleaned


class ClassPrompt(BaseModel):
    """How one class is named: its label, the words chosen for it and the rendered prompt text(s).

    ``texts`` holds what the text encoder sees; several texts (LLM samples) are ensembled by the
    encoder. ``candidates`` is the pool the ``words`` were chosen from.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    label: str = Field(min_length=1)
    sentence: str | None = None
    words: list[str] = Field(default_factory=list)
    candidates: list[str] = Field(default_factory=list)
    texts: list[str] = Field(min_length=1)

    _check_words = field_validator("words", "candidates")(lambda cls, value: _clean_words(value))

    @field_validator("texts")
    @classmethod
    def _non_empty_texts(cls, value: list[str]) -> list[str]:
        if any(not text.strip() for text in value):
            raise ValueError("prompt texts must not be empty")
        return value


class TemplateInfo(BaseModel):
    """A template by name and content hash, so a set records exactly what rendered it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    sha256: str


class LLMSource(BaseModel):
    """Which LLM wrote the words and with what parameters (never the API key)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    base_url: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    samples: int = 1
    request_template: TemplateInfo | None = None
    attempts: int = 1
    cached_answers: int = 0
    usage: dict[str, int] = Field(default_factory=dict)


class Provenance(BaseModel):
    """Where a set came from: template, source (curated or an LLM), word selection, time."""

    model_config = ConfigDict(extra="forbid")

    template: TemplateInfo
    source: Literal["curated", "llm"] = "curated"
    llm: LLMSource | None = None
    selection: dict[str, Any] | None = None
    created: datetime = Field(default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0))
    promptkit_version: str = ""


class PromptSet(BaseModel):
    """Every class of a taxonomy exactly once, in taxonomy order, named in one style."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = PROMPT_SET_SCHEMA_VERSION
    dataset: str
    style: str
    classes: list[ClassPrompt] = Field(min_length=2)
    provenance: Provenance

    @model_validator(mode="after")
    def _check(self) -> PromptSet:
        if self.schema_version != PROMPT_SET_SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported (expected {PROMPT_SET_SCHEMA_VERSION})"
            )
        try:
            style = get_style(self.style)
        except PromptKitError as exc:
            raise ValueError(str(exc)) from None
        names = [entry.name.lower() for entry in self.classes]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"class {duplicates[0]!r} appears more than once")
        for entry in self.classes:
            style.check_prompt(entry)
            if entry.candidates and not set(entry.words) <= set(entry.candidates):
                raise ValueError(f"class {entry.name!r}: chosen words must come from its candidates")
        style.check_prompts(self.classes)
        return self

    @property
    def class_names(self) -> list[str]:
        return [entry.name for entry in self.classes]

    def check_against(self, taxonomy: Taxonomy) -> None:
        """Raise unless this set names exactly the taxonomy's classes, once each, in its order."""
        if self.class_names == taxonomy.class_names:
            return
        missing = [name for name in taxonomy.class_names if name not in self.class_names]
        extra = [name for name in self.class_names if name not in taxonomy.class_names]
        if missing or extra:
            detail = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"not in the taxonomy: {', '.join(extra)}" if extra else "",
                )
                if part
            )
        else:
            detail = "the classes are in a different order than the taxonomy's label ids"
        raise PromptKitError(f"prompt set for {self.dataset!r} does not match taxonomy {taxonomy.name!r}: {detail}")

    def content_hash(self) -> str:
        """SHA-256 of what reaches an encoder (style, class names, texts): stable across re-saves."""
        payload = {
            "style": self.style,
            "classes": [[entry.name, entry.texts] for entry in self.classes],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


class _FlowListDumper(yaml.SafeDumper):
    """Short lists of words on one line, everything else as blocks: easy to read and to diff."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(isinstance(item, str) and len(item) < 40 for item in data) and len(data) > 0
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_FlowListDumper.add_representer(list, _represent_list)


def prompt_set_to_yaml(prompt_set: PromptSet) -> str:
    """The YAML text of a set, keys in schema order."""
    data = prompt_set.model_dump(mode="json", exclude_none=True)
    for entry in data["classes"]:
        for key in ("words", "candidates"):
            if not entry[key]:
                del entry[key]
    return yaml.dump(data, Dumper=_FlowListDumper, sort_keys=False, allow_unicode=True, width=100)


def save_prompt_set(prompt_set: PromptSet, path: str | Path) -> Path:
    """Write a set atomically (temporary file, then rename)."""
    return atomic_write_text(path, prompt_set_to_yaml(prompt_set))


def load_prompt_set(path: str | Path) -> PromptSet:
    """Read and validate a PromptSet file."""
    return load_model(PromptSet, path, "prompt set")
