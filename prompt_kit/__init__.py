"""promptkit: build, measure and use class prompts for text-conditioned segmentation teachers."""

from __future__ import annotations

from prompt_kit.errors import PromptKitError
from prompt_kit.prompt_set import ClassPrompt, PromptSet, load_prompt_set, save_prompt_set
from prompt_kit.taxonomy import Taxonomy, list_taxonomies, load_taxonomy

__version__ = "0.1.0"

__all__ = [
    "ClassPrompt",
    "PromptKitError",
    "PromptSet",
    "Taxonomy",
    "__version__",
    "list_taxonomies",
    "load_prompt_set",
    "load_taxonomy",
    "save_prompt_set",
]
