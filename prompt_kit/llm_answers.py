"""Parse and validate an LLM's answer: one JSON object keyed by the taxonomy's class names."""

from __future__ import annotations

import json
import re

from prompt_kit.errors import InvalidAnswer
from prompt_kit.styles import PromptStyle, get_style
from prompt_kit.taxonomy import Taxonomy

__all__ = ["InvalidAnswer", "parse_json_object", "validate_answer"]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class _RepeatedKey(Exception):
    pass


def _object_without_repeats(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object; a key given twice is an error (json keeps the last silently: a class answered twice)."""
    value = {}
    for key, item in pairs:
        if key in value:
            raise _RepeatedKey(key)
        value[key] = item
    return value


def parse_json_object(text: str) -> dict:
    """The JSON object in ``text``: the whole text, a fenced code block, or the outermost braces."""
    candidates = [text.strip()]
    candidates += [match.strip() for match in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate, object_pairs_hook=_object_without_repeats)
        except _RepeatedKey as exc:
            raise InvalidAnswer(f"the key {exc.args[0]!r} appears more than once in the answer") from None
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    raise InvalidAnswer("the answer is not one complete JSON object (it may be truncated)")


def validate_answer(raw: dict, taxonomy: Taxonomy, style: str | PromptStyle) -> dict[str, dict]:
    """Check that every class appears once with what the style needs; return a clean copy.

    Keys match the taxonomy's class names exactly (case-insensitive, surrounding spaces ignored),
    so answers that rename a class are rejected, not guessed at; what each entry must hold (a
    sentence, exactly 4 words, 8 or more candidates unique across classes) is the style's rule.
    """
    style = get_style(style)
    by_key = {str(key).strip().lower(): value for key, value in raw.items()}
    expected = {name.lower(): name for name in taxonomy.class_names}
    missing = [name for key, name in expected.items() if key not in by_key]
    if missing:
        raise InvalidAnswer(f"classes missing from the answer: {', '.join(missing)}")
    extra = [key for key in by_key if key not in expected]
    if extra:
        raise InvalidAnswer(f"keys that are not classes of the list: {', '.join(extra)}")
    if len(by_key) != len(raw):
        raise InvalidAnswer("a class appears more than once")

    clean: dict[str, dict] = {}
    for key, name in expected.items():
        entry = by_key[key]
        if not isinstance(entry, dict):
            raise InvalidAnswer(f"class {name!r}: expected an object with 'sentence' and 'words'")
        clean[name] = style.check_answer_entry(name, entry)
    style.check_answer(clean, taxonomy)
    return clean
