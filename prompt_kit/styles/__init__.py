"""Prompt styles: how each class is named to a text encoder, one module per style, one registry.

The package never compares a style's name: it asks the style (:class:`PromptStyle`). The four
built-in styles are ``label`` (the class name), ``sentence`` (one describing sentence),
``bag_of_words`` (4 describing words + the label) and ``orthogonal`` (4 concept words unique to
the class + the label). See ``prompt_kit/styles/base.py`` for what a new style provides.
"""

from __future__ import annotations

from prompt_kit.styles import bag_of_words, label, orthogonal, sentence
from prompt_kit.styles.base import MIN_CANDIDATES, WORDS_PER_PROMPT, PromptStyle, WordListStyle
from prompt_kit.styles.registry import (
    ENTRY_POINT_GROUP,
    get_style,
    register_style,
    registered_styles,
    style_names,
    unregister_style,
)

for _module in (label, sentence, bag_of_words, orthogonal):
    register_style(_module.STYLE)

__all__ = [
    "ENTRY_POINT_GROUP",
    "MIN_CANDIDATES",
    "WORDS_PER_PROMPT",
    "PromptStyle",
    "WordListStyle",
    "get_style",
    "register_style",
    "registered_styles",
    "style_names",
    "unregister_style",
]
