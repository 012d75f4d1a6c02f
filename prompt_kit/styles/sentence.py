"""``sentence``: one sentence that describes how the class looks; several LLM samples are ensembled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prompt_kit.styles.base import Answer, PromptStyle, RenderPrompt, answer_sentence


class SentenceStyle(PromptStyle):
    name = "sentence"
    title = "sentence"
    summary = "one describing sentence"
    uses_lexicon = True
    prompt_template = (
        "{#- sentence: one sentence that describes how the class looks in a street scene. -#}\n{{ sentence }}\n"
    )
    request_template = """\
The dataset {{ dataset }} has these {{ classes | length }} classes of street-scene pixels:
{% for c in classes %}- {{ c.name }} ({{ c.label }})
{% endfor %}
For every class write one sentence (8 to 20 words) that describes how that class looks in a photo taken from a car: surface, shape, colour, where it appears in the image.

Answer with one JSON object keyed by the class names exactly as written above, in the same order:
{"{{ classes[0].name }}": {"sentence": "..."}, ...}
Every class exactly once, no other keys, no text outside the JSON.
"""

    def curated_entry(self, concept) -> dict[str, Any]:
        return {"sentence": concept.sentence}

    def check_answer_entry(self, name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        return {"sentence": answer_sentence(name, entry, required=True), "words": []}

    def texts(self, info, answers: Sequence[Answer], words, sentences: list[str], render: RenderPrompt) -> list[str]:
        return [render(info.name, [], sentence) for sentence in sentences if sentence]

    def check_prompt(self, entry) -> None:
        if not (entry.sentence or "").strip():
            raise ValueError(f"class {entry.name!r} has no sentence (style 'sentence' needs one)")


STYLE = SentenceStyle()
