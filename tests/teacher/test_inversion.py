"""DIFF's extraction (teacher/inversion.py): the DDIM arithmetic against diffusers' schedulers, the kept
features against hooks on a plain UNet call, and the teacher that trains on them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from prompt_kit.errors import PromptKitError
from teacher.config import DiffusionTeacherConfig, parse_teacher_config
from teacher.inversion import DIFF_SAVE_STEPS, DIFF_TIMESTEPS, InversionConfig, ddim_move, epsilon_from_output

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("make_sd_folder", ROOT / "benchmarks" / "make_sd_folder.py")
make_sd_folder = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_sd_folder)

SHORT = {"timesteps": [30, 20, 11, 1], "save_steps": [3, 1], "aggregation_channels": {8: 16, 16: 16, 32: 16}}


@pytest.fixture(scope="module", params=["sd15", "sd21"])
def sd_folder(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sd-inversion") / request.param
    return request.param, make_sd_folder.make_sd_folder(request.param, folder, dtype="float32", tiny=True)


def _teacher(folder: Path, classes: int = 3, **inversion):
    from diffusers import UNet2DConditionModel

    from teacher.checkpoint import build_teacher

    dim = UNet2DConditionModel.load_config(folder / "unet")["cross_attention_dim"]
    config = DiffusionTeacherConfig(
        num_classes=classes,
        embedding_dim=dim,
        pretrained=str(folder),
        extraction="inversion",
        inversion={**SHORT, **inversion},
        head_channels=16,
    )
    torch.manual_seed(0)
    return build_teacher(config)


def _embeddings(classes: int, dim: int, length: int = 4):
    from prompt_kit.class_embeddings import ClassEmbeddings

    generator = torch.Generator().manual_seed(0)
    tokens = torch.randn(classes, length, dim, generator=generator)
    return ClassEmbeddings(
        class_names=[f"c{i}" for i in range(classes)],
        tokens=tokens,
        attention_mask=torch.ones(classes, length, dtype=torch.long),
        pooled=tokens.mean(1),
        encoder="test",
        prompt_set_hash="0",
    )


def test_diffs_defaults_are_its_config():
    config = InversionConfig()
    assert len(DIFF_TIMESTEPS) == 37 and DIFF_TIMESTEPS[0] == 160 and DIFF_TIMESTEPS[-1] == 1
    # loop index i evaluates the UNet at the i-th lowest timestep (0 first): 33 -> 91, ..., 3 -> 3
    evaluated = [config.passes[i][0] for i in DIFF_SAVE_STEPS]
    assert evaluated == [91, 52, 30, 22, 18, 14, 11, 7, 3]
    assert len(config.passes) == 34  # passes after the last kept one change nothing that is kept


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"timesteps": [10, 20]}, "strictly decreasing"),
        ({"timesteps": [3, 2, 1], "save_steps": [3]}, "not a pass"),
        ({"save_steps": [3, 3]}, "repeats"),
    ],
)
def test_a_bad_inversion_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        InversionConfig(**bad)


def test_a_denoising_move_is_diffusers_ddim_step_with_its_noise():
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False)
    scheduler.set_timesteps(50)
    generator = torch.Generator().manual_seed(0)
    sample, output, noise = (torch.randn(2, 4, 8, 8, generator=generator) for _ in range(3))
    t, previous = 401, 381
    expected = scheduler.step(output, t, sample, eta=0.7, variance_noise=noise).prev_sample
    alphas = scheduler.alphas_cumprod
    moved = ddim_move(sample, output, alphas[t], alphas[previous], eta=0.7, noise=noise)
    torch.testing.assert_close(moved, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_an_inversion_move_is_diffusers_inverse_step(prediction_type):
    from diffusers import DDIMInverseScheduler

    scheduler = DDIMInverseScheduler(beta_schedule="scaled_linear", clip_sample=False, prediction_type=prediction_type)
    scheduler.set_timesteps(50)  # a step of 20: from t - 20 up to t
    generator = torch.Generator().manual_seed(1)
    sample, output = (torch.randn(2, 4, 8, 8, generator=generator) for _ in range(2))
    t = 161
    expected = scheduler.step(output, t, sample).prev_sample
    alphas = scheduler.alphas_cumprod
    epsilon = epsilon_from_output(output, sample, alphas[t - 20], prediction_type)
    torch.testing.assert_close(ddim_move(sample, epsilon, alphas[t - 20], alphas[t]), expected, rtol=1e-5, atol=1e-5)


def test_the_kept_features_are_what_hooks_on_a_plain_unet_call_see(sd_folder):
    """One pass at t = 0: each kept ResNet map is its block's output minus its shortcut (the residual branch),
    each transformer map the block's own output, on diffusers' UNet called directly."""
    _, folder = sd_folder
    teacher = _teacher(folder, timesteps=[1], save_steps=[0]).eval()
    embeddings = _embeddings(3, teacher.config.embedding_dim)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    latents = teacher.encode_images(images)
    states, mask, token_to_class = teacher.conditioning(embeddings, 2, latents.device, latents.dtype)
    teacher.recorder.start(token_to_class, tuple(latents.shape[-2:]), None)
    kept, _ = teacher.inversion.kept_features(latents, states, mask, teacher.recorder)

    unet = teacher.unet
    seen: dict = {}
    handles = []
    for i, block in enumerate(unet.up_blocks):
        for j, resnet in enumerate(block.resnets):
            handles.append(resnet.register_forward_hook(lambda m, a, out, key=(i, j): seen.__setitem__(key, (a, out))))
        for j, attention in enumerate(getattr(block, "attentions", None) or []):
            handles.append(
                attention.transformer_blocks[0].register_forward_hook(
                    lambda m, a, out, key=("attn", i, j): seen.__setitem__(key, out)
                )
            )
    with torch.no_grad():
        unet(latents, torch.zeros(2, dtype=torch.long), encoder_hidden_states=states, encoder_attention_mask=mask)
    for handle in handles:
        handle.remove()
    checked = 0
    for (kind, (i, j)), feature in kept[0].items():
        if kind == "resnet":
            (inputs, temb), output = seen[(i, j)]
            resnet = unet.up_blocks[i].resnets[j]
            shortcut = resnet.conv_shortcut(inputs) if resnet.conv_shortcut is not None else inputs
            torch.testing.assert_close(feature, output * resnet.output_scale_factor - shortcut, rtol=1e-4, atol=1e-4)
        else:
            torch.testing.assert_close(feature, seen[("attn", i, j)])
        checked += 1
    levels = teacher.inversion.levels
    expected = sum(
        len(unet.up_blocks[i].resnets) + len(getattr(unet.up_blocks[i], "attentions", None) or []) for i in levels
    )
    assert checked == expected > 0


def test_each_pass_starts_where_the_last_ddim_move_ended(sd_folder):
    _, folder = sd_folder
    teacher = _teacher(folder, timesteps=[30, 1], save_steps=[1], eta=0.0).eval()
    embeddings = _embeddings(3, teacher.config.embedding_dim)
    latents = teacher.encode_images(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)))
    states, mask, token_to_class = teacher.conditioning(embeddings, 1, latents.device, latents.dtype)
    inputs = []
    handle = teacher.unet.register_forward_pre_hook(lambda m, args, kwargs: inputs.append(args), with_kwargs=True)
    teacher.recorder.start(token_to_class, tuple(latents.shape[-2:]), None)
    teacher.inversion.kept_features(latents, states, mask, teacher.recorder)
    handle.remove()
    assert [int(args[1][0]) for args in inputs] == [0, 1]  # the UNet runs at t = 0, then t = 1; 30 is never needed
    with torch.no_grad():
        output = teacher.unet(latents, torch.zeros(1, dtype=torch.long), encoder_hidden_states=states).sample
    alphas = teacher.inversion.alphas
    epsilon = epsilon_from_output(output, latents, alphas[0], teacher.inversion.prediction_type)
    torch.testing.assert_close(inputs[1][0], ddim_move(latents, epsilon, alphas[0], alphas[1]), rtol=1e-5, atol=1e-5)


def test_prediction_epsilon_reads_a_v_prediction_unet_as_diff_does(sd_folder):
    arch, folder = sd_folder
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    outputs = {}
    for prediction in ("scheduler", "epsilon"):
        teacher = _teacher(folder, prediction=prediction).eval()
        embeddings = _embeddings(3, teacher.config.embedding_dim)
        with torch.no_grad():
            outputs[prediction] = teacher(images, embeddings)
    assert teacher.inversion.prediction_type == "epsilon"
    same = torch.allclose(outputs["scheduler"], outputs["epsilon"])
    assert same == (arch == "sd15")  # SD 1.5 predicts epsilon; SD 2.1's v-prediction is converted unless told not to


def test_the_teacher_is_deterministic_trains_its_aggregation_and_head_and_round_trips(sd_folder, tmp_path):
    from teacher.checkpoint import load_teacher, save_teacher

    _, folder = sd_folder
    teacher = _teacher(folder)
    embeddings = _embeddings(3, teacher.config.embedding_dim)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    logits, named = teacher(images, embeddings, return_features=True)
    assert logits.shape == (2, 3, 16, 16)
    assert {"decoder", "attention"} <= set(named) and all(name in named for name in ("up1", "up2", "up3"))
    logits.logsumexp(1).mean().backward()
    trained = {name for name, p in teacher.named_parameters() if p.grad is not None}
    assert any(name.startswith("inversion.aggregate") for name in trained)
    assert not any(name.startswith(("unet.", "vae.")) for name in trained)
    teacher.eval()
    with torch.no_grad():
        first = teacher(images, embeddings)
        torch.testing.assert_close(teacher(images, embeddings), first)  # the eta noise is seeded
        save_teacher(teacher, tmp_path / "t")
        torch.testing.assert_close(load_teacher(tmp_path / "t").eval()(images, embeddings), first)


def test_bytes_per_view_counts_every_kept_map(sd_folder):
    _, folder = sd_folder
    extractor = _teacher(folder).inversion
    total = sum(channels * (8 // 2 ** (3 - i)) ** 2 for i, channels in extractor.in_channels.items())
    assert extractor.bytes_per_view((8, 8)) == 2 * total


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"resnets": [[7, 0]]}, "up block 7 does not exist"),
        ({"transformer_blocks": [[0, 0]]}, "has no transformer block 0"),
        ({"timesteps": [1200, 1], "save_steps": [0]}, "past the scheduler's last"),
    ],
)
def test_a_layer_or_timestep_the_unet_lacks_is_a_one_line_error(sd_folder, bad, message):
    _, folder = sd_folder
    with pytest.raises(PromptKitError, match=message):
        _teacher(folder, **bad)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({}, "reads a frozen, pretrained UNet"),
        ({"pretrained": "x", "text_adapter": True}, "text_adapter trains through every UNet pass"),
        ({"pretrained": "x", "freeze_unet": False}, "reads a frozen, pretrained UNet"),
        ({"architecture": "network"}, "extraction is a diffusion setting"),
    ],
)
def test_the_config_refuses_what_inversion_cannot_train(fields, message):
    with pytest.raises(ValueError, match=message):
        parse_teacher_config({"num_classes": 3, "embedding_dim": 8, "extraction": "inversion", **fields})


def test_distill_teacher_trains_an_inversion_teacher_from_the_command_line(sd_folder, runner, tmp_path):
    from cli.distill_cli import distill
    from prompt_kit.resources import prompts_dir
    from tests.distill.conftest import DATA

    _, folder = sd_folder
    args = ["teacher", "--prompts", str(prompts_dir() / "camvid" / "label.yaml"), "--pretrained", str(folder),
            "--data", DATA, "--size", "64x64", "--steps", "1", "--pretrain-denoiser", "0", "--out", str(tmp_path / "t"),
            "--set", "val_images=2", "--set", "panels=0", "--set", "batch_size=2",
            "--set", "model.extraction=inversion", "--set", "model.inversion.timesteps=[20, 5, 1]",
            "--set", "model.inversion.save_steps=[2, 0]", "--set", "model.head_channels=16"]  # fmt: skip
    trained = runner.invoke(distill, args)
    assert trained.exit_code == 0, trained.output
    saved = json.loads((tmp_path / "t" / "teacher_config.json").read_text())
    assert saved["extraction"] == "inversion" and saved["inversion"]["save_steps"] == [2, 0]
    assert json.loads((tmp_path / "t" / "metrics.json").read_text())["miou"] >= 0


def _controlled_walk(teacher, images, embeddings, labels):
    latents = teacher.encode_images(images)
    states, mask, token_to_class = teacher.conditioning(embeddings, images.shape[0], latents.device, latents.dtype)
    teacher.recorder.start(token_to_class, tuple(latents.shape[-2:]), None)
    control = None
    if labels is not None:
        control = teacher.path_control(labels, embeddings, latents.shape[-2:], latents.dtype)
    return teacher.inversion.kept_features(latents, states, mask, teacher.recorder, control)[0]


def test_path_control_steers_the_walk_only_inside_labelled_regions(sd_folder):
    _, folder = sd_folder
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    ignored = torch.full((2, 64, 64), 255)
    car = torch.zeros(2, 64, 64, dtype=torch.long)  # class 0 everywhere
    results = {}
    for name, scale, labels in [("plain", 5.0, None), ("ignored", 5.0, ignored), ("unguided", 0.0, car),
                                ("steered", 5.0, car)]:  # fmt: skip
        teacher = _teacher(folder, guidance_scale=scale, path_control=True, save_steps=[3, 0]).eval()
        embeddings = _embeddings(3, teacher.config.embedding_dim)
        results[name] = _controlled_walk(teacher, images, embeddings, labels)
    first, last = 0, 3
    resnet = next(key for key in results["plain"][last] if key[0] == "resnet")
    block = next(key for key in results["plain"][last] if key[0] == "transformer")
    # no labelled pixel: no class copy runs, the walk is the plain one
    for key in results["plain"][last]:
        torch.testing.assert_close(results["ignored"][last][key], results["plain"][last][key])
    # guidance 0: every class move is the plain move, so the walk (and the resnet maps) stay the plain ones ...
    torch.testing.assert_close(results["unguided"][last][resnet], results["plain"][last][resnet])
    # ... while the transformer maps add the class copy (DIFF sums the copies)
    assert not torch.allclose(results["unguided"][last][block], results["plain"][last][block])
    # guided: the first pass starts from the same latent, later passes from a steered one
    torch.testing.assert_close(results["steered"][first][resnet], results["plain"][first][resnet])
    assert not torch.allclose(results["steered"][last][resnet], results["plain"][last][resnet], atol=1e-5)


def test_path_control_trains_both_branches_from_the_command_line(sd_folder, runner, tmp_path):
    from cli.distill_cli import distill
    from prompt_kit.resources import prompts_dir
    from tests.distill.conftest import DATA

    _, folder = sd_folder
    args = ["teacher", "--prompts", str(prompts_dir() / "camvid" / "label.yaml"), "--pretrained", str(folder),
            "--data", DATA, "--size", "64x64", "--steps", "2", "--pretrain-denoiser", "0", "--out", str(tmp_path / "t"),
            "--set", "val_images=2", "--set", "panels=0", "--set", "batch_size=2", "--set", "model.head_channels=16",
            "--set", "model.extraction=inversion", "--set", "model.inversion.timesteps=[5, 1]",
            "--set", "model.inversion.save_steps=[1]", "--set", "model.inversion.path_control=true"]  # fmt: skip
    trained = runner.invoke(distill, args)
    assert trained.exit_code == 0, trained.output
    assert json.loads((tmp_path / "t" / "teacher_config.json").read_text())["inversion"]["path_control"] is True
