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


def _tiny_clip_tokenizer():
    """A byte-level CLIP tokenizer built offline: every byte is a token, no merges."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab) + 1000  # placeholder, renumbered below
    vocab = {token: index for index, token in enumerate(vocab)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77), len(vocab)


def _tiny_clip_config(vocab_size: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=77, projection_dim=16, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )  # fmt: skip


@pytest.fixture(scope="session")
def tiny_clip_folder(tmp_path_factory):
    """A CLIP model folder (text model with projection + tokenizer), randomly initialised."""
    import torch
    from transformers import CLIPTextModelWithProjection

    folder = tmp_path_factory.mktemp("tiny-clip")
    tokenizer, vocab_size = _tiny_clip_tokenizer()
    torch.manual_seed(0)
    CLIPTextModelWithProjection(_tiny_clip_config(vocab_size)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_sd_folder(tmp_path_factory):
    """A Stable-Diffusion-style diffusers folder's text side: text_encoder/ (no projection), tokenizer/."""
    import torch
    from transformers import CLIPTextModel

    folder = tmp_path_factory.mktemp("tiny-sd")
    tokenizer, vocab_size = _tiny_clip_tokenizer()
    torch.manual_seed(1)
    CLIPTextModel(_tiny_clip_config(vocab_size)).save_pretrained(folder / "text_encoder")
    tokenizer.save_pretrained(folder / "tokenizer")
    return folder
