"""What a prompt search chooses from: per class, a template and, for word prompts, words from a pool.

Per class the search picks one of three templates: the ``label`` (the shipped label set's text),
the ``sentence`` (the shipped sentence set's), or ``words``: ``WORDS_PER_PROMPT`` words drawn from
the class's pool, then the label, as the bag-of-words style renders them. A class's pool is every
curated word the shipped sets hold for it (the bag-of-words candidates and the orthogonal style's
concept words), so a trial can mix appearance words with concept words the curated sets keep apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prompt_kit.errors import PromptKitError
from prompt_kit.prompt_set import load_prompt_set
from prompt_kit.resources import prompts_dir
from prompt_kit.styles import WORDS_PER_PROMPT
from prompt_kit.styles.base import unique_texts
from prompt_kit.taxonomy import Taxonomy

TEMPLATES = ("label", "sentence", "words")


@dataclass(frozen=True)
class ClassChoices:
    """One class's options: its label text, its sentence text and its word pool."""

    name: str
    label: str
    sentence: str
    pool: tuple[str, ...]

    def text(self, template: str, words: tuple[str, ...] = ()) -> str:
        """The prompt text of one choice (``words`` only for the ``words`` template)."""
        if template == "label":
            return self.label
        if template == "sentence":
            return self.sentence
        if template == "words":
            return ", ".join([*unique_texts(words), self.label])
        raise ValueError(f"unknown template {template!r}: choose one of {', '.join(TEMPLATES)}")


def search_space(dataset: str, taxonomy: Taxonomy) -> list[ClassChoices]:
    """Each class's choices from ``dataset``'s shipped label, sentence, bag-of-words and orthogonal sets."""
    folder = prompts_dir() / dataset
    sets = {}
    for style in ("label", "sentence", "bag_of_words", "orthogonal"):
        path = folder / f"{style}.yaml"
        if not path.is_file():
            raise PromptKitError(f"a prompt search reads the shipped {style} set, and {path} is missing")
        prompt_set = load_prompt_set(path)
        prompt_set.check_against(taxonomy)
        sets[style] = {entry.name: entry for entry in prompt_set.classes}
    space = []
    for info in taxonomy.classes:
        pool = unique_texts([*sets["bag_of_words"][info.name].candidates, *sets["orthogonal"][info.name].candidates])
        if len(pool) < WORDS_PER_PROMPT:
            raise PromptKitError(f"class {info.name!r} has {len(pool)} curated words, a word prompt needs 4")
        space.append(
            ClassChoices(
                name=info.name,
                label=sets["label"][info.name].texts[0],
                sentence=sets["sentence"][info.name].texts[0],
                pool=tuple(pool),
            )
        )
    return space


def texts_of(space: list[ClassChoices], params: Mapping[str, object]) -> list[str]:
    """The text of every class for a trial's parameters (``<class>.template``, ``<class>.word<k>``)."""
    texts = []
    for choices in space:
        template = str(params[f"{choices.name}.template"])
        words = (
            tuple(str(params[f"{choices.name}.word{k}"]) for k in range(WORDS_PER_PROMPT))
            if template == "words"
            else ()
        )
        texts.append(choices.text(template, words))
    return texts


__all__ = ["TEMPLATES", "ClassChoices", "search_space", "texts_of"]
