"""EmbeddingClassifiedNetwork: a registered network whose classifier is the class embeddings."""

from __future__ import annotations

import json

import pytest
import torch

from cli.distill_cli import distill
from teacher import (
    EmbeddingClassifiedNetwork,
    NetworkTeacherConfig,
    TeacherFolder,
    load_teacher,
    parse_teacher_config,
    save_teacher,
)
from teacher.checkpoint import build_teacher
from tests.distill.conftest import DATA
from tests.teacher.conftest import random_embeddings
from tests.teacher.test_class_projection import with_copied_class
from tests.teacher.test_teacher import swapped


def tiny_network_teacher(**overrides) -> EmbeddingClassifiedNetwork:
    torch.manual_seed(0)
    config = NetworkTeacherConfig(num_classes=5, embedding_dim=24, architecture="network", network="tiny", **overrides)
    return build_teacher(config).eval()


def test_build_teacher_gives_the_network_with_an_embedding_classifier():
    teacher = tiny_network_teacher(class_projection="frozen")
    assert isinstance(teacher, EmbeddingClassifiedNetwork)
    assert not any(p.requires_grad for p in teacher.network.classifier.parameters())  # replaced, not trained
    with torch.no_grad():
        logits, features = teacher(torch.rand(2, 3, 32, 48), random_embeddings(), return_features=True)
    assert logits.shape == (2, 5, *features["decoder"].shape[-2:])
    assert {"encoder", "decoder"} <= set(features)


@pytest.mark.parametrize("projection", ["mlp", "linear", "frozen"])
def test_swapping_two_class_embeddings_swaps_the_network_teachers_predictions(projection):
    teacher = tiny_network_teacher(class_projection=projection)
    images, embeddings = torch.rand(2, 3, 32, 48), random_embeddings()
    with torch.no_grad():
        logits = teacher(images, embeddings)
        logits_swapped = teacher(images, swapped(embeddings, 1, 3))
    torch.testing.assert_close(logits_swapped, logits[:, [0, 3, 2, 1, 4]], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(logits_swapped, logits, atol=1e-3)


def test_frozen_network_teacher_cannot_tell_apart_identical_embeddings():
    teacher = tiny_network_teacher(class_projection="frozen")
    with torch.no_grad():
        logits = teacher(torch.rand(2, 3, 32, 48), with_copied_class(random_embeddings(), 1, 3))
    torch.testing.assert_close(logits[:, 1], logits[:, 3])
    assert not torch.allclose(logits[:, 1], logits[:, 2], atol=1e-3)


def test_the_whole_network_is_saved_and_loads_back(tmp_path):
    teacher = tiny_network_teacher(class_projection="frozen")
    with torch.no_grad():
        for parameter in teacher.network.backbone.parameters():
            parameter.add_(0.01)  # as training would move them
    images, embeddings = torch.rand(1, 3, 32, 48), random_embeddings()
    with torch.no_grad():
        logits = teacher(images, embeddings)
    save_teacher(teacher, tmp_path / "t")
    with torch.no_grad():
        torch.testing.assert_close(load_teacher(tmp_path / "t").eval()(images, embeddings), logits)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"network": "resnet9000"}, "unknown network 'resnet9000'"),
        ({"latent": "efficientnet_lite0"}, "latent is a diffusion setting"),
        ({"pretrained": "/sd"}, "pretrained is a diffusion setting"),
        ({"architecture": "unet"}, "architecture"),
    ],
)
def test_network_settings_that_do_not_fit_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        parse_teacher_config({"num_classes": 5, "embedding_dim": 24, "architecture": "network", **overrides})


def test_distill_teacher_trains_a_prompt_conditioned_network(runner, tmp_path):
    from prompt_kit.resources import prompts_dir

    out = tmp_path / "teacher"
    args = ["teacher", "--prompts", str(prompts_dir() / "camvid" / "label.yaml"), "--data", DATA, "--out", str(out)]
    args += ["--steps", "8", "--size", "32x48", "--batch-size", "4", "--set", "val_images=8", "--set", "eval_every=8"]
    args += ["--set", "model.architecture=network", "--set", "model.network=tiny"]
    args += ["--set", "model.class_projection=frozen"]
    result = runner.invoke(distill, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["miou"] > 0 and metrics["history"][-1]["step"] == 8
    assert not (out / "checkpoints" / "denoiser").exists()  # no UNet, so no denoiser phase
    teacher = TeacherFolder(out).load()
    assert teacher.kind == "prompt_network" and teacher.class_names[0] == "Sky"
    with torch.no_grad():
        logits, features = teacher(torch.rand(1, 3, 32, 48), return_features=True)
    assert logits.shape[1] == len(teacher.class_names) and "decoder" in features
