"""Parse and validate an LLM's answer: one JSON object keyed by the taxonomy's class names."""

from __future__ import annotations

import json
import re

from prompt_kit.styles import MIN_CANDIDATES, WORDS_PER_PROMPT
from prompt_kit.taxonomy import Taxonomy


class InvalidAnswer(ValueError):
    """The answer cannot be used; the message is sent back to the LLM when we re-ask."""


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


def validate_answer(raw: dict, taxonomy: Taxonomy, style: str) -> dict[str, dict]:
    """Check that every class appears once with the words the style needs; return a clean copy.

    ``bag_of_words`` needs exactly 4 words per class, ``orthogonal`` at least 8 candidate words
    per class and no word under two classes; every style needs a non-empty ``sentence`` when it
    uses one. Keys match the taxonomy's class names exactly (case-insensitive, surrounding spaces
    ignored), so answers that rename a class are rejected, not guessed at.
    """
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
        sentence = entry.get("sentence", "")
        if not isinstance(sentence, str) or (style == "sentence" and not sentence.strip()):
            raise InvalidAnswer(f"class {name!r}: 'sentence' must be a non-empty string")
        words = entry.get("words", [])
        if style in ("bag_of_words", "orthogonal"):
            if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
                raise InvalidAnswer(f"class {name!r}: 'words' must be a list of strings")
            words = [word.strip() for word in words]
            if any(not word for word in words):
                raise InvalidAnswer(f"class {name!r}: words must not be empty")
            if style == "bag_of_words" and len(words) != WORDS_PER_PROMPT:
                raise InvalidAnswer(f"class {name!r}: give exactly {WORDS_PER_PROMPT} words, not {len(words)}")
            if style == "orthogonal" and len(set(map(str.lower, words))) < MIN_CANDIDATES:
                raise InvalidAnswer(
                    f"class {name!r}: give at least {MIN_CANDIDATES} different words, not {len(set(words))}"
                )
        else:
            words = []
        clean[name] = {"sentence": sentence.strip(), "words": words}

    if style == "orthogonal":
        owner: dict[str, str] = {}
        labels = {label.lower() for label in taxonomy.labels} | set(expected)
        for name, entry in clean.items():
            for word in entry["words"]:
                lowered = word.lower()
                if lowered in labels:
                    raise InvalidAnswer(f"class {name!r}: {word!r} is a class name, not a concept word")
                other = owner.setdefault(lowered, name)
                if other != name:
                    raise InvalidAnswer(f"the word {word!r} appears under both {other!r} and {name!r}")
    return clean
