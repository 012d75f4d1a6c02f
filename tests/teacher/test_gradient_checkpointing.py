"""Gradient checkpointing through a pretrained UNet: on by default where the gradient runs through it, and the
same logits and gradients as without it (only memory changes)."""

from __future__ import annotations

import pytest
import torch

from teacher.config import DiffusionTeacherConfig
from tests.teacher.test_inversion import _embeddings, make_sd_folder


@pytest.fixture(scope="module")
def sd21(tmp_path_factory):
    return make_sd_folder.make_sd_folder("sd21", tmp_path_factory.mktemp("sd-ckpt") / "sd21", "float32", tiny=True)


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"pretrained": "x"}, True),  # the text adapter trains through the frozen UNet
        ({"pretrained": "x", "text_adapter": False}, False),  # nothing upstream of the UNet is trained
        ({"pretrained": "x", "extraction": "inversion"}, False),  # the inversion runs without gradients
        ({}, False),  # a tiny UNet: small activations
        ({"pretrained": "x", "gradient_checkpointing": False}, False),
    ],
)
def test_checkpointing_is_on_where_the_gradient_crosses_a_pretrained_unet(fields, expected):
    assert DiffusionTeacherConfig(num_classes=3, embedding_dim=8, **fields).uses_gradient_checkpointing is expected


def test_checkpointing_changes_no_logit_and_no_gradient(sd21):
    from diffusers import UNet2DConditionModel

    from teacher.checkpoint import build_teacher

    dim = UNet2DConditionModel.load_config(sd21 / "unet")["cross_attention_dim"]
    embeddings = _embeddings(3, dim)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        config = DiffusionTeacherConfig(
            num_classes=3, embedding_dim=dim, pretrained=str(sd21), gradient_checkpointing=checkpointing
        )
        teacher = build_teacher(config).train()
        assert teacher.unet.is_gradient_checkpointing is checkpointing
        with torch.no_grad():  # a visible adapter, so its gradient is not near zero
            teacher.text_adapter.gamma.fill_(0.5)
        logits = teacher(images, embeddings)
        logits.logsumexp(1).mean().backward()
        results.append((logits.detach(), teacher.text_adapter.mlp[0].weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    assert results[0][1].abs().sum() > 0
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-4, atol=1e-6)
