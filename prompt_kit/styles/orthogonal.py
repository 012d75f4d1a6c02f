"""``orthogonal``: four concept words that belong to the class and to no other, then the label.

The words are chosen from a pool of candidates (at least ``MIN_CANDIDATES`` per class) by
measuring the prompt embeddings (``prompt_kit.orthogonal_selection``); no word may serve two
classes, and no class name may serve as a word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prompt_kit.errors import InvalidAnswer
from prompt_kit.styles.base import (
    MIN_CANDIDATES,
    WORDS_PER_PROMPT,
    Answer,
    WordListStyle,
    answer_sentence,
    answer_words,
)


def first_words(taxonomy, pools: dict[str, list[str]], render):
    """The unmeasured choice: the first words of every pool, in the order they were given."""
    return {name: pool[:WORDS_PER_PROMPT] for name, pool in pools.items()}, {"method": "first"}


class OrthogonalStyle(WordListStyle):
    name = "orthogonal"
    title = "orthogonal"
    summary = f"{WORDS_PER_PROMPT} concept words unique to the class + the label"
    selects_words = True
    prompt_template = (
        "{#- orthogonal: four concept words unique to the class, then the label. -#}\n"
        '{{ words | join(", ") }}, {{ label }}\n'
    )
    request_template = """\
The dataset {{ dataset }} has these {{ classes | length }} classes of street-scene pixels:
{% for c in classes %}- {{ c.name }} ({{ c.label }})
{% endfor %}
For every class give at least {{ n_candidates }} single concept words that belong to that class and to no other class of the list: words whose meaning points to this class and away from all the others (for a road: asphalt, lane; not grey, which a sidewalk shares). No word may appear under two classes, and no class name may appear as a word. Also give one describing sentence per class.

Answer with one JSON object keyed by the class names exactly as written above, in the same order:
{"{{ classes[0].name }}": {"sentence": "...", "words": ["...", "...", ...]}, ...}
Every class exactly once, at least {{ n_candidates }} non-empty single words each, no other keys, no text outside the JSON.
"""

    def curated_entry(self, concept) -> dict[str, Any]:
        return {"sentence": concept.sentence, "words": list(concept.concepts)}

    def check_answer_entry(self, name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        sentence = answer_sentence(name, entry, required=False)
        words = answer_words(name, entry)
        if len(set(map(str.lower, words))) < MIN_CANDIDATES:
            raise InvalidAnswer(
                f"class {name!r}: give at least {MIN_CANDIDATES} different words, not {len(set(words))}"
            )
        return {"sentence": sentence, "words": words}

    def check_answer(self, clean, taxonomy) -> None:
        owner: dict[str, str] = {}
        labels = {label.lower() for label in taxonomy.labels} | {name.lower() for name in taxonomy.class_names}
        for name, entry in clean.items():
            for word in entry["words"]:
                lowered = word.lower()
                if lowered in labels:
                    raise InvalidAnswer(f"class {name!r}: {word!r} is a class name, not a concept word")
                other = owner.setdefault(lowered, name)
                if other != name:
                    raise InvalidAnswer(f"the word {word!r} appears under both {other!r} and {name!r}")

    def choose_words(self, taxonomy, answers: Sequence[Answer], pools, render, select_words):
        return (select_words or first_words)(taxonomy, pools, render)

    def check_prompts(self, entries) -> None:
        owner: dict[str, str] = {}
        for entry in entries:
            for word in entry.words:
                other = owner.setdefault(word.lower(), entry.name)
                if other != entry.name:
                    raise ValueError(f"orthogonal word {word!r} is used by both {other!r} and {entry.name!r}")


STYLE = OrthogonalStyle()
