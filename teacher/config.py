"""TeacherConfig: every choice that shapes the teacher, validated, with CPU-friendly defaults.

A tagged union on ``architecture``: :class:`DiffusionTeacherConfig` (a UNet pass conditioned on the
prompts) or :class:`NetworkTeacherConfig` (a segmentation network whose classifier is the class
embeddings). Each holds only its own settings, so a diffusion field given to a network teacher is
refused by type, with the reason, not by a list of checks.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, TypeAdapter, ValidationError, model_validator
from pydantic_core import to_jsonable_python

from prompt_kit.bounds import MAX_CHANNELS, STRICT, Channels, Seed, real
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.errors import PromptKitError
from teacher.inversion import InversionConfig

ClassProjection = Literal["mlp", "linear", "frozen"]
TEACHER_FORMAT = 2  # bumped when the same config would build a different tiny teacher


class ClassEmbeddingSettings(BaseModel):
    """What every prompt-conditioned teacher shares: its classes, their embeddings and how they reach the logits."""

    model_config = STRICT

    num_classes: Annotated[int, Field(ge=2, le=MAX_CHANNELS)]
    embedding_dim: Channels = Field(description="D of the class embeddings (cross_attention_dim)")
    class_dim: Channels = Field(default=64, description="mlp/linear: the space the cosines are taken in")
    class_projection: ClassProjection = Field(
        default="mlp",
        description="how class embeddings reach the logits: a learned mlp or linear map, or frozen (compared "
        "unchanged, so the prompts' geometry survives training; teacher/head.py says why)",
    )
    logit_scale: real(0, 1e4, low_open=True) | None = Field(
        default=None, description="fixed factor on the cosines (LSeg: 1/0.07); None: learned, from 10"
    )

    def check_embeddings(self, embeddings: ClassEmbeddings) -> None:
        """Class embeddings this teacher can take: one per class, of its embedding dimension."""
        if embeddings.num_classes != self.num_classes:
            raise PromptKitError(
                f"the teacher predicts {self.num_classes} classes but the class embeddings have "
                f"{embeddings.num_classes}: use a prompt set of the teacher's taxonomy"
            )
        if embeddings.tokens.shape[-1] != self.embedding_dim:
            raise PromptKitError(
                f"class embeddings have {embeddings.tokens.shape[-1]} dimensions, the teacher expects "
                f"{self.embedding_dim}: use the encoder the teacher was trained with"
            )


class DiffusionTeacherConfig(ClassEmbeddingSettings):
    """The tiny pixel-space config is the default; ``pretrained`` switches to a local SD folder.

    Tiny: no VAE, a small UNet on the image pixel-unshuffled by ``space_to_depth`` (4: a 4x4
    patch of RGB becomes 48 channels, so the UNet's first level runs at 1/4 resolution, as SD's
    UNet runs on a 1/8-resolution latent), with cross-attention at 1/8 resolution and below.
    Measured on 2 CPU cores (batch 8, 96x128): 0.28 s per train step against 0.79 s with
    ``space_to_depth=2``, and a better teacher after the same minutes (README, "The teacher").
    """

    architecture: Literal["diffusion"] = Field(
        default="diffusion", description="a UNet pass conditioned on the prompts, then a head"
    )
    pretrained: str | None = Field(default=None, description="local Stable Diffusion diffusers folder")
    freeze_unet: bool = True
    gradient_checkpointing: bool | None = Field(
        default=None,
        description="recompute the UNet's blocks in the backward pass instead of keeping their activations; None: "
        "on where a pretrained UNet is back-propagated through (a trained text adapter or an unfrozen UNet)",
    )
    latent: Literal["auto", "pixels", "vae", "efficientnet_lite0", "efficientnet_lite2"] = Field(
        default="auto",
        description="what the UNet denoises: pixels (unshuffled RGB), vae (Stable Diffusion's, with pretrained), or a "
        "frozen ImageNet backbone's feature map (efficientnet_lite0/2); auto: vae with pretrained, else pixels",
    )
    finetune_latent: bool = Field(
        default=False,
        description="feature latents: train the backbone with the segmentation loss (saved in the folder); "
        "False: frozen ImageNet features",
    )
    latent_stride: Literal[4, 8, 16] = Field(default=8, description="feature latents: the backbone map's stride")
    space_to_depth: int = Field(default=4, ge=1, le=64, description="pixels: pixel-unshuffle factor before the UNet")
    block_out_channels: tuple[Channels, ...] = Field(default=(32, 64, 96), min_length=1, max_length=8)
    attention_levels: tuple[bool, ...] = (False, True, True)
    layers_per_block: Annotated[int, Field(ge=1, le=16)] = 1
    attention_head_dim: Channels = Field(default=32, description="tiny: channels per attention head")
    format_version: int = Field(
        default=TEACHER_FORMAT,
        ge=1,
        le=1000,
        description="2: tiny UNets get channels // attention_head_dim heads (1, before: attention_head_dim heads)",
    )
    self_attention: bool = Field(
        default=False, description="tiny: keep the UNet's self-attention (costs ~half of a CPU train step)"
    )
    timestep: int = Field(
        default=50, ge=0, le=10_000, description="noise level of the single UNet pass (VPD-style: small)"
    )
    noise_seed: Seed = 0
    extraction: Literal["single_step", "inversion"] = Field(
        default="single_step",
        description="single_step: one UNet pass on the latent noised to `timestep` (VPD); inversion: DIFF's DDIM "
        "inversion with features of named up-block layers at several passes (teacher/inversion.py)",
    )
    inversion: InversionConfig = Field(
        default_factory=InversionConfig, description="extraction inversion: its timesteps, kept passes and layers"
    )
    conditioning: Literal["tokens", "pooled"] = "tokens"
    text_adapter: bool | None = Field(
        default=None,
        description="a trained residual adapter on the class embeddings; None: on for the single step, off for "
        "inversion (its gradient would run back through every UNet pass)",
    )
    head_channels: Channels = 64
    use_attention_maps: bool = True

    @model_validator(mode="before")
    @classmethod
    def _drop_network_default(cls, data: Any) -> Any:
        """Folders saved before the union hold ``network`` at its default: read them; a chosen one is an error."""
        if isinstance(data, dict) and "network" in data:
            if data["network"] != NETWORK_DEFAULT:
                raise ValueError("network is a setting of architecture network: set model.architecture=network")
            data = {key: value for key, value in data.items() if key != "network"}
        return data

    @model_validator(mode="after")
    def _check(self) -> DiffusionTeacherConfig:
        if self.pretrained is None and len(self.attention_levels) != len(self.block_out_channels):
            raise ValueError("attention_levels needs one entry per block_out_channels level")
        if self.latent == "vae" and self.pretrained is None:
            raise ValueError("latent vae needs pretrained: a local Stable Diffusion folder with a vae/")
        if self.finetune_latent and self.resolved_latent not in ("efficientnet_lite0", "efficientnet_lite2"):
            raise ValueError("finetune_latent needs a backbone latent: set latent to efficientnet_lite0 or _lite2")
        if self.pretrained is not None and self.latent not in ("auto", "vae"):
            raise ValueError(f"latent {self.latent} trains its own UNet: drop pretrained (a Stable Diffusion folder)")
        if self.extraction == "inversion":
            if self.text_adapter:
                raise ValueError(
                    "text_adapter trains through every UNet pass of the inversion, which runs without gradients: "
                    "drop text_adapter (or set it false)"
                )
            if self.pretrained is None or not self.freeze_unet:
                raise ValueError(
                    "extraction inversion reads a frozen, pretrained UNet: set pretrained (a Stable Diffusion "
                    "folder) with freeze_unet true, or use extraction single_step"
                )
        return self

    @property
    def uses_gradient_checkpointing(self) -> bool:
        """``gradient_checkpointing`` with None decided: on where the gradient runs through a pretrained UNet."""
        if self.gradient_checkpointing is not None:
            return self.gradient_checkpointing
        through_unet = self.uses_text_adapter or not self.freeze_unet
        return self.pretrained is not None and self.extraction == "single_step" and through_unet

    @property
    def uses_text_adapter(self) -> bool:
        """``text_adapter`` with None decided: on for the single step, off for inversion."""
        return self.extraction == "single_step" if self.text_adapter is None else self.text_adapter

    @property
    def resolved_latent(self) -> str:
        """``latent`` with ``auto`` decided: vae with a pretrained folder, pixels without."""
        if self.latent != "auto":
            return self.latent
        return "vae" if self.pretrained else "pixels"

    @property
    def latent_factor(self) -> int:
        """Input pixels per latent pixel (tiny teachers)."""
        return self.space_to_depth if self.resolved_latent == "pixels" else self.latent_stride

    @property
    def input_multiple(self) -> int:
        """Image sides must be multiples of this (tiny config: the latent's factor times the UNet's depth)."""
        return self.latent_factor * 2 ** (len(self.block_out_channels) - 1)


DIFFUSION_ONLY: dict[str, Any] = {
    name: to_jsonable_python(field.get_default(call_default_factory=True))
    for name, field in DiffusionTeacherConfig.model_fields.items()
    if name not in ClassEmbeddingSettings.model_fields and name != "architecture"
}
"""The diffusion teacher's own settings with their defaults as JSON holds them (so does a network folder saved
before the union)."""


NETWORK_DEFAULT = "efficientnet_lite2"


class NetworkTeacherConfig(ClassEmbeddingSettings):
    """A pretrained segmentation network trained end to end whose classifier is the class embeddings.

    teacher/embedding_classified_network.py builds it; the UNet and latent settings do not apply.
    """

    architecture: Literal["network"] = Field(
        description="a segmentation network whose classifier is the class embeddings (the prompts)"
    )
    network: str = Field(default=NETWORK_DEFAULT, description="a registered network (networks.list_networks)")

    @model_validator(mode="before")
    @classmethod
    def _drop_diffusion_defaults(cls, data: Any) -> Any:
        """Folders saved before the union hold every diffusion field at its default: read them; one set is an error."""
        if not isinstance(data, dict):
            return data
        kept = {}
        for key, value in data.items():
            if key not in DIFFUSION_ONLY:
                kept[key] = value
            elif to_jsonable_python(value) != DIFFUSION_ONLY[key]:
                raise ValueError(f"{key} is a diffusion setting: architecture network trains its whole network")
        return kept

    @model_validator(mode="after")
    def _known_network(self) -> NetworkTeacherConfig:
        from networks import list_networks

        if self.network not in list_networks():
            raise ValueError(f"unknown network {self.network!r}: choose one of {', '.join(list_networks())}")
        return self


def _architecture(data: Any) -> str | None:
    if isinstance(data, dict):
        architecture = data.get("architecture", "diffusion")
    else:
        architecture = getattr(data, "architecture", None)
    return architecture if architecture in ("diffusion", "network") else None


TeacherConfig = Annotated[
    Annotated[DiffusionTeacherConfig, Tag("diffusion")] | Annotated[NetworkTeacherConfig, Tag("network")],
    Discriminator(
        _architecture,
        custom_error_type="architecture",
        custom_error_message="architecture must be diffusion or network",
    ),
]
"""Either teacher config, told apart by ``architecture`` (default diffusion)."""

_TEACHER_CONFIG = TypeAdapter(TeacherConfig)


def parse_teacher_config(fields: dict[str, Any]) -> DiffusionTeacherConfig | NetworkTeacherConfig:
    """The teacher config ``fields`` describe (``architecture`` picks the kind).

    A bad field is a ValueError of one line naming its first problem where the user wrote it
    (``head_channels: ...``, not ``network.head_channels``: the union's tag is no key of theirs).
    """
    try:
        return _TEACHER_CONFIG.validate_python(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][1:] if first["loc"][:1] in (("diffusion",), ("network",)) else first["loc"]
        message = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"{'.'.join(map(str, loc))}: {message}" if loc else message) from None
