from __future__ import annotations

import pytest
from pydantic import BaseModel

from distill.training.configuration import apply_overrides, config_to_yaml, load_config
from prompt_kit import PromptKitError


class Inner(BaseModel):
    lr: float = 0.1
    sizes: tuple[int, int] = (1, 2)


class Outer(BaseModel):
    name: str = "x"
    steps: int = 10
    inner: Inner = Inner()


def test_overrides_set_nested_values_parsed_as_yaml():
    values = apply_overrides({"inner": {"lr": 0.1}}, ["inner.lr=0.001", "steps=3", "inner.sizes=[96, 128]"])
    assert values == {"inner": {"lr": 0.001, "sizes": [96, 128]}, "steps": 3}


def test_file_then_options_then_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: file\nsteps: 5\ninner: {lr: 0.5}\n")
    config = load_config(Outer, path, ["inner.lr=0.25"], {"steps": 7, "name": None})
    assert (config.name, config.steps, config.inner.lr) == ("file", 7, 0.25)
    assert "lr: 0.25" in config_to_yaml(config)


@pytest.mark.parametrize(("override", "message"), [("steps", "key=value"), ("steps=many", "invalid config")])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(PromptKitError, match=message):
        load_config(Outer, None, [override])
