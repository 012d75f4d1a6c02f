"""LLM faults through `promptkit generate`: a valid set or one clean error; no cached failure; no key on disk.

The faults are played by the loopback server the suite starts (tests/llm_server.py) to the real
``openai`` client: timeouts, 429 with Retry-After, 500, truncated or prose-wrapped JSON, missing,
extra and repeated classes, bytes that are not UTF-8, an empty reply.
"""

from __future__ import annotations

import json

import pytest
import yaml

from cli.promptkit_cli import promptkit
from prompt_kit import load_taxonomy
from prompt_kit.llm_answers import parse_json_object
from tests.llm_server import Reply, answer_json
from tests.reliability.conftest import assert_clean_error

NAMES = load_taxonomy("camvid").class_names
SECRET = "sk-reliability-this-key-must-never-reach-the-disk"
GOOD = answer_json(NAMES)
ANSWER = json.loads(GOOD)


def _without(name: str) -> str:
    return json.dumps({key: value for key, value in ANSWER.items() if key != name})


REPEATED = GOOD[:-1] + ', "Sky": ' + json.dumps(ANSWER["Sky"]) + "}"

RECOVERED = {  # first reply is a fault, the next one good: the set is written
    "timeout": [Reply(GOOD, delay=3.0), Reply(GOOD)],
    "429-retry-after": [Reply(status=429, headers={"Retry-After": "0"}), Reply(GOOD)],
    "500": [Reply(status=500), Reply(GOOD)],
    "truncated-json": [Reply(GOOD[:-60]), Reply(GOOD)],
    "prose-wrapped-json": [Reply(f"Sure! Here is the JSON you asked for:\n{GOOD}\nHope this helps.")],
    "missing-class": [Reply(_without("Fence")), Reply(GOOD)],
    "extra-class": [Reply(GOOD[:-1] + ', "Tram": ' + json.dumps(ANSWER["Car"]) + "}"), Reply(GOOD)],
    "repeated-class": [Reply(REPEATED), Reply(GOOD)],
    "not-utf8-body": [Reply(raw=b'{"choices": [\xff\xfe', status=200), Reply(GOOD)],
    "empty-content": [Reply(""), Reply(GOOD)],
}
FAILED = {  # every reply a fault: one clean error, exit 1, nothing written or cached
    "always-500": Reply(status=500),
    "always-429": Reply(status=429, headers={"Retry-After": "0"}),
    "always-truncated": Reply(GOOD[:-60]),
    "always-repeated-class": Reply(REPEATED),
    "always-not-utf8": Reply(raw=b"\xff\xfe\xfd not json", status=200),
}


def _generate(server, tmp_path, *extra: str) -> list[str]:
    return ["generate", "--style", "bag_of_words", "--llm", "test-model", "--base-url", server.base_url,
            "--timeout", "1", "--retries", "2", "--cache-dir", str(tmp_path / "cache"), "--out",
            str(tmp_path / "set.yaml"), *extra]  # fmt: skip


def _no_key_anywhere(tmp_path) -> None:
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("fault", list(RECOVERED), ids=list(RECOVERED))
def test_a_fault_then_a_good_answer_gives_a_valid_set(fault, runner, tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    llm_server.script(*RECOVERED[fault])
    result = runner.invoke(promptkit, _generate(llm_server, tmp_path))
    assert result.exit_code == 0, result.output
    written = yaml.safe_load((tmp_path / "set.yaml").read_text())
    assert [entry["name"] for entry in written["classes"]] == NAMES
    cached = [json.loads(path.read_text()) for path in (tmp_path / "cache").rglob("*.json")]
    assert len(cached) == 1 and parse_json_object(cached[0]["content"]) == ANSWER  # only the good answer is kept
    _no_key_anywhere(tmp_path)


@pytest.mark.parametrize("fault", list(FAILED), ids=list(FAILED))
def test_only_faults_end_in_one_clean_error_and_nothing_cached(fault, runner, tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    llm_server.script(FAILED[fault])
    line = assert_clean_error(runner.invoke(promptkit, _generate(llm_server, tmp_path)), exit_code=1)
    assert SECRET not in line
    assert not (tmp_path / "set.yaml").exists()
    assert not list((tmp_path / "cache").rglob("*.json"))
    _no_key_anywhere(tmp_path)


def test_a_fault_never_poisons_the_cache_for_replay(runner, tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    llm_server.script(Reply(GOOD[:-60]))
    runner.invoke(promptkit, _generate(llm_server, tmp_path))
    line = assert_clean_error(runner.invoke(promptkit, _generate(llm_server, tmp_path, "--replay")))
    assert "no cached answer" in line
