"""benchmarks/make_sd_folder.py: SD 1.5 / 2.1 folders from their published configs, loaded as a user's are."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from prompt_kit.resources import prompts_dir
from tests.distill.conftest import DATA

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("make_sd_folder", ROOT / "benchmarks" / "make_sd_folder.py")
make_sd_folder = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_sd_folder)


@pytest.fixture(scope="module", params=["sd15", "sd21"])
def sd_folder(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sd") / request.param
    return request.param, make_sd_folder.make_sd_folder(request.param, folder, tiny=True)


def test_the_published_configs_are_the_real_architectures():
    sd15, sd21 = make_sd_folder.read_configs("sd15"), make_sd_folder.read_configs("sd21")
    for configs in (sd15, sd21):
        assert configs["unet"]["block_out_channels"] == [320, 640, 1280, 1280]
        assert configs["text_encoder"]["vocab_size"] == make_sd_folder.VOCAB_SIZE
        assert configs["tokenizer_config"]["model_max_length"] == 77
    assert sd15["unet"]["cross_attention_dim"] == 768 and sd15["text_encoder"]["hidden_size"] == 768
    assert sd21["unet"]["cross_attention_dim"] == 1024 and sd21["text_encoder"]["hidden_size"] == 1024
    assert sd21["unet"]["use_linear_projection"] and sd21["unet"]["attention_head_dim"] == [5, 10, 20, 20]
    assert sd21["scheduler"]["prediction_type"] == "v_prediction"
    assert sd15["scheduler"].get("prediction_type", "epsilon") == "epsilon"


def test_a_folder_keeps_the_structure_its_config_names(sd_folder):
    from diffusers import UNet2DConditionModel

    arch, folder = sd_folder
    published = make_sd_folder.read_configs(arch)
    unet = json.loads((folder / "unet" / "config.json").read_text())
    for key in ("down_block_types", "up_block_types", "in_channels", "sample_size", "flip_sin_to_cos"):
        assert unet[key] == published["unet"][key]
    assert unet.get("use_linear_projection", False) == published["unet"].get("use_linear_projection", False)
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == published["scheduler"]["_class_name"]
    record = json.loads((folder / "promptkit_sd_folder.json").read_text())
    assert record["arch"] == arch and record["tiny"] and record["weights"].startswith("random")
    from safetensors import safe_open

    (weights,) = (folder / "unet").glob("*.safetensors")
    with safe_open(str(weights), "pt") as handle:
        assert handle.get_slice(next(iter(handle.keys()))).get_dtype() == "F16"
    model = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
    assert list(model.config.block_out_channels) == unet["block_out_channels"]
    assert not list(folder.parent.glob(f".{folder.name}-*")), "the build folder was left behind"


def test_the_tokenizer_has_clips_size_and_pads_to_77(sd_folder):
    from transformers import CLIPTokenizer

    arch, folder = sd_folder
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
    assert len(tokenizer) == make_sd_folder.VOCAB_SIZE
    ids = tokenizer("a car parked beside the road", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and ids[0] == tokenizer.bos_token_id
    assert tokenizer.pad_token == ("!" if arch == "sd21" else "<|endoftext|>")


def test_embed_and_teacher_load_the_folder_as_a_users(sd_folder, runner, tmp_path):
    from cli.distill_cli import distill
    from cli.promptkit_cli import promptkit

    _, folder = sd_folder
    label = prompts_dir() / "camvid" / "label.yaml"
    out = tmp_path / "e.safetensors"
    embed = ["embed", str(label), "--encoder", f"clip:{folder}", "--out", str(out), "--no-cache"]
    embedded = runner.invoke(promptkit, embed)
    assert embedded.exit_code == 0, embedded.output
    args = ["teacher", "--prompts", str(label), "--pretrained", str(folder), "--data", DATA, "--size", "64x64",
            "--steps", "1", "--pretrain-denoiser", "0", "--out", str(tmp_path / "t"), "--set", "val_images=2",
            "--set", "panels=0"]  # fmt: skip
    trained = runner.invoke(distill, args)
    assert trained.exit_code == 0, trained.output
    assert json.loads((tmp_path / "t" / "metrics.json").read_text())["miou"] >= 0


def test_a_folder_that_exists_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="exists"):
        make_sd_folder.make_sd_folder("sd21", tmp_path, tiny=True)
