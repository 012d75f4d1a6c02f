"""Option help comes from the registries: every loss, dataset reader and encoder, and a new one by itself."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from cli.distill_cli import distill
from cli.promptkit_cli import promptkit
from distill.datasets.factory import SPEC_EXAMPLES, list_datasets
from distill.kd.losses import LOSSES, KLDivergence, list_losses
from prompt_kit.encoders import ENCODER_SPECS, list_encoders


def _help(group, *command: str) -> str:
    result = CliRunner().invoke(group, [*command, "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", result.output)


def test_run_help_lists_every_loss_and_every_dataset_reader():
    text = _help(distill, "run")
    assert f"KD loss spec: {', '.join(list_losses())}," in text
    for name in list_datasets():
        assert re.sub(r"\s+", " ", SPEC_EXAMPLES[name]) in text, name
    assert "images:PATH" in text  # the reader the hand-written help had left out


@pytest.mark.parametrize(("group", "command"), [(promptkit, "score"), (promptkit, "embed"), (distill, "teacher")])
def test_encoder_help_lists_every_encoder(group, command):
    text = _help(group, command)
    assert "Prompt encoder: " + ", ".join(ENCODER_SPECS[name] for name in list_encoders()) in text


def test_a_newly_registered_loss_appears_in_the_help(monkeypatch):
    monkeypatch.setitem(LOSSES, "toy_kd", KLDivergence)
    assert "toy_kd" in _help(distill, "run")
