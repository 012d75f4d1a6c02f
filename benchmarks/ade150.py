"""ADE20K-sized test material for the benchmarks: its 150 class names, candidate pools, prompt sets."""

from __future__ import annotations

import random
import re
from pathlib import Path

import torch

ADE20K_CLASSES = """wall building sky floor tree ceiling road bed windowpane grass cabinet sidewalk person earth door
table mountain plant curtain chair car water painting sofa shelf house sea mirror rug field armchair seat fence desk
rock wardrobe lamp bathtub railing cushion base box column signboard chest_of_drawers counter sand sink skyscraper
fireplace refrigerator grandstand path stairs runway case pool_table pillow screen_door stairway river bridge bookcase
blind coffee_table toilet flower book hill bench countertop stove palm kitchen_island computer swivel_chair boat bar
arcade_machine hovel bus towel light truck tower chandelier awning streetlight booth television airplane dirt_track
apparel pole land bannister escalator ottoman bottle buffet poster stage van ship fountain conveyer_belt canopy washer
plaything swimming_pool stool barrel basket waterfall tent bag minibike cradle oven ball food step tank trade_name
microwave pot animal bicycle lake dishwasher screen blanket sculpture hood sconce vase traffic_light tray ashcan fan
pier crt_screen plate monitor bulletin_board shower radiator glass clock flag""".split()  # noqa: SIM905
LABELS = [name.replace("_", " ") for name in ADE20K_CLASSES]
assert len(LABELS) == 150


def vocabulary_words(tokenizer_folder: Path, count: int, seed: int = 0) -> list[str]:
    """Whole alphabetic words (>= 4 letters) from a WordPiece vocabulary, a seeded sample."""
    words = [
        line.strip()
        for line in (tokenizer_folder / "vocab.txt").read_text().splitlines()
        if re.fullmatch(r"[a-z]{4,}", line.strip())
    ]
    words = sorted(set(words) - set(LABELS))
    return random.Random(seed).sample(words, count)


def candidate_pools(encoder, per_class: int = 20, vocabulary: int = 4000) -> dict[str, list[str]]:
    """For each class the ``per_class`` vocabulary words most similar to its label, unique to it.

    Words are assigned to the label they are closest to, so pools are relevant and disjoint, as a
    good LLM answer would be; classes with too few such words borrow their next-closest words.
    """
    words = vocabulary_words(encoder.folder, vocabulary)
    word_vectors = encoder.pooled(words)
    label_vectors = encoder.pooled(LABELS)
    sim = word_vectors @ label_vectors.T  # [W, C]
    owner = sim.argmax(dim=1)
    pools: dict[str, list[str]] = {}
    taken: set[int] = set()
    for c, name in enumerate(ADE20K_CLASSES):
        order = torch.argsort(sim[:, c], descending=True).tolist()
        own = [w for w in order if int(owner[w]) == c and w not in taken][:per_class]
        rest = [w for w in order if w not in taken and w not in own][: per_class - len(own)]
        chosen = own + rest
        taken.update(chosen)
        pools[name] = [words[w] for w in chosen]
    return pools
