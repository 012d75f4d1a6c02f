"""Which taxonomy a reader uses: the caller's or the reader's built-in one, checked to agree."""

from __future__ import annotations

from prompt_kit.errors import PromptKitError
from prompt_kit.taxonomy import Taxonomy, load_taxonomy


def resolve_taxonomy(taxonomy: Taxonomy | str | None) -> Taxonomy | None:
    """A ``Taxonomy`` from an object, a built-in name or a file path (None stays None)."""
    if taxonomy is None or isinstance(taxonomy, Taxonomy):
        return taxonomy
    return load_taxonomy(taxonomy)


def require_classes(taxonomy: Taxonomy | None, expected: str, reader: str) -> Taxonomy:
    """The built-in taxonomy ``expected``, or the caller's if it has the same classes and ignore id.

    A caller may bring a copy with its own prompt labels or colours; what it may not change is
    what the label files mean (class order and ignore index).
    """
    builtin = load_taxonomy(expected)
    if taxonomy is None:
        return builtin
    if taxonomy.class_names != builtin.class_names or taxonomy.ignore_index != builtin.ignore_index:
        raise PromptKitError(
            f"{reader} labels use the {expected} taxonomy ({builtin.num_classes} classes, ignore "
            f"{builtin.ignore_index}); taxonomy {taxonomy.name!r} has different classes or ignore index"
        )
    return taxonomy
