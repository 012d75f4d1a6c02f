"""Tiny teachers and a tiny Stable-Diffusion-style diffusers folder, all built offline."""

from __future__ import annotations

import pytest
import torch

from prompt_kit.class_embeddings import ClassEmbeddings


def random_embeddings(classes: int = 5, length: int = 4, dim: int = 24, seed: int = 0) -> ClassEmbeddings:
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(classes, length, dim, generator=generator)
    mask = torch.ones(classes, length, dtype=torch.int64)
    mask[:, -1] = 0  # a padding position
    return ClassEmbeddings(
        tokens=tokens, attention_mask=mask, pooled=torch.randn(classes, dim, generator=generator),
        class_names=[f"c{i}" for i in range(classes)], encoder="random",
    )  # fmt: skip


@pytest.fixture(scope="session")
def tiny_sd_full_folder(tmp_path_factory, tiny_sd_folder):
    """unet/ vae/ scheduler/ beside the tiny text_encoder/ and tokenizer/ (cross_attention_dim 32)."""
    import shutil

    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    folder = tmp_path_factory.mktemp("tiny-sd-full")
    for part in ("text_encoder", "tokenizer"):
        shutil.copytree(tiny_sd_folder / part, folder / part)
    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1, cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
    ).save_pretrained(folder / "unet")  # fmt: skip
    AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=8, scaling_factor=0.18215,
    ).save_pretrained(folder / "vae")  # fmt: skip
    DDPMScheduler(num_train_timesteps=1000, prediction_type="v_prediction").save_pretrained(folder / "scheduler")
    return folder
