"""What a prompt style is: the one object that knows how a class is named in that style.

Everything that differs between styles lives on the style (its templates, what it asks an LLM,
what an answer and a saved set must hold, how words become prompt texts), so the rest of the
package asks the style and never compares its name. A new style is a subclass in its own module,
registered with :func:`prompt_kit.styles.register_style`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from prompt_kit.errors import InvalidAnswer

if TYPE_CHECKING:
    from prompt_kit.concepts import Concept
    from prompt_kit.prompt_set import ClassPrompt
    from prompt_kit.taxonomy import ClassInfo, Taxonomy

WORDS_PER_PROMPT = 4
"""Words that enter a word-list prompt (``bag_of_words``, ``orthogonal``)."""

MIN_CANDIDATES = 8
"""Smallest candidate pool per class a measured word selection chooses from."""

Answer = Mapping[str, Mapping[str, Any]]
"""Class name -> {"sentence": str, "words": [...], optional "candidates": [...]} (the LLM's shape)."""

RenderPrompt = Callable[[str, Sequence[str], "str | None"], str]
"""(class name, words, sentence) -> the prompt text the style's template renders."""

RenderWords = Callable[[str, Sequence[str]], str]
WordSelector = Callable[["Taxonomy", dict[str, list[str]], RenderWords], tuple[dict[str, list[str]], dict[str, Any]]]
"""(taxonomy, candidate pools, render) -> (chosen words per class, a report for provenance)."""


def answer_sentence(name: str, entry: Mapping[str, Any], *, required: bool) -> str:
    """The answer's sentence for one class, stripped; an empty one is an error where ``required``."""
    sentence = entry.get("sentence", "")
    if not isinstance(sentence, str) or (required and not sentence.strip()):
        raise InvalidAnswer(f"class {name!r}: 'sentence' must be a non-empty string")
    return sentence.strip()


def answer_words(name: str, entry: Mapping[str, Any]) -> list[str]:
    """The answer's words for one class: a list of non-empty strings, stripped."""
    words = entry.get("words", [])
    if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
        raise InvalidAnswer(f"class {name!r}: 'words' must be a list of strings")
    words = [word.strip() for word in words]
    if any(not word for word in words):
        raise InvalidAnswer(f"class {name!r}: words must not be empty")
    return words


def unique_texts(items: Sequence[str]) -> list[str]:
    """Items in order, stripped, without blanks or case-insensitive repeats."""
    seen: set[str] = set()
    result = []
    for item in items:
        key = item.strip().lower()
        if key and key not in seen:
            seen.add(key)
            result.append(item.strip())
    return result


class PromptStyle:
    """One way of naming a class to a text encoder.

    Subclasses set the class attributes and override the hooks whose default does not fit; the
    defaults describe a style that renders each class from the taxonomy alone (``label``).
    """

    name: ClassVar[str]
    """The key: file names (``<name>.yaml``), ``--style``, config lists, a set's ``style`` field."""
    title: ClassVar[str]
    """How tables and help texts say it."""
    summary: ClassVar[str]
    """One line: what the prompt holds."""
    prompt_template: ClassVar[str]
    """Jinja source of ``<name>.j2``: variables name, label, sentence, words."""
    request_template: ClassVar[str | None] = None
    """Jinja source of ``llm/<name>.j2``, the request to an LLM; None: the style needs no LLM."""
    uses_lexicon: ClassVar[bool] = False
    """Whether curated sets read the concept lexicon (``prompts/concepts.yaml``)."""
    selects_words: ClassVar[bool] = False
    """Whether the prompt's words are chosen from a candidate pool by measurement."""

    def __repr__(self) -> str:
        return f"<prompt style {self.name!r}>"

    # -- templates ---------------------------------------------------------------------------
    @property
    def prompt_template_name(self) -> str:
        return f"{self.name}.j2"

    @property
    def request_template_name(self) -> str | None:
        return None if self.request_template is None else f"llm/{self.name}.j2"

    def templates(self) -> dict[str, str]:
        """Template file name -> Jinja source, as the template loader serves them."""
        sources = {self.prompt_template_name: self.prompt_template}
        if self.request_template is not None:
            sources[f"llm/{self.name}.j2"] = self.request_template
        return sources

    # -- curated words -----------------------------------------------------------------------
    def curated_entry(self, concept: Concept) -> dict[str, Any]:
        """One class's curated answer (the LLM answer's shape) from its lexicon concept."""
        return {}

    # -- LLM answers -------------------------------------------------------------------------
    def check_answer_entry(self, name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        """A clean ``{"sentence", "words"}`` for one class, or :class:`InvalidAnswer`."""
        return {"sentence": answer_sentence(name, entry, required=False), "words": []}

    def check_answer(self, clean: Mapping[str, Mapping[str, Any]], taxonomy: Taxonomy) -> None:
        """Rules across classes of a whole answer (each entry already checked)."""

    # -- building a set ----------------------------------------------------------------------
    def uses_candidates(self) -> bool:
        """Whether a set records each class's candidate pool (the words its words came from)."""
        return False

    def choose_words(
        self,
        taxonomy: Taxonomy,
        answers: Sequence[Answer],
        pools: dict[str, list[str]],
        render: RenderWords,
        select_words: WordSelector | None,
    ) -> tuple[dict[str, list[str]], dict[str, Any] | None]:
        """The words each class's prompt shows, and a selection report for provenance (or None)."""
        return {}, None

    def texts(
        self,
        info: ClassInfo,
        answers: Sequence[Answer],
        words: list[str],
        sentences: list[str],
        render: RenderPrompt,
    ) -> list[str]:
        """The prompt texts of one class (several are ensembled by the encoder)."""
        return [render(info.name, words, sentences[0] or None)]

    # -- saved sets --------------------------------------------------------------------------
    def check_prompt(self, entry: ClassPrompt) -> None:
        """Raise ValueError if one class of a saved set lacks what the style needs."""

    def check_prompts(self, entries: Sequence[ClassPrompt]) -> None:
        """Rules across the classes of a saved set."""


class WordListStyle(PromptStyle):
    """A style whose prompt shows ``WORDS_PER_PROMPT`` words per class, kept with their pool."""

    uses_lexicon = True

    def uses_candidates(self) -> bool:
        return True

    def check_prompt(self, entry: ClassPrompt) -> None:
        if len(entry.words) != WORDS_PER_PROMPT:
            raise ValueError(
                f"class {entry.name!r} has {len(entry.words)} words; "
                f"style {self.name!r} needs exactly {WORDS_PER_PROMPT}"
            )
