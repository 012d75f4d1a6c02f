from __future__ import annotations

import pytest

from prompt_kit import PromptKitError, load_taxonomy
from prompt_kit.concepts import curated_answer
from prompt_kit.generate import build_prompt_set
from prompt_kit.styles import style_names
from prompt_kit.templates import PromptTemplates


@pytest.mark.parametrize("style", style_names())
def test_every_style_renders_the_label_or_sentence(style):
    templates = PromptTemplates()
    text = templates.render_prompt(style, name="Road", label="road", sentence="A grey road.", words=list("abcd"))
    assert text == {"label": "road", "sentence": "A grey road.", "bag_of_words": "a, b, c, d, road",
                    "orthogonal": "a, b, c, d, road"}[style]  # fmt: skip


def test_user_folder_overrides_one_template(tmp_path):
    (tmp_path / "label.j2").write_text("a photo of a {{ label }}.")
    templates = PromptTemplates(tmp_path)
    assert templates.render_prompt("label", name="Car", label="car", sentence=None, words=[]) == "a photo of a car."
    # templates not overridden still come from the shipped folder
    assert templates.render_prompt("sentence", name="Car", label="car", sentence="A car.", words=[]) == "A car."


def test_override_changes_the_recorded_template_hash(tmp_path):
    (tmp_path / "label.j2").write_text("a photo of a {{ label }}.")
    taxonomy = load_taxonomy("camvid")
    answers = [{name: {} for name in taxonomy.class_names}]
    shipped = build_prompt_set(taxonomy, "label", answers, PromptTemplates())
    mine = build_prompt_set(taxonomy, "label", answers, PromptTemplates(tmp_path))
    assert shipped.provenance.template.sha256 != mine.provenance.template.sha256
    assert mine.classes[3].texts == ["a photo of a road."]


def test_undefined_variable_is_an_error_not_an_empty_string(tmp_path):
    (tmp_path / "label.j2").write_text("{{ labl }}")
    with pytest.raises(PromptKitError, match="'labl' is undefined"):
        PromptTemplates(tmp_path).render_prompt("label", name="Car", label="car", sentence=None, words=[])


def test_templates_run_in_a_sandbox(tmp_path):
    (tmp_path / "label.j2").write_text("{{ label.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(PromptKitError, match="unsafe|undefined"):
        PromptTemplates(tmp_path).render_prompt("label", name="Car", label="car", sentence=None, words=[])


def test_curated_bag_of_words_uses_the_first_four_describing_words():
    taxonomy = load_taxonomy("kitti11")
    prompt_set = build_prompt_set(taxonomy, "bag_of_words", [curated_answer(taxonomy, "bag_of_words")],
                                  PromptTemplates())  # fmt: skip
    for entry in prompt_set.classes:
        assert entry.words == entry.candidates[:4]
        assert len(entry.candidates) >= 8
        assert entry.texts == [", ".join(entry.words) + ", " + entry.label]
