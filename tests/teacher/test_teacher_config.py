"""The teacher config is a tagged union: each architecture holds only its own settings."""

from __future__ import annotations

import json

import pytest
import torch

from teacher import (
    DiffusionTeacherConfig,
    EmbeddingClassifiedNetwork,
    NetworkTeacherConfig,
    load_teacher,
    parse_teacher_config,
    save_teacher,
)
from teacher.checkpoint import CONFIG_NAME
from teacher.config import DIFFUSION_ONLY, NETWORK_DEFAULT, ClassEmbeddingSettings
from tests.teacher.conftest import random_embeddings

BASE = {"num_classes": 5, "embedding_dim": 24}


def test_architecture_picks_the_config_and_diffusion_is_the_default():
    assert isinstance(parse_teacher_config(BASE), DiffusionTeacherConfig)
    assert isinstance(parse_teacher_config({**BASE, "architecture": "diffusion"}), DiffusionTeacherConfig)
    network = parse_teacher_config({**BASE, "architecture": "network", "network": "tiny"})
    assert isinstance(network, NetworkTeacherConfig) and network.network == "tiny"


def test_each_config_holds_only_its_own_settings():
    network = set(NetworkTeacherConfig.model_fields)
    diffusion = set(DiffusionTeacherConfig.model_fields)
    shared = set(ClassEmbeddingSettings.model_fields) | {"architecture"}
    assert network & diffusion == shared
    assert network - shared == {"network"}
    assert {"pretrained", "latent", "extraction", "block_out_channels", "head_channels"} <= diffusion - shared
    assert set(DIFFUSION_ONLY) == diffusion - shared


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"architecture": "unet"}, "architecture must be diffusion or network"),
        ({"architecture": "network", "latent": "vae"}, "latent is a diffusion setting"),
        ({"architecture": "network", "head_channels": 16}, "head_channels is a diffusion setting"),
        ({"network": "tiny"}, "network is a setting of architecture network"),
        ({"architecture": "network", "network": "resnet9000"}, "unknown network 'resnet9000'"),
        ({"architecture": "network", "unknown_field": 1}, "unknown_field"),
    ],
)
def test_a_setting_of_the_other_architecture_is_refused_with_the_reason(fields, message):
    with pytest.raises(ValueError, match=message):
        parse_teacher_config({**BASE, **fields})


def test_a_network_folder_saved_before_the_union_still_loads(tmp_path):
    """Folders written while one config held both kinds carry every diffusion field at its default."""
    torch.manual_seed(0)
    model = EmbeddingClassifiedNetwork(NetworkTeacherConfig(**BASE, architecture="network", network="tiny")).eval()
    save_teacher(model, tmp_path / "t")
    saved = json.loads((tmp_path / "t" / CONFIG_NAME).read_text())
    assert not set(saved) & set(DIFFUSION_ONLY)
    old = {**saved, **DiffusionTeacherConfig(**BASE).model_dump(mode="json", exclude={"architecture"})}
    assert {"inversion", "block_out_channels", "pretrained"} <= set(old)
    (tmp_path / "t" / CONFIG_NAME).write_text(json.dumps(old))
    loaded = load_teacher(tmp_path / "t").eval()
    assert loaded.config == model.config
    embeddings, images = random_embeddings(5), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images, embeddings), model(images, embeddings))


def test_a_diffusion_folder_saved_before_the_union_still_loads():
    """Its ``network`` field sat at the default; a diffusion folder naming another network is not one of ours."""
    config = parse_teacher_config({**BASE, "network": NETWORK_DEFAULT})
    assert isinstance(config, DiffusionTeacherConfig) and "network" not in config.model_dump()
