"""The four prompt styles and what each needs from a class."""

from __future__ import annotations

from prompt_kit.errors import PromptKitError

STYLES: tuple[str, ...] = ("label", "sentence", "bag_of_words", "orthogonal")
"""``label``: the class name; ``sentence``: one describing sentence; ``bag_of_words``: 4 describing
words + the label; ``orthogonal``: 4 concept words unique to the class + the label."""

WORDS_PER_PROMPT = 4
"""Words that enter a ``bag_of_words`` or ``orthogonal`` prompt."""

MIN_CANDIDATES = 8
"""Smallest candidate pool per class for ``orthogonal`` (the selection chooses from it)."""

STYLES_WITH_WORDS = ("bag_of_words", "orthogonal")


def check_style(style: str) -> str:
    """Return ``style`` if it is known, else raise a one-line error listing the styles."""
    if style not in STYLES:
        raise PromptKitError(f"unknown style {style!r}: choose one of {', '.join(STYLES)}")
    return style
