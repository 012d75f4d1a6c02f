from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prompt_kit import load_prompt_set, load_taxonomy
from prompt_kit.encoders import create_encoder, encode_prompt_set
from prompt_kit.orthogonal_selection import SelectionSettings, objective, select_orthogonal_words, word_margins
from prompt_kit.orthogonality import cos_sim, max_offdiag
from prompt_kit.resources import prompts_dir


def toy_problem():
    """Three classes in 3-D; each pool has words near its own axis and words leaning elsewhere."""
    axes = {"a": [1.0, 0, 0], "b": [0, 1.0, 0], "c": [0, 0, 1.0]}
    vectors = {name: torch.tensor(axis) for name, axis in axes.items()}
    pools = {}
    for k, name in enumerate(axes):
        other = list(axes)[(k + 1) % 3]
        pool = []
        for i in range(6):  # near the own axis, more or less leaning to the next class
            lean = 0.1 * i
            vectors[f"{name}{i}"] = torch.tensor(axes[name]) + lean * torch.tensor(axes[other])
            pool.append(f"{name}{i}")
        vectors[f"{name}_traitor"] = torch.tensor(axes[other]) * 1.0 + 0.2 * torch.tensor(axes[name])
        pools[name] = [f"{name}5", f"{name}_traitor", f"{name}4", f"{name}3", *pool[:3]]
    return vectors, pools


def toy_embed(vectors):
    def embed(texts):
        rows = []
        for text in texts:  # a prompt "w1 w2 w3 w4 label" embeds as the mean of its parts
            rows.append(torch.stack([vectors[part] for part in text.split()]).mean(0))
        return F.normalize(torch.stack(rows), dim=-1)

    return embed


def render(name, words):
    return " ".join([*words, name])


def test_selection_finds_the_words_that_lean_least_and_drops_traitors():
    vectors, pools = toy_problem()
    result = select_orthogonal_words(["a", "b", "c"], ["a", "b", "c"], pools, render, toy_embed(vectors))
    for name, words in result.chosen.items():
        assert sorted(words) == [f"{name}0", f"{name}1", f"{name}2", f"{name}3"]
    assert result.report["after"]["max_offdiag"] < result.report["before"]["max_offdiag"]
    assert all("traitor" in words[0] for words in result.report["rejected_words"].values())


def test_selection_is_deterministic_and_never_worse_than_the_given_order():
    vectors, pools = toy_problem()
    embed = toy_embed(vectors)
    one = select_orthogonal_words(["a", "b", "c"], ["a", "b", "c"], pools, render, embed, SelectionSettings(seed=3))
    two = select_orthogonal_words(["a", "b", "c"], ["a", "b", "c"], pools, render, embed, SelectionSettings(seed=3))
    assert one.chosen == two.chosen and one.report == two.report
    assert one.report["after"]["max_offdiag"] <= one.report["before"]["max_offdiag"]


def test_word_margins_rule():
    labels = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    words = F.normalize(torch.tensor([[1.0, 0.2], [0.3, 1.0]]), dim=-1)
    margins = word_margins(words, labels, owner=0)
    assert margins[0] > 0 > margins[1]


def test_objective_is_max_then_mean():
    vectors = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), dim=-1)
    maximum, mean = objective(vectors)
    assert maximum == pytest.approx(2**-0.5, abs=1e-6)
    assert mean == pytest.approx((2 * 2**-0.5) * 2 / 6, abs=1e-6)


@pytest.mark.parametrize("dataset", ["camvid", "kitti11", "cityscapes"])
def test_shipped_orthogonal_sets_beat_bag_of_words(dataset):
    encoder = create_encoder("minilm")
    scores = {}
    for style in ("bag_of_words", "orthogonal", "label"):
        prompt_set = load_prompt_set(prompts_dir() / dataset / f"{style}.yaml")
        prompt_set.check_against(load_taxonomy(dataset))
        pooled = encode_prompt_set(prompt_set, encoder).pooled
        scores[style] = max_offdiag(cos_sim(pooled, pooled))
    assert scores["orthogonal"] < scores["bag_of_words"]
    assert scores["orthogonal"] < scores["label"]
    selection = load_prompt_set(prompts_dir() / dataset / "orthogonal.yaml").provenance.selection
    assert selection["encoder"] == "minilm"
    assert selection["after"]["max_offdiag"] == pytest.approx(scores["orthogonal"], abs=1e-3)


def test_camvid_orthogonal_is_the_first_style_below_0_55():
    encoder = create_encoder("minilm")
    prompt_set = load_prompt_set(prompts_dir() / "camvid" / "orthogonal.yaml")
    pooled = encode_prompt_set(prompt_set, encoder).pooled
    assert max_offdiag(cos_sim(pooled, pooled)) < 0.55
