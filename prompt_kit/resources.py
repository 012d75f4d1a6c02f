"""Where the shipped prompt data and templates live, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_root() -> Path:
    """Folder holding ``prompts/`` and ``templates/``.

    A wheel carries them inside the package (``prompt_kit/_data``); a source checkout (and an
    editable install) has them at the repository root, next to the package.
    """
    packaged = _PACKAGE_DIR / "_data"
    if (packaged / "prompts").is_dir():
        return packaged
    return _PACKAGE_DIR.parent


def prompts_dir() -> Path:
    """The shipped ``prompts/`` folder: taxonomies, the concept lexicon and curated prompt sets."""
    return data_root() / "prompts"


def templates_dir() -> Path:
    """The shipped ``templates/`` folder (Jinja)."""
    return data_root() / "templates"
