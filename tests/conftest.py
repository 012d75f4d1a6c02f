"""Shared fixtures: the loopback LLM server, an isolated cache, the CLI runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.llm_server import ChatServer


@pytest.fixture()
def llm_server():
    server = ChatServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory, monkeypatch):
    """No test reads the user's cache or talks to a real endpoint by accident."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()
