"""Turn answers (curated or from an LLM) into a validated PromptSet, rendering each class's prompt."""

from __future__ import annotations

from collections.abc import Sequence

import pydantic

from prompt_kit.errors import PromptKitError
from prompt_kit.prompt_set import ClassPrompt, LLMSource, PromptSet, Provenance
from prompt_kit.styles import PromptStyle, get_style
from prompt_kit.styles.base import Answer, WordSelector, unique_texts
from prompt_kit.taxonomy import Taxonomy
from prompt_kit.templates import PromptTemplates
from prompt_kit.yaml_files import describe_validation_error


def build_prompt_set(
    taxonomy: Taxonomy,
    style: str | PromptStyle,
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
    style = get_style(style)
    if not answers:
        raise PromptKitError("no answers to build a prompt set from")
    for answer in answers:
        missing = [name for name in taxonomy.class_names if name not in answer]
        if missing:
            raise PromptKitError(f"answer has no entry for class {missing[0]!r} of {taxonomy.name!r}")

    def render(name: str, words: Sequence[str], sentence: str | None = None) -> str:
        info = taxonomy.classes[taxonomy.class_names.index(name)]
        return templates.render_prompt(style.name, name=name, label=info.label, sentence=sentence, words=list(words))

    pools: dict[str, list[str]] = {}
    if style.uses_candidates():
        for name in taxonomy.class_names:
            entries = [answer[name] for answer in answers]
            pool = [word for entry in entries for word in entry.get("candidates", entry.get("words", []))]
            pools[name] = unique_texts(pool)
    chosen, selection = style.choose_words(
        taxonomy, answers, pools, lambda name, words: render(name, words), select_words
    )

    classes = []
    for info in taxonomy.classes:
        sentences = [str(answer[info.name].get("sentence", "")).strip() for answer in answers]
        words = chosen.get(info.name, [])
        texts = style.texts(info, answers, words, sentences, render)
        classes.append(
            dict(
                name=info.name,
                label=info.label,
                sentence=sentences[0] or None,
                words=words,
                candidates=pools.get(info.name, []),
                texts=unique_texts(texts),
            )
        )
    try:
        return PromptSet(
            dataset=taxonomy.name,
            style=style.name,
            classes=[ClassPrompt(**entry) for entry in classes],
            provenance=Provenance(
                template=templates.info(templates.prompt_template_name(style.name)),
                source="llm" if llm is not None else "curated",
                llm=llm,
                selection=selection,
                promptkit_version=version,
            ),
        )
    except pydantic.ValidationError as exc:
        raise PromptKitError(f"the generated {style.name} set is invalid: {describe_validation_error(exc)}") from exc
