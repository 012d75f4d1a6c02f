"""Every file reader, fed random bytes and damaged copies of valid files: a value or a PromptKitError.

Property-based (hypothesis): whatever the bytes, a reader returns something or raises the one
user-facing error type, whose message names the file. Never a traceback of another type, never a
hang. Cache readers go further: a damaged entry is a miss (dropped, with a warning), not an error.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save as safetensors_save

from distill.datasets.segmentation_dataset import read_image_array, read_label
from networks.pretrained import read_state_dict
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.errors import PromptKitError
from prompt_kit.llm_cache import AnswerCache
from prompt_kit.prompt_set import load_prompt_set
from prompt_kit.readers import read_json, read_safetensors, read_yaml
from prompt_kit.resources import prompts_dir
from prompt_kit.taxonomy import load_taxonomy
from teacher.checkpoint import load_teacher

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LABEL_SET = (prompts_dir() / "camvid" / "label.yaml").read_bytes()


def _embeddings_bytes() -> bytes:
    embeddings = ClassEmbeddings(
        tokens=torch.randn(3, 4, 8), attention_mask=torch.ones(3, 4, dtype=torch.int64), pooled=torch.randn(3, 8),
        class_names=["a", "b", "c"], encoder="test",
    )  # fmt: skip
    return safetensors_save(
        {"tokens": embeddings.tokens, "attention_mask": embeddings.attention_mask, "pooled": embeddings.pooled},
        metadata={"promptkit": json.dumps(embeddings.metadata())},
    )


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


VALID = {
    "prompt set": LABEL_SET,
    "class embeddings": _embeddings_bytes(),
    "image": _png(np.zeros((6, 8, 3), dtype=np.uint8)),
    "json": b'{"a": [1, 2, {"b": null}]}',
}


def _state_dict(path: Path):
    """The product's reader of users' weight files; its ValueError is the user error ``create_network`` passes on."""
    try:
        return read_state_dict(path)
    except ValueError as exc:
        raise PromptKitError(str(exc)) from exc


def _readers(path: Path):
    return {
        "yaml": lambda: read_yaml(path, "test"),
        "json": lambda: read_json(path, "test"),
        "prompt set": lambda: load_prompt_set(path),
        "taxonomy": lambda: load_taxonomy(str(path)),
        "class embeddings": lambda: ClassEmbeddings.load(path),
        "safetensors": lambda: read_safetensors(path, "test"),
        "torch state dict": lambda: _state_dict(path),
        "image": lambda: read_image_array(path),
        "label": lambda: read_label(path),
    }


def _value_or_user_error(reader) -> None:
    try:
        reader()
    except PromptKitError as exc:
        assert "\n" not in str(exc) and str(exc), repr(exc)


@pytest.mark.parametrize("reader", list(_readers(Path("x"))))
@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_give_a_value_or_one_clear_error(reader, data, tmp_path):
    path = tmp_path / ("file.yaml" if reader in {"taxonomy", "prompt set"} else "file.bin")
    path.write_bytes(data)
    _value_or_user_error(_readers(path)[reader])


@pytest.mark.parametrize("kind", list(VALID))
@FUZZ
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=6))
def test_damaged_copies_of_valid_files_give_a_value_or_one_clear_error(kind, cut, flips, tmp_path):
    data = bytearray(VALID[kind][: max(1, int(len(VALID[kind]) * cut))] if cut < 0.98 else VALID[kind])
    for where, value in flips:
        data[min(len(data) - 1, int(where * len(data)))] = value
    path = tmp_path / ("file.yaml" if kind == "prompt set" else "file.bin")
    path.write_bytes(bytes(data))
    readers = _readers(path)
    for name in {"prompt set": ["prompt set", "yaml"], "class embeddings": ["class embeddings", "safetensors"],
                 "image": ["image", "label"], "json": ["json", "yaml"]}[kind]:  # fmt: skip
        _value_or_user_error(readers[name])


@FUZZ
@given(config=st.binary(max_size=512))
def test_a_teacher_folder_with_any_config_bytes_loads_or_fails_clearly(config, tmp_path):
    folder = tmp_path / "teacher"
    folder.mkdir(exist_ok=True)
    (folder / "teacher_config.json").write_bytes(config)
    (folder / "teacher.safetensors").write_bytes(safetensors_save({"x": torch.zeros(1)}))
    _value_or_user_error(lambda: load_teacher(folder))


@FUZZ
@given(data=st.binary(max_size=512))
def test_a_damaged_llm_cache_entry_is_a_miss_and_is_dropped(data, tmp_path, caplog):
    cache = AnswerCache(tmp_path / "cache")
    key = "ab" + "0" * 62
    cache.put(key, {"content": "{}"})
    path = tmp_path / "cache" / "ab" / f"{key}.json"
    path.write_bytes(data)
    record = cache.get(key)
    try:
        expected = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        expected = None
    if isinstance(expected, dict):
        assert record == expected
    else:
        assert record is None and not path.exists()
