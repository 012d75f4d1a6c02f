"""Prompt search: the feature bank a search computes once, and the quick teacher each trial trains."""

from __future__ import annotations

import pytest
import torch

from distill.datasets import create_dataset
from distill.prompt_search.controls import ControlScore, build_controls, control_table, random_word_texts
from distill.prompt_search.feature_bank import build_feature_bank
from distill.prompt_search.quick_teacher import QuickTeacherSettings, train_quick_teacher
from distill.prompt_search.search import SearchSettings, open_study, run_search
from distill.prompt_search.space import search_space
from prompt_kit.concepts import load_lexicon
from prompt_kit.embedding_cache import EmbeddingCache
from prompt_kit.encoders import create_encoder
from prompt_kit.styles import style_names
from teacher.feature_latent import BackboneFeatureLatent

SIZE = (32, 48)
QUICK = QuickTeacherSettings(steps=30, batch_size=8, lr=1e-2, hidden=16, eval_every=10)


@pytest.fixture(scope="module")
def backbone() -> BackboneFeatureLatent:
    torch.manual_seed(0)
    return BackboneFeatureLatent("efficientnet_lite0", stride=8, pretrained=False)


@pytest.fixture(scope="module")
def banks(backbone):
    train = create_dataset("synthetic:count=12,size=32x48", "train")
    held_out = create_dataset("synthetic:count=6,size=32x48", "val")
    return (
        build_feature_bank(train, backbone, SIZE, views=2, progress=False),
        build_feature_bank(held_out, backbone, SIZE, views=0, progress=False),
    )


def test_the_bank_holds_each_view_once_and_the_same_views_every_time(backbone, banks):
    train, held_out = banks
    assert train.features.shape == (12 * 2, backbone.channels, 4, 6) and train.labels.shape == (24, *SIZE)
    assert held_out.features.shape[0] == 6 and held_out.views == 1
    assert train.features.dtype == torch.float16
    again = build_feature_bank(
        create_dataset("synthetic:count=12,size=32x48", "train"), backbone, SIZE, 2, progress=False
    )
    assert torch.equal(again.features, train.features) and torch.equal(again.labels, train.labels)
    assert not torch.equal(train.labels[0], train.labels[1])  # two views of image 0 differ


def test_the_bank_reads_evaluation_images_whole(backbone, banks):
    held_out = banks[1]
    dataset = create_dataset("synthetic:count=6,size=32x48", "val")
    image, label = dataset[2]
    assert torch.equal(held_out.labels[2], label.long())
    with torch.no_grad():
        torch.testing.assert_close(held_out.features[2], backbone(image[None])[0].half())


def test_the_quick_teacher_is_deterministic_and_reports_each_evaluation(banks):
    train, held_out = banks
    vectors = torch.nn.functional.normalize(torch.randn(11, 24, generator=torch.Generator().manual_seed(0)), dim=1)
    reported = []
    first = train_quick_teacher(train, held_out, vectors, QUICK, seed=0, report=lambda s, m: reported.append((s, m)))
    second = train_quick_teacher(train, held_out, vectors, QUICK, seed=0)
    assert first.miou == second.miou and first.history == second.history
    assert [step for step, _ in first.history] == [10, 20, 30] and reported == first.history
    assert first.history[-1][1] == first.miou and 0 < first.miou <= 1


def test_frozen_class_vectors_decide_what_the_head_can_tell_apart(banks):
    """Two classes given one vector can never be told apart; learning the vectors can separate them."""
    train, held_out = banks
    vectors = torch.nn.functional.normalize(torch.randn(11, 24, generator=torch.Generator().manual_seed(0)), dim=1)
    present = torch.bincount(held_out.labels[held_out.labels != held_out.ignore_index], minlength=11)
    first, second = torch.argsort(present, descending=True)[:2].tolist()  # two classes the held-out images show
    tied = vectors.clone()
    tied[max(first, second)] = tied[min(first, second)]
    frozen = train_quick_teacher(train, held_out, tied, QUICK, seed=0)
    assert frozen.per_class_iou[max(first, second)] == 0.0  # argmax ties go to the lower class index
    learned = train_quick_teacher(train, held_out, tied, QUICK, seed=0, learn_class_vectors=True)
    assert learned.per_class_iou[max(first, second)] > 0.0


def test_the_controls_are_every_shipped_style_random_words_random_vectors_and_learned(tmp_path):
    taxonomy = create_dataset("synthetic:count=4,size=32x48", "train").taxonomy
    controls = build_controls("camvid", taxonomy, create_encoder("minilm"), EmbeddingCache(tmp_path))
    names = [control.name for control in controls]
    assert names == [*style_names(), "random_words", "random_vectors", "learned"]
    for control in controls:
        assert control.vectors.shape == (11, 384) and control.learned == (control.name == "learned")
        torch.testing.assert_close(control.vectors.norm(dim=1), torch.ones(11))
    by_name = {control.name: control.vectors for control in controls}
    assert torch.equal(by_name["learned"], by_name["label"])  # learned from the label vectors
    assert not torch.allclose(by_name["random_words"], by_name["label"])


def test_random_words_keep_the_word_counts_and_the_label_and_share_no_word_with_the_lexicon():
    taxonomy = create_dataset("synthetic:count=4,size=32x48", "train").taxonomy
    texts = random_word_texts("camvid", taxonomy, seed=0)
    assert texts == random_word_texts("camvid", taxonomy, seed=0) != random_word_texts("camvid", taxonomy, seed=1)
    lexicon = load_lexicon()
    curated = {word for concept in lexicon.concepts.values() for word in [*concept.describing, *concept.concepts]}
    for info, (text,) in zip(taxonomy.classes, texts, strict=True):
        *words, label = text.split(", ")
        assert label == info.label and len(words) == 4 and not set(words) & curated


def test_the_control_table_pairs_each_control_with_the_label_baseline_seed_by_seed():
    scores = [ControlScore("label", s, m) for s, m in ((0, 0.50), (1, 0.52), (2, 0.51))]
    scores += [ControlScore("sentence", s, m) for s, m in ((0, 0.53), (1, 0.55), (2, 0.54))]
    scores += [ControlScore("random_vectors", s, m) for s, m in ((0, 0.40), (1, 0.55), (2, 0.45))]
    rows = {row["control"]: row for row in control_table(scores)}
    assert rows["label"]["seeds"] == 3 and "difference" not in rows["label"]
    assert rows["sentence"]["difference"] == pytest.approx(0.03) and rows["sentence"]["told_from_noise"]
    assert rows["random_vectors"]["difference"] == pytest.approx((-0.10 + 0.03 - 0.06) / 3)
    noisy = rows["random_vectors"]
    assert not noisy["told_from_noise"] and noisy["low"] < 0 < noisy["high"]


TRIAL = QuickTeacherSettings(steps=8, batch_size=8, hidden=16, eval_every=4)
SEARCH = SearchSettings(trials=3, seed=0, quick_teacher=TRIAL)


@pytest.fixture(scope="module")
def space():
    return search_space("camvid", create_dataset("synthetic:count=4,size=32x48", "train").taxonomy)


def test_the_space_offers_each_class_its_label_sentence_and_curated_words(space):
    sky = space[0]
    assert sky.name == "Sky" and sky.text("label") == "sky" and sky.text("sentence").startswith("The open sky")
    assert sky.text("words", ("blue", "clouds", "blue", "haze")) == "blue, clouds, haze, sky"
    assert {"blue", "clouds"} <= set(sky.pool)  # bag-of-words candidates and the orthogonal style's concepts
    with pytest.raises(ValueError, match="unknown template"):
        sky.text("poem")


def test_a_search_records_each_trial_and_a_killed_one_resumes_without_repeating_finished_trials(banks, space, tmp_path):
    train, held_out = banks
    encoder, cache = create_encoder("minilm"), EmbeddingCache(tmp_path / "cache")
    study = run_search(space, train, held_out, encoder, tmp_path / "s", SEARCH, cache, progress=False)
    finished = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    assert len(finished) == 3 and (tmp_path / "s" / "study.db").is_file()
    for trial in finished:
        assert len(trial.user_attrs["texts"]) == 11 and 0 <= trial.value <= 1
        assert -1 <= trial.user_attrs["mean_cos"] <= trial.user_attrs["max_cos"] <= 1
    # a kill mid-trial leaves it running; the next run marks it failed and runs only what is missing
    open_study(tmp_path / "s", seed=0).ask()
    more = SEARCH.model_copy(update={"trials": 5})
    resumed = run_search(space, train, held_out, encoder, tmp_path / "s", more, cache, progress=False)
    states = [trial.state.name for trial in resumed.trials]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") + states.count("PRUNED") == 5
    assert [trial.params for trial in resumed.trials[:3]] == [trial.params for trial in finished]
    again = run_search(space, train, held_out, encoder, tmp_path / "s", more, cache, progress=False)
    assert len(again.trials) == len(resumed.trials)  # nothing left to run


def test_the_same_seed_gives_the_same_search(banks, space, tmp_path):
    train, held_out = banks
    encoder = create_encoder("minilm")
    first = run_search(space, train, held_out, encoder, tmp_path / "a", SEARCH, progress=False)
    second = run_search(space, train, held_out, encoder, tmp_path / "b", SEARCH, progress=False)
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    assert [t.value for t in first.trials] == [t.value for t in second.trials]
