"""The teacher's contract: shapes, class embeddings that act at inference, real-weights loading."""

from __future__ import annotations

import pytest
import torch

from prompt_kit import PromptKitError
from prompt_kit.class_embeddings import ClassEmbeddings
from teacher import DiffusionSegTeacher, DiffusionTeacherConfig, build_teacher, load_teacher, save_teacher
from tests.teacher.conftest import random_embeddings

TINY = dict(block_out_channels=(16, 32, 32), attention_levels=(False, True, True), head_channels=16, class_dim=16)


def tiny_teacher(**overrides) -> DiffusionSegTeacher:
    torch.manual_seed(0)
    return DiffusionSegTeacher(DiffusionTeacherConfig(num_classes=5, embedding_dim=24, **{**TINY, **overrides})).eval()


def swapped(embeddings: ClassEmbeddings, i: int, j: int) -> ClassEmbeddings:
    order = list(range(embeddings.num_classes))
    order[i], order[j] = j, i
    return ClassEmbeddings(
        tokens=embeddings.tokens[order], attention_mask=embeddings.attention_mask[order],
        pooled=embeddings.pooled[order], class_names=[embeddings.class_names[k] for k in order], encoder="swapped",
    )  # fmt: skip


@pytest.mark.parametrize("conditioning", ["tokens", "pooled"])
def test_logits_at_a_quarter_of_the_input(conditioning):
    teacher = tiny_teacher(conditioning=conditioning)
    with torch.no_grad():
        logits, features = teacher(torch.rand(2, 3, 32, 48), random_embeddings(), return_features=True)
    assert logits.shape == (2, 5, 8, 12)
    assert features["decoder"].shape[-2:] == (8, 12) and features["attention"].shape == (2, 5, 8, 12)


@pytest.mark.parametrize("conditioning", ["tokens", "pooled"])
def test_swapping_two_class_embeddings_swaps_their_logits(conditioning):
    teacher = tiny_teacher(conditioning=conditioning)
    images, embeddings = torch.rand(2, 3, 32, 32), random_embeddings()
    with torch.no_grad():
        logits = teacher(images, embeddings)
        logits_swapped = teacher(images, swapped(embeddings, 1, 3))
    expected = logits[:, [0, 3, 2, 1, 4]]
    assert torch.allclose(logits_swapped, expected, atol=1e-4)
    assert not torch.allclose(logits_swapped, logits, atol=1e-3)


def test_attention_maps_split_each_position_over_the_classes():
    teacher = tiny_teacher()
    with torch.no_grad():
        _, maps = teacher.unet_pass(torch.rand(1, 3, 32, 32), random_embeddings())
    assert len(maps) == teacher.cross_attention_layers > 0
    for attention in maps:
        assert torch.allclose(attention.sum(1), torch.ones_like(attention.sum(1)), atol=1e-4)


def test_teacher_output_does_not_depend_on_the_rest_of_the_batch():
    teacher = tiny_teacher()
    images, embeddings = torch.rand(3, 3, 32, 32), random_embeddings()
    with torch.no_grad():
        together = teacher(images, embeddings)
        alone = teacher(images[1:2], embeddings)
    assert torch.allclose(together[1:2], alone, atol=1e-4)


def test_wrong_class_count_or_dimension_is_a_clear_error():
    teacher = tiny_teacher()
    with pytest.raises(PromptKitError, match="predicts 5 classes but the class embeddings have 4"):
        teacher(torch.rand(1, 3, 32, 32), random_embeddings(classes=4))
    with pytest.raises(PromptKitError, match="have 16 dimensions"):
        teacher(torch.rand(1, 3, 32, 32), random_embeddings(dim=16))
    with pytest.raises(PromptKitError, match="not a multiple of 16"):
        teacher(torch.rand(1, 3, 30, 32), random_embeddings())


def test_save_and_load_give_the_same_logits(tmp_path):
    teacher = tiny_teacher()
    save_teacher(teacher, tmp_path / "t")
    loaded = load_teacher(tmp_path / "t").eval()
    images, embeddings = torch.rand(1, 3, 32, 32), random_embeddings()
    with torch.no_grad():
        assert torch.equal(teacher(images, embeddings), loaded(images, embeddings))


def test_a_folder_that_is_not_a_teacher(tmp_path):
    with pytest.raises(PromptKitError, match="is not a teacher folder"):
        load_teacher(tmp_path)


def test_pretrained_stable_diffusion_folder(tiny_sd_full_folder, tmp_path):
    from prompt_kit.encoders import create_encoder, encode_prompt_set
    from prompt_kit.prompt_set import load_prompt_set
    from prompt_kit.resources import prompts_dir

    embeddings = encode_prompt_set(
        load_prompt_set(prompts_dir() / "camvid" / "label.yaml"), create_encoder(f"clip:{tiny_sd_full_folder}")
    )
    folder = str(tiny_sd_full_folder)
    config = DiffusionTeacherConfig(num_classes=11, embedding_dim=32, pretrained=folder, head_channels=16)
    teacher = build_teacher(config).eval()
    assert teacher.vae is not None and teacher.scheduler.config.prediction_type == "v_prediction"
    assert not any(p.requires_grad for p in teacher.unet.parameters())
    assert not any(p.requires_grad for p in teacher.vae.parameters())
    assert teacher.input_multiple == 4
    images = torch.rand(2, 3, 32, 32)
    # images enter the VAE in [-1, 1] and leave scaled by its scaling factor
    expected = teacher.vae.encode(images * 2 - 1).latent_dist.mean * 0.18215
    assert torch.allclose(teacher.encode_images(images), expected, atol=1e-5)
    with torch.no_grad():
        logits = teacher(images, embeddings)
    assert logits.shape == (2, 11, 8, 8)
    save_teacher(teacher, tmp_path / "t")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "t" / "teacher.safetensors"), framework="pt") as handle:
        assert not any(key.startswith(("unet.", "vae.")) for key in handle.keys())  # noqa: SIM118
    with torch.no_grad():
        assert torch.allclose(load_teacher(tmp_path / "t").eval()(images, embeddings), logits, atol=1e-5)


def test_pretrained_folder_without_a_unet(tmp_path):
    with pytest.raises(PromptKitError, match="not a Stable Diffusion diffusers folder"):
        build_teacher(DiffusionTeacherConfig(num_classes=3, embedding_dim=8, pretrained=str(tmp_path)))


def test_attention_heads_have_the_configured_width():
    # diffusers reads its `attention_head_dim` argument as a head *count*; the config means channels per head
    teacher = tiny_teacher(block_out_channels=(16, 32, 64), attention_head_dim=16)
    attention = [m for m in teacher.unet.modules() if m.__class__.__name__ == "Attention"]
    assert attention
    for layer in attention:
        assert layer.inner_dim // layer.heads == 16, (layer.inner_dim, layer.heads)


def test_a_tiny_teacher_saved_before_the_head_fix_is_refused(tmp_path):
    import json

    save_teacher(tiny_teacher(), tmp_path / "t")
    assert isinstance(load_teacher(tmp_path / "t"), DiffusionSegTeacher)
    config_path = tmp_path / "t" / "teacher_config.json"
    saved = json.loads(config_path.read_text())
    assert saved["format_version"] == 2
    del saved["format_version"]  # what a teacher folder written by an older promptkit holds
    config_path.write_text(json.dumps(saved))
    with pytest.raises(PromptKitError, match="retrain it"):
        load_teacher(tmp_path / "t")


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "efficientnet_lite2"])
def test_a_teacher_on_frozen_imagenet_features(backbone, tmp_path):
    """The UNet denoises a pretrained backbone's feature map; the backbone stays frozen and out of the folder."""
    from distill.training.prompt_teacher import denoiser_loss
    from networks.efficientnet_lite import imagenet_weights_path

    teacher = tiny_teacher(latent=backbone, latent_stride=8)
    assert teacher.input_multiple == 8 * 4 and teacher.latent_encoder is not None
    embeddings = random_embeddings()
    images = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    latent = teacher.encode_images(images)
    assert latent.shape == (2, teacher.latent_encoder.channels, 8, 12)
    assert abs(latent.mean().item()) < 1e-3 and abs(latent.std().item() - 1) < 0.05  # standardised like SD's latent
    # the frozen backbone is the shipped ImageNet network, not a random one
    shipped = torch.load(imagenet_weights_path(int(backbone[-1])), map_location="cpu", weights_only=True)
    torch.testing.assert_close(teacher.latent_encoder.stem[0].weight, shipped["_conv_stem.weight"])
    teacher.train()
    loss = denoiser_loss(teacher, embeddings, images)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in teacher.unet.parameters())
    assert all(p.grad is None for p in teacher.latent_encoder.parameters()) and not teacher.latent_encoder.training
    teacher.eval()
    with torch.no_grad():
        logits = teacher(images, embeddings)
        swapped_logits = teacher(images, swapped(embeddings, 1, 3))
    assert logits.shape == (2, 5, 16, 24)
    torch.testing.assert_close(swapped_logits[:, [0, 3, 2, 1, 4]], logits, atol=1e-4, rtol=1e-4)
    save_teacher(teacher, tmp_path / "t")
    from safetensors.torch import load_file

    assert not [key for key in load_file(str(tmp_path / "t" / "teacher.safetensors")) if "latent_encoder" in key]
    with torch.no_grad():
        torch.testing.assert_close(load_teacher(tmp_path / "t").eval()(images, embeddings), logits)


def test_a_latent_that_does_not_fit_is_a_clear_error():
    with pytest.raises(ValueError, match="latent vae needs pretrained"):
        DiffusionTeacherConfig(num_classes=5, embedding_dim=24, latent="vae")
    with pytest.raises(ValueError, match="trains its own UNet"):
        DiffusionTeacherConfig(num_classes=5, embedding_dim=24, latent="efficientnet_lite0", pretrained="/sd")


def test_a_finetuned_feature_latent_trains_and_is_saved(tmp_path):
    """finetune_latent: the segmentation loss reaches the backbone, the denoiser's does not, and the folder keeps it."""
    from distill.training.prompt_teacher import denoiser_loss

    teacher = tiny_teacher(latent="efficientnet_lite0", latent_stride=8, finetune_latent=True)
    embeddings = random_embeddings()
    images = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    teacher.train()
    denoiser_loss(teacher, embeddings, images).backward()
    assert all(p.grad is None for p in teacher.latent_encoder.parameters())
    teacher(images, embeddings).logsumexp(1).mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in teacher.latent_encoder.parameters())
    assert not teacher.latent_encoder.training  # ImageNet BatchNorm statistics kept
    with torch.no_grad():
        for p in teacher.latent_encoder.parameters():
            p.add_(0.01)  # as training would move them
    teacher.eval()
    with torch.no_grad():
        logits = teacher(images, embeddings)
    save_teacher(teacher, tmp_path / "t")
    with torch.no_grad():
        torch.testing.assert_close(load_teacher(tmp_path / "t").eval()(images, embeddings), logits)


def test_finetune_latent_needs_a_backbone_latent():
    with pytest.raises(ValueError, match="finetune_latent needs a backbone latent"):
        DiffusionTeacherConfig(num_classes=3, embedding_dim=8, finetune_latent=True)
