"""On a GPU: the Stable Diffusion teacher with its frozen parts in half precision, as a GPU user runs it.

Skipped without CUDA (this project's CI has none); ``scripts/gpu_check.sh`` runs these on a GPU.
"""

from __future__ import annotations

import pytest
import torch

from prompt_kit.encoders import create_encoder, encode_prompt_set
from prompt_kit.prompt_set import load_prompt_set
from prompt_kit.resources import prompts_dir
from teacher.checkpoint import build_teacher
from teacher.config import DiffusionTeacherConfig

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (scripts/gpu_check.sh)"),
]


def test_half_precision_frozen_parts_on_cuda_match_the_cpu_teacher(tiny_sd_full_folder):
    embeddings = encode_prompt_set(
        load_prompt_set(prompts_dir() / "camvid" / "label.yaml"), create_encoder(f"clip:{tiny_sd_full_folder}")
    )
    folder = str(tiny_sd_full_folder)
    config = DiffusionTeacherConfig(num_classes=11, embedding_dim=32, pretrained=folder, head_channels=16)
    torch.manual_seed(0)
    teacher = build_teacher(config).eval()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = teacher(images, embeddings)
        teacher.to("cuda")
        teacher.unet.to(torch.float16)
        teacher.vae.to(torch.float16)
        with torch.autocast("cuda", dtype=torch.float16):
            logits = teacher(images.to("cuda"), embeddings.to("cuda"))
    assert logits.device.type == "cuda" and torch.isfinite(logits).all()
    assert (logits.float().cpu().argmax(1) == expected.argmax(1)).float().mean() > 0.95
    assert torch.allclose(logits.float().cpu(), expected, atol=0.05, rtol=0.05)
