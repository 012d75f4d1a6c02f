"""The style registry: name -> :class:`PromptStyle`, the built-in four first, then plugins.

A style outside this package registers itself with :func:`register_style` when its module is
imported, or is found through the ``promptkit.styles`` entry point group of an installed package
(the entry names a style object, a style class or a module with a ``STYLE``).
"""

from __future__ import annotations

import logging
import re
from importlib import metadata
from types import ModuleType

from prompt_kit.errors import PromptKitError
from prompt_kit.styles.base import PromptStyle

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "promptkit.styles"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_STYLES: dict[str, PromptStyle] = {}
_plugins_loaded = False


def _as_style(value: object) -> PromptStyle:
    if isinstance(value, ModuleType):
        value = getattr(value, "STYLE", None)
    if isinstance(value, type) and issubclass(value, PromptStyle):
        value = value()
    if not isinstance(value, PromptStyle):
        raise TypeError(f"expected a PromptStyle (or its class, or a module with STYLE), got {type(value).__name__}")
    return value


def register_style(style: PromptStyle | type[PromptStyle] | ModuleType, *, replace: bool = False) -> PromptStyle:
    """Add a style to the registry (``replace`` allows a name already taken); returns the style."""
    style = _as_style(style)
    name = getattr(style, "name", "")
    if not isinstance(name, str) or not _NAME.match(name):
        raise PromptKitError(f"style name {name!r} must be lower-case letters, digits and underscores")
    for attribute in ("title", "summary", "prompt_template"):
        if not isinstance(getattr(style, attribute, None), str):
            raise PromptKitError(f"style {name!r} has no {attribute} (a string)")
    if name in _STYLES and not replace and _STYLES[name] is not style:
        raise PromptKitError(f"a style named {name!r} is already registered: pick another name or pass replace=True")
    _STYLES[name] = style
    return style


def unregister_style(name: str) -> None:
    """Remove a style (a test's temporary style, a plugin being replaced)."""
    _STYLES.pop(name, None)


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            register_style(entry.load())
        except Exception as exc:  # one broken plugin must not take every command down
            logger.warning("prompt style plugin %r was not loaded: %s: %s", entry.name, type(exc).__name__, exc)


def registered_styles() -> tuple[PromptStyle, ...]:
    """Every registered style, the built-in four first (label, sentence, bag_of_words, orthogonal)."""
    _load_plugins()
    return tuple(_STYLES.values())


def style_names() -> tuple[str, ...]:
    """The names of :func:`registered_styles`, in the same order."""
    return tuple(style.name for style in registered_styles())


def get_style(style: str | PromptStyle) -> PromptStyle:
    """The style named ``style`` (a style object is returned as it is); unknown names are one-line errors."""
    if isinstance(style, PromptStyle):
        return style
    _load_plugins()
    found = _STYLES.get(style) if isinstance(style, str) else None
    if found is None:
        raise PromptKitError(f"unknown style {style!r}: choose one of {', '.join(style_names())}")
    return found
