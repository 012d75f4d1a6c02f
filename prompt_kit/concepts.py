"""The hand-written concept lexicon (``prompts/concepts.yaml``) behind the curated prompt sets."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from prompt_kit.errors import PromptKitError
from prompt_kit.resources import prompts_dir
from prompt_kit.styles import MIN_CANDIDATES, PromptStyle, get_style
from prompt_kit.taxonomy import ClassInfo, Taxonomy
from prompt_kit.yaml_files import load_model


class Concept(BaseModel):
    """Curated words for one kind of thing, found by any of its ``aliases``."""

    model_config = ConfigDict(extra="forbid")

    aliases: list[str] = Field(min_length=1)
    sentence: str = Field(min_length=1)
    describing: list[str] = Field(min_length=MIN_CANDIDATES)
    concepts: list[str] = Field(min_length=MIN_CANDIDATES)


class Lexicon(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    concepts: dict[str, Concept]

    def find(self, info: ClassInfo) -> Concept | None:
        """The concept whose aliases contain the class label or name (case-insensitive)."""
        keys = {info.label.strip().lower(), info.name.strip().lower()}
        for concept in self.concepts.values():
            if keys & {alias.lower() for alias in concept.aliases}:
                return concept
        return None


@lru_cache(maxsize=4)
def load_lexicon(path: str | None = None) -> Lexicon:
    """The shipped lexicon, or the one at ``path``."""
    return load_model(Lexicon, Path(path) if path else prompts_dir() / "concepts.yaml", "concept lexicon")


def curated_answer(taxonomy: Taxonomy, style: str | PromptStyle) -> dict[str, dict]:
    """The curated words for every class, in the same shape an LLM answer has (see each style's
    ``curated_entry``); a style that needs no lexicon gets an empty entry per class."""
    style = get_style(style)
    if not style.uses_lexicon:
        return {name: {} for name in taxonomy.class_names}
    lexicon = load_lexicon()
    answer: dict[str, dict] = {}
    for info in taxonomy.classes:
        concept = lexicon.find(info)
        if concept is None:
            raise PromptKitError(
                f"no curated words for class {info.name!r} of {taxonomy.name!r}: generate with an LLM "
                "(--llm MODEL) or add the class to prompts/concepts.yaml"
            )
        answer[info.name] = style.curated_entry(concept)
    return answer
