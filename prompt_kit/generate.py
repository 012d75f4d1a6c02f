"""Turn answers (curated or from an LLM) into a validated PromptSet, rendering each class's prompt."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pydantic

from prompt_kit.errors import PromptKitError
from prompt_kit.prompt_set import ClassPrompt, LLMSource, PromptSet, Provenance
from prompt_kit.styles import WORDS_PER_PROMPT, check_style
from prompt_kit.taxonomy import Taxonomy
from prompt_kit.templates import PromptTemplates
from prompt_kit.yaml_files import describe_validation_error

Answer = Mapping[str, Mapping[str, Any]]
"""Class name -> {"sentence": str, "words": [...], optional "candidates": [...]} (the LLM's shape)."""

RenderWords = Callable[[str, Sequence[str]], str]
WordSelector = Callable[[Taxonomy, dict[str, list[str]], RenderWords], tuple[dict[str, list[str]], dict[str, Any]]]
"""(taxonomy, candidate pools, render) -> (chosen words per class, a report for provenance)."""


def _unique(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for item in items:
        key = item.strip().lower()
        if key and key not in seen:
            seen.add(key)
            result.append(item.strip())
    return result


def first_words(taxonomy: Taxonomy, pools: dict[str, list[str]], render: RenderWords):
    """The unmeasured choice: the first 4 words of every pool, in the order they were given."""
    return {name: pool[:WORDS_PER_PROMPT] for name, pool in pools.items()}, {"method": "first"}


def build_prompt_set(
    taxonomy: Taxonomy,
    style: str,
    answers: Sequence[Answer],
    templates: PromptTemplates,
    *,
    llm: LLMSource | None = None,
    select_words: WordSelector | None = None,
    version: str = "",
) -> PromptSet:
    """Build the set of ``style`` for ``taxonomy`` from one or more answers (samples).

    Several answers become several prompt texts per class (the encoder ensembles them); the
    orthogonal words are chosen from the union of all answers' candidates by ``select_words``.
    """
    check_style(style)
    if not answers:
        raise PromptKitError("no answers to build a prompt set from")
    for answer in answers:
        missing = [name for name in taxonomy.class_names if name not in answer]
        if missing:
            raise PromptKitError(f"answer has no entry for class {missing[0]!r} of {taxonomy.name!r}")

    def render(name: str, words: Sequence[str], sentence: str | None = None) -> str:
        info = taxonomy.classes[taxonomy.class_names.index(name)]
        return templates.render_prompt(style, name=name, label=info.label, sentence=sentence, words=list(words))

    chosen: dict[str, list[str]] = {}
    pools: dict[str, list[str]] = {}
    selection: dict[str, Any] | None = None
    if style in ("bag_of_words", "orthogonal"):
        for name in taxonomy.class_names:
            pool = [word for answer in answers for word in answer[name].get("candidates", answer[name]["words"])]
            pools[name] = _unique(pool)
        if style == "orthogonal":
            chooser = select_words or first_words
            chosen, selection = chooser(taxonomy, pools, lambda name, words: render(name, words))
        else:
            chosen = {name: list(answers[0][name]["words"][:WORDS_PER_PROMPT]) for name in taxonomy.class_names}

    classes = []
    for info in taxonomy.classes:
        sentences = [str(answer[info.name].get("sentence", "")).strip() for answer in answers]
        if style == "sentence":
            texts = [render(info.name, [], sentence) for sentence in sentences if sentence]
        elif style == "bag_of_words":
            texts = [render(info.name, answer[info.name]["words"][:WORDS_PER_PROMPT]) for answer in answers]
        else:
            texts = [render(info.name, chosen.get(info.name, []), sentences[0] or None)]
        classes.append(
            dict(
                name=info.name,
                label=info.label,
                sentence=sentences[0] or None,
                words=chosen.get(info.name, []),
                candidates=pools.get(info.name, []),
                texts=_unique(texts),
            )
        )
    try:
        return PromptSet(
            dataset=taxonomy.name,
            style=style,
            classes=[ClassPrompt(**entry) for entry in classes],
            provenance=Provenance(
                template=templates.info(templates.prompt_template_name(style)),
                source="llm" if llm is not None else "curated",
                llm=llm,
                selection=selection,
                promptkit_version=version,
            ),
        )
    except pydantic.ValidationError as exc:
        raise PromptKitError(f"the generated {style} set is invalid: {describe_validation_error(exc)}") from exc
