"""A new prompt style is one module: once registered it generates (curated and from an LLM),
scores and compares like the built-in four, with no other file of the package changed."""

from __future__ import annotations

import importlib
import json
import sys

import pandas as pd
import pytest

from cli.distill_cli import distill
from cli.promptkit_cli import promptkit
from prompt_kit import PromptKitError, load_prompt_set, load_taxonomy
from prompt_kit.styles import get_style, register_style, style_names, unregister_style
from prompt_kit.styles.label import LabelStyle
from tests.distill.conftest import DATA
from tests.distill.test_compare import TINY
from tests.llm_server import Reply

MODULE = '''
"""photo_of: the class inside a photo caption, with the LLM's sentence when there is one."""

from prompt_kit.styles import PromptStyle, register_style
from prompt_kit.styles.base import answer_sentence


class PhotoOfStyle(PromptStyle):
    name = "photo_of"
    title = "photo of"
    summary = "a photo caption around the label"
    prompt_template = "a photo of a {{ label }}{{ ' ' ~ sentence if sentence }}\\n"
    request_template = (
        "Describe each class of {{ dataset }} in a few words, as JSON keyed by these names:"
        "{% for c in classes %} {{ c.name }}{% endfor %}. Give each a 'sentence'."
    )

    def check_answer_entry(self, name, entry):
        return {"sentence": answer_sentence(name, entry, required=True), "words": []}


STYLE = register_style(PhotoOfStyle())
'''


@pytest.fixture()
def photo_of(tmp_path, monkeypatch):
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "photo_of_style.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("photo_of_style")
    yield module.STYLE
    unregister_style("photo_of")
    sys.modules.pop("photo_of_style", None)


def test_a_registered_style_is_listed_and_leaves_with_its_module(photo_of):
    assert style_names()[:4] == ("label", "sentence", "bag_of_words", "orthogonal")
    assert style_names()[-1] == "photo_of" and get_style("photo_of") is photo_of
    unregister_style("photo_of")
    assert "photo_of" not in style_names()
    with pytest.raises(PromptKitError, match="unknown style 'photo_of'"):
        get_style("photo_of")


def test_a_style_name_is_taken_once_and_must_be_a_key():
    class Other(LabelStyle):
        summary = "another label"

    with pytest.raises(PromptKitError, match="already registered"):
        register_style(Other())
    Other.name = "Bad Name"
    with pytest.raises(PromptKitError, match="lower-case"):
        register_style(Other())


def test_a_new_style_generates_scores_and_asks_an_llm(photo_of, runner, tmp_path, llm_server):
    assert "photo_of" in runner.invoke(promptkit, ["styles", "--names"]).output.split()
    out = tmp_path / "photo_of.yaml"
    result = runner.invoke(promptkit, ["generate", "--style", "photo_of", "--out", str(out)])
    assert result.exit_code == 0, result.output
    curated = load_prompt_set(out)
    assert curated.style == "photo_of" and curated.classes[3].texts == ["a photo of a road"]
    assert curated.provenance.template.name == "photo_of.j2"

    scored = runner.invoke(promptkit, ["score", str(out), "--format", "json"])
    assert scored.exit_code == 0, scored.output
    assert "photo_of" in scored.stdout

    names = curated.class_names
    llm_server.script(Reply(json.dumps({name: {"sentence": f"seen on {name.lower()} days"} for name in names})))
    asked = tmp_path / "asked.yaml"
    args = ["generate", "--style", "photo_of", "--llm", "m", "--base-url", llm_server.base_url]
    result = runner.invoke(promptkit, [*args, "--cache-dir", str(tmp_path / "c"), "--out", str(asked)])
    assert result.exit_code == 0, result.output
    request = llm_server.requests[0]["messages"][-1]["content"]
    assert request.startswith("Describe each class of camvid") and " Road " in request
    assert load_prompt_set(asked).classes[3].texts == ["a photo of a road seen on road days"]
    assert load_prompt_set(asked).provenance.llm.request_template.name == "llm/photo_of.j2"


def test_an_invalid_answer_is_judged_by_the_new_style(photo_of, runner, tmp_path, llm_server):
    # every class present, one sentence empty: only the style's own rule (a sentence is required) rejects it
    names = load_taxonomy("camvid").class_names
    answer = {name: {"sentence": "" if name == "Sky" else f"a {name}"} for name in names}
    llm_server.script(Reply(json.dumps(answer)))
    args = ["generate", "--style", "photo_of", "--llm", "m", "--base-url", llm_server.base_url, "--reasks", "0"]
    result = runner.invoke(promptkit, [*args, "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "o.yaml")])
    assert result.exit_code == 1 and not (tmp_path / "o.yaml").exists()
    assert "class 'Sky': 'sentence' must be a non-empty string" in result.stderr


@pytest.mark.slow
def test_a_new_style_is_compared_beside_a_built_in_one(photo_of, runner, tmp_path):
    sets = tmp_path / "sets"
    sets.mkdir()
    for style in ("label", "photo_of"):
        made = runner.invoke(promptkit, ["generate", "--style", style, "--out", str(sets / f"{style}.yaml")])
        assert made.exit_code == 0, made.output
    out = tmp_path / "compare"
    args = ["compare", "--data", DATA, "--styles", "label,photo_of", "--prompt-sets", str(sets)]
    result = runner.invoke(distill, [*args, "--seeds", "1", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "results.csv")
    assert list(table["style"]) == ["label", "photo_of", "(no KD)"]
    assert "Prompt transfer" in result.stdout
