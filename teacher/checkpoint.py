"""Build a teacher (tiny or from a local Stable Diffusion folder), save it and load it back.

A teacher folder holds ``teacher_config.json`` and ``teacher.safetensors``. When the UNet comes
frozen from a pretrained folder, only the trained parts are saved and the folder path is kept in
the config: a Stable Diffusion UNet is gigabytes that the user already has.
"""

from __future__ import annotations

from pathlib import Path

import pydantic
from safetensors.torch import save as safetensors_save

from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes, atomic_write_text
from prompt_kit.readers import read_json, read_safetensors
from prompt_kit.yaml_files import describe_validation_error
from teacher.config import TEACHER_FORMAT, DiffusionTeacherConfig, TeacherConfig, parse_teacher_config
from teacher.embedding_classified_network import EmbeddingClassifiedNetwork
from teacher.model import DiffusionSegTeacher

PromptTeacherModel = DiffusionSegTeacher | EmbeddingClassifiedNetwork

CONFIG_NAME = "teacher_config.json"
WEIGHTS_NAME = "teacher.safetensors"


def check_diffusers_folder(folder: Path) -> None:
    missing = [name for name in ("unet", "scheduler") if not (folder / name).is_dir()]
    if missing:
        raise PromptKitError(
            f"{folder} is not a Stable Diffusion diffusers folder (no {', '.join(missing)}/): "
            "pass the folder that holds unet/, vae/, scheduler/, text_encoder/ and tokenizer/"
        )


def build_teacher(config: TeacherConfig, imagenet: bool = True) -> PromptTeacherModel:
    """A fresh teacher: the tiny pixel-space UNet, the UNet/VAE/scheduler of ``config.pretrained``, or a network.

    ``imagenet=False`` skips a network's ImageNet weights (a saved teacher's own replace them).
    """
    if not isinstance(config, DiffusionTeacherConfig):
        return EmbeddingClassifiedNetwork(config, imagenet=imagenet)
    if config.pretrained is None:
        return DiffusionSegTeacher(config)
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    folder = Path(config.pretrained)
    check_diffusers_folder(folder)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
    vae = AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True) if (folder / "vae").is_dir() else None
    scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler", local_files_only=True)
    return DiffusionSegTeacher(config, unet=unet, vae=vae, scheduler=scheduler)


def saved_state_keys(teacher: PromptTeacherModel) -> list[str]:
    """The state-dict keys a teacher folder (and a training checkpoint) holds: not the frozen pretrained parts."""
    if isinstance(teacher, EmbeddingClassifiedNetwork):
        return list(teacher.state_dict())  # trained end to end
    skip = (
        ("vae.",)
        + (() if teacher.config.finetune_latent else ("latent_encoder.",))
        + (("unet.",) if teacher.config.pretrained and teacher.config.freeze_unet else ())
    )
    return [key for key in teacher.state_dict() if not key.startswith(skip)]


def _saved_state(teacher: PromptTeacherModel) -> dict:
    keep = set(saved_state_keys(teacher))
    return {key: value.detach().cpu().contiguous() for key, value in teacher.state_dict().items() if key in keep}


def save_teacher(teacher: PromptTeacherModel, folder: str | Path) -> Path:
    """Write the config and the weights (safetensors, atomically) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / WEIGHTS_NAME, safetensors_save(_saved_state(teacher)))
    atomic_write_text(folder / CONFIG_NAME, teacher.config.model_dump_json(indent=2))
    return folder


def describe(exc: ValueError) -> str:
    return describe_validation_error(exc) if isinstance(exc, pydantic.ValidationError) else str(exc).splitlines()[0]


def load_teacher(folder: str | Path) -> PromptTeacherModel:
    """A teacher saved by :func:`save_teacher`; a folder that is not one is a clear error."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise PromptKitError(
            f"{folder} is not a teacher folder (needs {CONFIG_NAME} and {WEIGHTS_NAME}): "
            "train one with `distill teacher --out DIR`"
        )
    saved = read_json(config_path, "teacher config")
    if not isinstance(saved, dict):
        raise PromptKitError(f"{config_path} is not a teacher config: expected a JSON object")
    try:
        # a diffusion config saved without format_version predates it (format 1)
        diffusion = saved.get("architecture", "diffusion") == "diffusion"
        config = parse_teacher_config({"format_version": 1, **saved} if diffusion else saved)
    except ValueError as exc:
        raise PromptKitError(f"{config_path} is not a valid teacher config: {describe(exc)}") from exc
    tiny = isinstance(config, DiffusionTeacherConfig) and config.pretrained is None
    if tiny and config.format_version != TEACHER_FORMAT:
        # its weights would load into a UNet with another head layout and predict differently, silently
        raise PromptKitError(
            f"{folder} holds a tiny teacher of format {config.format_version}, saved before promptkit gave its "
            f"attention layers heads of attention_head_dim channels (format {TEACHER_FORMAT}): retrain it with "
            "`distill teacher`"
        )
    teacher = build_teacher(config, imagenet=False)
    state = read_safetensors(weights_path, "teacher weights")
    missing, unexpected = teacher.load_state_dict(state, strict=False)
    expected_missing = {key for key in teacher.state_dict() if key not in _saved_state(teacher)}
    really_missing = [key for key in missing if key not in expected_missing]
    if really_missing or unexpected:
        raise PromptKitError(
            f"{weights_path} does not fit its config ({len(really_missing)} missing, {len(unexpected)} "
            "unexpected tensors): the folder is damaged or from another version"
        )
    return teacher
