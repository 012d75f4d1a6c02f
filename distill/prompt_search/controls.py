"""The controls every prompt search reports, scored exactly like its trials.

A search that does not carry its controls proves nothing (WaffleCLIP: random words can match LLM
descriptors in CLIP classification). Each control is a set of class vectors ``[C, D]`` for the
quick teacher: every registered style's shipped set (``label`` is the baseline), random words
(the bag-of-words style's word counts, words drawn from ``prompts/random_words.txt`` with a fixed
seed, then the label), random unit vectors in place of the text embeddings (do semantics matter at
all?), and class vectors learned with the head from the label vectors (the upper reference, as
CoOp learns its context).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from distill.evaluation.seed_statistics import Difference, mean_std, t_interval
from prompt_kit.embedding_cache import EmbeddingCache
from prompt_kit.encoders import TextEncoder, class_vectors
from prompt_kit.errors import PromptKitError
from prompt_kit.prompt_set import load_prompt_set
from prompt_kit.resources import prompts_dir
from prompt_kit.styles import style_names
from prompt_kit.taxonomy import Taxonomy

RANDOM_WORDS = "random_words"
RANDOM_VECTORS = "random_vectors"
LEARNED = "learned"
BASELINE = "label"


def random_word_list() -> list[str]:
    """The shipped word list the random-words control draws from (no word describes a street)."""
    lines = (prompts_dir() / "random_words.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@dataclass(frozen=True)
class Control:
    """One control: its class vectors, and whether the head learns them."""

    name: str
    vectors: torch.Tensor
    learned: bool = False


def shipped_sets(dataset: str, taxonomy: Taxonomy) -> dict[str, list[list[str]]]:
    """Every registered style's shipped set for ``dataset`` as texts per class, checked against ``taxonomy``."""
    folder = prompts_dir() / dataset
    sets = {}
    for style in style_names():
        path = folder / f"{style}.yaml"
        if path.is_file():
            prompt_set = load_prompt_set(path)
            prompt_set.check_against(taxonomy)
            sets[style] = [entry.texts for entry in prompt_set.classes]
    if BASELINE not in sets:
        raise PromptKitError(f"no shipped label set in {folder}: the controls compare with {folder / 'label.yaml'}")
    return sets


def random_word_texts(dataset: str, taxonomy: Taxonomy, seed: int = 0) -> list[list[str]]:
    """Per class, the bag-of-words set's word count of random words, then the class label."""
    words = random_word_list()
    rng = np.random.default_rng([seed, 7])
    counts = {}
    bag = prompts_dir() / dataset / "bag_of_words.yaml"
    if bag.is_file():
        counts = {entry.name: len(entry.words) for entry in load_prompt_set(bag).classes}
    texts = []
    for info in taxonomy.classes:
        chosen = rng.choice(len(words), size=counts.get(info.name, 4), replace=False)
        texts.append([", ".join([*(words[i] for i in chosen), info.label])])
    return texts


def build_controls(
    dataset: str, taxonomy: Taxonomy, encoder: TextEncoder, cache: EmbeddingCache | None = None, seed: int = 0
) -> list[Control]:
    """The shipped styles, random words, random unit vectors and learned vectors, in that order."""
    sets = shipped_sets(dataset, taxonomy)
    controls = [Control(name, class_vectors(texts, encoder, cache)) for name, texts in sets.items()]
    label = next(control.vectors for control in controls if control.name == BASELINE)
    controls.append(Control(RANDOM_WORDS, class_vectors(random_word_texts(dataset, taxonomy, seed), encoder, cache)))
    generator = torch.Generator().manual_seed(seed)
    controls.append(Control(RANDOM_VECTORS, F.normalize(torch.randn(label.shape, generator=generator), dim=-1)))
    controls.append(Control(LEARNED, label, learned=True))
    return controls


@dataclass(frozen=True)
class ControlScore:
    name: str
    seed: int
    miou: float


def control_table(scores: Sequence[ControlScore], baseline: str = BASELINE) -> list[dict[str, object]]:
    """One row per control: mean ± sd over seeds, and the paired difference from ``baseline`` with its interval."""
    by_name: dict[str, dict[int, float]] = {}
    for score in scores:
        by_name.setdefault(score.name, {})[score.seed] = score.miou
    if baseline not in by_name:
        raise ValueError(f"no {baseline!r} scores to compare with")
    rows = []
    for name, by_seed in by_name.items():
        mean, sd = mean_std(list(by_seed.values()))
        row: dict[str, object] = {"control": name, "miou": mean, "sd": sd, "seeds": len(by_seed)}
        if name != baseline:
            shared = sorted(set(by_seed) & set(by_name[baseline]))
            difference: Difference = t_interval([by_seed[s] - by_name[baseline][s] for s in shared], "seed")
            row.update(
                difference=difference.mean, low=difference.low, high=difference.high,
                told_from_noise=difference.distinguishable,
            )  # fmt: skip
        rows.append(row)
    return rows


__all__ = [
    "Control",
    "ControlScore",
    "build_controls",
    "control_table",
    "random_word_list",
    "random_word_texts",
    "shipped_sets",
]
