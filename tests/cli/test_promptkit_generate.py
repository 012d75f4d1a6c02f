"""``promptkit classes`` and ``promptkit generate`` as a user runs them."""

from __future__ import annotations

import pytest

from cli.distill_cli import distill
from cli.promptkit_cli import promptkit
from prompt_kit import load_prompt_set, load_taxonomy
from prompt_kit.styles import style_names
from tests.llm_server import Reply, answer_json

NAMES = load_taxonomy("camvid").class_names
SECRET = "sk-cli-secret-never-on-disk"


def test_version_and_help_show_examples(runner):
    assert runner.invoke(promptkit, ["--version"]).output.startswith("promptkit, version ")
    assert "promptkit generate --dataset camvid --style orthogonal" in runner.invoke(promptkit, ["--help"]).output
    assert "Example" in runner.invoke(promptkit, ["generate", "--help"]).output
    assert runner.invoke(distill, ["--version"]).exit_code == 0


def test_classes_lists_and_shows(runner):
    listing = runner.invoke(promptkit, ["classes"])
    assert listing.exit_code == 0 and "kitti11" in listing.output
    shown = runner.invoke(promptkit, ["classes", "camvid"])
    assert " 4  Pavement         sidewalk" in shown.output


@pytest.mark.parametrize("dataset", ["camvid", "kitti11", "cityscapes"])
@pytest.mark.parametrize("style", style_names())
def test_generate_offline_writes_a_valid_set(runner, tmp_path, dataset, style):
    out = tmp_path / "set.yaml"
    result = runner.invoke(promptkit, ["generate", "--dataset", dataset, "--style", style, "--out", str(out)])
    assert result.exit_code == 0, result.output
    prompt_set = load_prompt_set(out)
    prompt_set.check_against(load_taxonomy(dataset))
    assert prompt_set.style == style and prompt_set.provenance.source == "curated"


def test_generate_with_a_user_taxonomy_file(runner, tmp_path):
    classes = tmp_path / "two.yaml"
    classes.write_text("name: two\nclasses:\n  - {name: road}\n  - {name: sky}\n")
    result = runner.invoke(promptkit, ["generate", "--classes", str(classes), "--style", "sentence"])
    assert result.exit_code == 0
    assert "dataset: two" in result.stdout


def test_generate_with_llm_survives_a_bad_answer_and_never_writes_the_key(runner, tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    llm_server.script(Reply(answer_json(NAMES)[:100]), Reply(answer_json(NAMES)))
    out, cache = tmp_path / "bow.yaml", tmp_path / "cache"
    args = ["generate", "--style", "bag_of_words", "--llm", "tiny", "--base-url", llm_server.base_url,
            "--cache-dir", str(cache), "--out", str(out)]  # fmt: skip
    result = runner.invoke(promptkit, args)
    assert result.exit_code == 0, result.output
    prompt_set = load_prompt_set(out)
    assert prompt_set.provenance.source == "llm"
    assert prompt_set.provenance.llm.attempts == 2
    assert prompt_set.provenance.llm.usage["total_tokens"] == 300
    assert prompt_set.classes[3].texts == ["wroad0, wroad1, wroad2, wroad3, road"]
    for path in [out, *cache.rglob("*")]:
        if path.is_file():
            assert SECRET not in path.read_text()
    assert SECRET not in result.output
    # replay rebuilds the same set with no server
    llm_server.close()
    replayed = runner.invoke(promptkit, [*args[:-2], "--replay"])
    assert replayed.exit_code == 0, replayed.output
    assert "wroad0, wroad1, wroad2, wroad3, road" in replayed.stdout


def test_every_answer_bad_writes_nothing(runner, tmp_path, llm_server):
    llm_server.script(Reply('{"Sky": {"sentence": "half'))
    out = tmp_path / "o.yaml"
    args = ["generate", "--style", "orthogonal", "--llm", "m", "--base-url", llm_server.base_url]
    result = runner.invoke(promptkit, [*args, "--cache-dir", str(tmp_path / "c"), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("error: the LLM gave no valid answer in 3 tries")
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "nope", "--style", "label"], "unknown dataset 'nope'"),
        (["--style", "haiku"], "Invalid value for '--style'"),
        (["--style", "label", "--llm", "m"], "style 'label' needs no LLM"),
        (["--style", "sentence", "--replay"], "need --llm"),
        (["--style", "sentence", "--templates", "/no/such/dir"], "templates folder not found"),
    ],
)
def test_usage_and_data_errors_exit_2_with_one_line(runner, tmp_path, args, message):
    out = tmp_path / "o.yaml"
    result = runner.invoke(promptkit, ["generate", *args, "--out", str(out)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_malformed_taxonomy_file_exits_2(runner, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nclasses:\n  - {name: a}\n  - {name: a}\n")
    result = runner.invoke(promptkit, ["generate", "--classes", str(bad), "--style", "label"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "duplicate class name 'a'" in result.stderr


def test_unreachable_server_exits_1(runner, tmp_path):
    result = runner.invoke(promptkit, ["generate", "--style", "sentence", "--llm", "m", "--base-url",
                                       "http://127.0.0.1:9/v1", "--retries", "0", "--no-cache"])  # fmt: skip
    assert result.exit_code == 1
    assert "cannot reach the LLM server" in result.stderr
