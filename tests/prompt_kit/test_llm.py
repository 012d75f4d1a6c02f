"""The LLM path against a real HTTP server on 127.0.0.1, through the real openai client."""

from __future__ import annotations

import json

import pytest

from prompt_kit import PromptKitError, load_taxonomy
from prompt_kit.llm import LLMSettings, public_url, request_class_answers
from prompt_kit.llm_answers import InvalidAnswer, parse_json_object, validate_answer
from tests.llm_server import Reply, answer_json

CAMVID = load_taxonomy("camvid")
NAMES = CAMVID.class_names
SECRET = "sk-test-this-must-never-reach-the-disk"


def settings(server, tmp_path, **overrides) -> LLMSettings:
    values = dict(model="test-model", base_url=server.base_url, cache_dir=tmp_path / "cache", timeout=5.0)
    values.update(overrides)
    return LLMSettings(**values)


def test_good_answer_is_validated_and_cached(llm_server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    llm_server.script(Reply(answer_json(NAMES)))
    result = request_class_answers(CAMVID, "bag_of_words", settings(llm_server, tmp_path))
    assert result.answers[0]["Road"]["words"] == ["wroad0", "wroad1", "wroad2", "wroad3"]
    assert result.source.usage["total_tokens"] == 150
    request = llm_server.requests[0]
    assert request["model"] == "test-model"
    assert request["response_format"] == {"type": "json_object"}
    assert all(name in request["messages"][-1]["content"] for name in NAMES)
    assert llm_server.raw_headers[0]["authorization"] == f"Bearer {SECRET}"
    # the second run is answered from the cache: no request reaches the server
    again = request_class_answers(CAMVID, "bag_of_words", settings(llm_server, tmp_path))
    assert len(llm_server.requests) == 1
    assert again.answers == result.answers and again.source.cached_answers == 1
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text()


@pytest.mark.parametrize(
    ("bad", "complaint"),
    [
        (answer_json(NAMES)[:-40], "not one complete JSON object"),
        (json.dumps({k: v for k, v in json.loads(answer_json(NAMES)).items() if k != "Fence"}), "missing"),
        (answer_json(NAMES, words_per_class=3), "exactly 4 words"),
    ],
    ids=["truncated", "class-missing", "too-few-words"],
)
def test_invalid_answer_is_re_asked_with_the_error(llm_server, tmp_path, bad, complaint):
    llm_server.script(Reply(bad), Reply(answer_json(NAMES)))
    result = request_class_answers(CAMVID, "bag_of_words", settings(llm_server, tmp_path))
    assert len(llm_server.requests) == 2
    re_ask = llm_server.requests[1]["messages"]
    assert re_ask[-2] == {"role": "assistant", "content": bad}
    assert complaint in re_ask[-1]["content"]
    assert result.source.attempts == 2


@pytest.mark.parametrize("status", [429, 500])
def test_transient_http_errors_are_retried_by_the_client(llm_server, tmp_path, status):
    llm_server.script(Reply(status=status), Reply(answer_json(NAMES)))
    result = request_class_answers(CAMVID, "sentence", settings(llm_server, tmp_path))
    assert len(llm_server.requests) == 2
    assert result.answers[0]["Sky"]["sentence"] == "A typical Sky seen from a car."


def test_slow_answer_past_the_timeout_is_retried(llm_server, tmp_path):
    llm_server.script(Reply(answer_json(NAMES), delay=2.0), Reply(answer_json(NAMES)))
    result = request_class_answers(CAMVID, "sentence", settings(llm_server, tmp_path, timeout=0.5))
    assert len(llm_server.requests) == 2
    assert len(result.answers) == 1


def test_every_answer_bad_is_an_error_and_nothing_is_cached(llm_server, tmp_path):
    llm_server.script(Reply("not json at all"))
    with pytest.raises(PromptKitError, match="no valid answer in 3 tries") as info:
        request_class_answers(CAMVID, "sentence", settings(llm_server, tmp_path))
    assert info.value.exit_code == 1
    assert len(llm_server.requests) == 3
    assert not any(path.is_file() for path in (tmp_path / "cache").rglob("*"))


def test_server_errors_after_retries_are_a_clear_error(llm_server, tmp_path):
    llm_server.script(Reply(status=500))
    with pytest.raises(PromptKitError, match="HTTP 500 after 2 tries"):
        request_class_answers(CAMVID, "sentence", settings(llm_server, tmp_path, http_retries=1))


def test_unreachable_server_is_a_clear_error(tmp_path):
    dead = LLMSettings(model="m", base_url="http://127.0.0.1:9/v1", cache_dir=tmp_path, http_retries=0, timeout=2)
    with pytest.raises(PromptKitError, match="cannot reach the LLM server at http://127.0.0.1:9/v1"):
        request_class_answers(CAMVID, "sentence", dead)


def test_server_without_json_mode_gets_plain_requests_and_fenced_json_is_parsed(llm_server, tmp_path):
    llm_server.json_mode = False
    llm_server.script(Reply("Sure! Here it is:\n```json\n" + answer_json(NAMES) + "\n```\nAnything else?"))
    result = request_class_answers(CAMVID, "bag_of_words", settings(llm_server, tmp_path))
    assert "response_format" not in llm_server.requests[-1]
    assert result.answers[0]["Car"]["words"][0] == "wcar0"


def test_samples_are_kept_as_alternatives_with_distinct_seeds(llm_server, tmp_path):
    llm_server.script(Reply(answer_json(NAMES, prefix="a")), Reply(answer_json(NAMES, prefix="b")))
    result = request_class_answers(CAMVID, "bag_of_words", settings(llm_server, tmp_path, samples=2, seed=7))
    assert [request["seed"] for request in llm_server.requests] == [7, 8]
    assert [answer["Sky"]["words"][0] for answer in result.answers] == ["asky0", "bsky0"]


def test_replay_answers_from_the_cache_only(llm_server, tmp_path):
    with pytest.raises(PromptKitError, match="--replay: no cached answer for key [0-9a-f]{64}"):
        request_class_answers(CAMVID, "sentence", settings(llm_server, tmp_path, replay=True))
    assert llm_server.requests == []
    llm_server.script(Reply("garbage"), Reply(answer_json(NAMES)))
    first = request_class_answers(CAMVID, "sentence", settings(llm_server, tmp_path))
    # the valid answer reached after a re-ask replays without the server
    replayed = request_class_answers(CAMVID, "sentence", settings(llm_server, tmp_path, replay=True))
    assert replayed.answers == first.answers and len(llm_server.requests) == 2


@pytest.mark.parametrize(
    "change", [{"temperature": 0.1}, {"top_p": 0.5}, {"seed": 3}, {"model": "other"}, {"samples": 2}]
)
def test_cache_key_covers_what_changes_the_answer(llm_server, tmp_path, change):
    llm_server.script(Reply(answer_json(NAMES)))
    request_class_answers(CAMVID, "sentence", settings(llm_server, tmp_path))
    request_class_answers(CAMVID, "sentence", settings(llm_server, tmp_path, **change))
    assert len(llm_server.requests) >= 2


def test_no_cache_always_asks(llm_server, tmp_path):
    llm_server.script(Reply(answer_json(NAMES)))
    for _ in range(2):
        request_class_answers(CAMVID, "sentence", settings(llm_server, tmp_path, use_cache=False))
    assert len(llm_server.requests) == 2
    assert not (tmp_path / "cache").exists()


def _orthogonal_answer(**edits) -> dict:
    answer = {name: {"sentence": "s", "words": [f"{name.lower()}{i}" for i in range(8)]} for name in NAMES}
    answer.update(edits)
    return answer


def test_orthogonal_answers_need_eight_unshared_candidates():
    assert validate_answer(_orthogonal_answer(), CAMVID, "orthogonal")["Sky"]["words"][0] == "sky0"
    with pytest.raises(InvalidAnswer, match="at least 8"):
        validate_answer(_orthogonal_answer(Sky={"sentence": "s", "words": ["a"] * 8}), CAMVID, "orthogonal")
    shared = _orthogonal_answer(Sky={"sentence": "s", "words": ["road0"] + [f"s{i}" for i in range(7)]})
    with pytest.raises(InvalidAnswer, match="'road0' appears under both"):
        validate_answer(shared, CAMVID, "orthogonal")
    named = _orthogonal_answer(Sky={"sentence": "s", "words": ["car"] + [f"s{i}" for i in range(7)]})
    with pytest.raises(InvalidAnswer, match="is a class name"):
        validate_answer(named, CAMVID, "orthogonal")


def test_unknown_keys_are_rejected_not_guessed():
    answer = _orthogonal_answer()
    answer["Sidewalk"] = answer.pop("Pavement")
    with pytest.raises(InvalidAnswer, match="missing from the answer: Pavement"):
        validate_answer(answer, CAMVID, "orthogonal")


def test_parse_json_object_finds_the_object_in_prose():
    assert parse_json_object('Answer: {"a": 1} hope it helps') == {"a": 1}
    with pytest.raises(InvalidAnswer):
        parse_json_object('{"a": [1, 2')


def test_public_url_drops_credentials():
    assert public_url("https://user:sk-123@host.example:8443/v1?key=sk-456") == "https://host.example:8443/v1"
