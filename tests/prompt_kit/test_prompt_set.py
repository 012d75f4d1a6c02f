from __future__ import annotations

import pytest

from prompt_kit import PromptKitError, load_prompt_set, load_taxonomy, save_prompt_set
from prompt_kit.concepts import curated_answer
from prompt_kit.generate import build_prompt_set
from prompt_kit.prompt_set import PromptSet, prompt_set_to_yaml
from prompt_kit.templates import PromptTemplates


def _set(style: str = "bag_of_words", dataset: str = "camvid") -> PromptSet:
    taxonomy = load_taxonomy(dataset)
    return build_prompt_set(taxonomy, style, [curated_answer(taxonomy, style)], PromptTemplates())


def test_round_trip_keeps_everything(tmp_path):
    prompt_set = _set()
    path = save_prompt_set(prompt_set, tmp_path / "set.yaml")
    assert load_prompt_set(path) == prompt_set


def test_every_class_once_in_taxonomy_order():
    prompt_set = _set("orthogonal")
    prompt_set.check_against(load_taxonomy("camvid"))
    with pytest.raises(PromptKitError, match="does not match taxonomy 'kitti11'"):
        prompt_set.check_against(load_taxonomy("kitti11"))


def test_reordered_classes_are_rejected_against_the_taxonomy():
    prompt_set = _set()
    prompt_set.classes.reverse()
    with pytest.raises(PromptKitError, match="different order"):
        prompt_set.check_against(load_taxonomy("camvid"))


def test_content_hash_ignores_creation_time_but_not_texts():
    first, second = _set(), _set()
    second.provenance.created = second.provenance.created.replace(year=2001)
    assert first.content_hash() == second.content_hash()
    second.classes[0].texts = ["something else"]
    assert first.content_hash() != second.content_hash()


def _edit(tmp_path, old: str, new: str):
    text = prompt_set_to_yaml(_set("orthogonal")).replace(old, new, 1)
    path = tmp_path / "edited.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("words: [clouds, horizon, azure, atmosphere]", "words: [clouds, horizon, azure]", "needs exactly 4"),
        ("words: [clouds, horizon, azure, atmosphere]", "words: [clouds, horizon, azure, '  ']", "not be empty"),
        ("words: [clouds, horizon, azure, atmosphere]", "words: [clouds, horizon, azure, banana]", "candidates"),
        ("name: Building", "name: Sky", "appears more than once"),
        ("style: orthogonal", "style: haiku", "unknown style"),
        ("schema_version: 1", "schema_version: 9", "schema_version 9"),
    ],
)
def test_malformed_prompt_set_is_a_clear_error(tmp_path, old, new, message):
    path = _edit(tmp_path, old, new)
    with pytest.raises(PromptKitError, match=message):
        load_prompt_set(path)


def test_orthogonal_words_may_not_be_shared(tmp_path):
    prompt_set = _set("orthogonal")
    data = prompt_set.model_dump()
    data["classes"][1]["candidates"].append("clouds")
    data["classes"][1]["words"][0] = "clouds"
    with pytest.raises(ValueError, match="'clouds' is used by both"):
        PromptSet.model_validate(data)


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    import prompt_kit.files as files

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        save_prompt_set(_set(), tmp_path / "set.yaml")
    assert list(tmp_path.iterdir()) == []
