"""``bag_of_words``: four words that describe how the class looks, then the label; samples are ensembled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prompt_kit.errors import InvalidAnswer
from prompt_kit.styles.base import (
    WORDS_PER_PROMPT,
    Answer,
    RenderPrompt,
    WordListStyle,
    answer_sentence,
    answer_words,
)


class BagOfWordsStyle(WordListStyle):
    name = "bag_of_words"
    title = "bag of words"
    summary = f"{WORDS_PER_PROMPT} describing words + the label"
    prompt_template = (
        '{#- bag_of_words: four describing words, then the label. -#}\n{{ words | join(", ") }}, {{ label }}\n'
    )
    request_template = """\
The dataset {{ dataset }} has these {{ classes | length }} classes of street-scene pixels:
{% for c in classes %}- {{ c.name }} ({{ c.label }})
{% endfor %}
For every class give exactly {{ n_words }} single words that describe how it looks in a photo taken from a car (colour, texture, shape, material), and one describing sentence.

Answer with one JSON object keyed by the class names exactly as written above, in the same order:
{"{{ classes[0].name }}": {"sentence": "...", "words": [{% for i in range(n_words) %}"word{{ i + 1 }}"{{ ", " if not loop.last }}{% endfor %}]}, ...}
Every class exactly once, exactly {{ n_words }} non-empty words each, no other keys, no text outside the JSON.
"""

    def curated_entry(self, concept) -> dict[str, Any]:
        return {
            "sentence": concept.sentence,
            "words": list(concept.describing[:WORDS_PER_PROMPT]),
            "candidates": list(concept.describing),
        }

    def check_answer_entry(self, name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        sentence = answer_sentence(name, entry, required=False)
        words = answer_words(name, entry)
        if len(words) != WORDS_PER_PROMPT:
            raise InvalidAnswer(f"class {name!r}: give exactly {WORDS_PER_PROMPT} words, not {len(words)}")
        return {"sentence": sentence, "words": words}

    def choose_words(self, taxonomy, answers: Sequence[Answer], pools, render, select_words):
        """The first answer's words: the other samples enter as texts of their own."""
        return {name: list(answers[0][name]["words"][:WORDS_PER_PROMPT]) for name in taxonomy.class_names}, None

    def texts(self, info, answers: Sequence[Answer], words, sentences, render: RenderPrompt) -> list[str]:
        return [render(info.name, answer[info.name]["words"][:WORDS_PER_PROMPT], None) for answer in answers]


STYLE = BagOfWordsStyle()
