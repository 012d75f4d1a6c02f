"""The shipped prompt sets are exactly what `promptkit generate` makes from the concept lexicon."""

from __future__ import annotations

import pytest

from cli.promptkit_cli import promptkit
from prompt_kit import load_prompt_set, load_taxonomy
from prompt_kit.concepts import load_lexicon
from prompt_kit.resources import prompts_dir
from prompt_kit.styles import MIN_CANDIDATES, get_style, style_names

DATASETS = ["camvid", "kitti11", "cityscapes"]
STYLES = style_names()


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("style", STYLES)
def test_shipped_set_is_valid_and_matches_its_taxonomy(dataset, style):
    prompt_set = load_prompt_set(prompts_dir() / dataset / f"{style}.yaml")
    prompt_set.check_against(load_taxonomy(dataset))
    assert prompt_set.style == style
    if get_style(style).uses_candidates():
        assert all(len(entry.candidates) >= MIN_CANDIDATES for entry in prompt_set.classes)


def test_lexicon_concept_words_are_unique_across_concepts():
    owners: dict[str, str] = {}
    for key, concept in load_lexicon().concepts.items():
        for word in concept.concepts:
            assert owners.setdefault(word, key) == key, f"{word!r} in {owners[word]} and {key}"


@pytest.mark.slow
@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("style", STYLES)
def test_shipped_set_is_reproduced_by_generate(runner, tmp_path, dataset, style):
    out = tmp_path / "set.yaml"
    result = runner.invoke(promptkit, ["generate", "--dataset", dataset, "--style", style, "--out", str(out)])
    assert result.exit_code == 0, result.output
    made, shipped = load_prompt_set(out), load_prompt_set(prompts_dir() / dataset / f"{style}.yaml")
    assert made.classes == shipped.classes
    made.provenance.created = shipped.provenance.created
    assert made.provenance == shipped.provenance
