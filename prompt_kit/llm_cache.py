"""A content-addressed cache of valid LLM answers, so a prompt set can be rebuilt offline.

The key is a hash of everything that changes an answer (base URL, model, messages, sampling
parameters, sample index, schema version). Only validated answers are stored; the API key never is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import platformdirs

from prompt_kit.files import atomic_write_text

logger = logging.getLogger(__name__)

CACHE_SCHEMA_VERSION = 1


def default_cache_dir() -> Path:
    """``<user cache dir>/promptkit/llm`` (for example ``~/.cache/promptkit/llm`` on Linux)."""
    return Path(platformdirs.user_cache_dir("promptkit")) / "llm"


def answer_cache_key(request: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a request description (see module docstring)."""
    payload = {"cache_schema": CACHE_SCHEMA_VERSION, **request}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


class AnswerCache:
    """One JSON file per answer under ``root``, sharded by the first two hex digits of the key."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            return record
        except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            logger.warning("dropping a damaged LLM-cache entry %s (%s): the answer is asked for again", path, exc)
            path.unlink(missing_ok=True)
            return None

    def put(self, key: str, record: dict[str, Any]) -> Path:
        return atomic_write_text(self._path(key), json.dumps(record, indent=1, sort_keys=True))
