"""DiffusionSegTeacher: one noisy UNet pass conditioned on every class's embedding, then a head.

``forward(images, class_embeddings) -> logits [B, C, H/4, W/4]``. The image's latent (a VAE
latent, a frozen ImageNet backbone's feature map, or unshuffled pixels) gets fixed-seed noise at
timestep ``t``; one UNet pass runs with ``encoder_hidden_states`` = the token sequences of all
classes (or one pooled vector per class), so every cross-attention layer attends to every class.
Up-block outputs (forward hooks) feed an FPN head; class logits come from the embeddings themselves (see ``head.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from torch import nn

from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.errors import PromptKitError
from teacher.attention_maps import ClassAttentionRecorder, install_recorder
from teacher.config import DiffusionTeacherConfig
from teacher.feature_latent import FEATURE_LATENTS, BackboneFeatureLatent
from teacher.head import EmbeddingClassifier, FeaturePyramidHead
from teacher.inversion import InversionExtractor, PathControl


def tiny_unet(config: DiffusionTeacherConfig, latent_channels: int) -> UNet2DConditionModel:
    """A small UNet on a ``latent_channels`` latent: attention only where ``config.attention_levels`` says."""
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in config.attention_levels)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.attention_levels))
    channels = config.block_out_channels
    pixels = latent_channels
    return UNet2DConditionModel(
        sample_size=None,
        in_channels=pixels,
        out_channels=pixels,
        down_block_types=down,
        up_block_types=up,
        mid_block_type="UNetMidBlock2DCrossAttn" if config.attention_levels[-1] else None,
        mid_block_only_cross_attention=not config.self_attention,
        block_out_channels=channels,
        layers_per_block=config.layers_per_block,
        cross_attention_dim=config.embedding_dim,
        # diffusers reads ``attention_head_dim`` as the number of heads (its issue #2011): pass heads per level
        attention_head_dim=tuple(max(1, c // config.attention_head_dim) for c in channels),
        only_cross_attention=not config.self_attention,
        norm_num_groups=min(8, min(channels)),
    )


class TextAdapter(nn.Module):
    """VPD-style residual adapter on the class embeddings: ``e + g * MLP(e)``, ``g`` starts near 0."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.gamma = nn.Parameter(torch.full((1,), 1e-4))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return embeddings + self.gamma * self.mlp(embeddings)


class DiffusionSegTeacher(nn.Module):
    """A segmentation teacher on diffusion UNet features, conditioned on ClassEmbeddings."""

    def __init__(
        self,
        config: DiffusionTeacherConfig,
        unet: UNet2DConditionModel | None = None,
        vae: AutoencoderKL | None = None,
        scheduler: DDPMScheduler | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.latent_encoder = None
        latent_channels = 3 * config.space_to_depth**2
        if config.resolved_latent in FEATURE_LATENTS:
            self.latent_encoder = BackboneFeatureLatent(
                config.resolved_latent, config.latent_stride, trainable=config.finetune_latent
            )
            latent_channels = self.latent_encoder.channels
        self.unet = unet if unet is not None else tiny_unet(config, latent_channels)
        self.vae = vae
        if vae is not None:
            vae.requires_grad_(False)
        if config.pretrained is not None and config.freeze_unet:
            self.unet.requires_grad_(False)
        self.scheduler = scheduler or DDPMScheduler(num_train_timesteps=1000)
        if self.unet.config.cross_attention_dim != config.embedding_dim:
            raise PromptKitError(
                f"the UNet's cross_attention_dim is {self.unet.config.cross_attention_dim} but the class "
                f"embeddings have {config.embedding_dim} dimensions: embed the prompts with the teacher's "
                "own text encoder (clip:PATH of the same folder)"
            )
        self.text_adapter = TextAdapter(config.embedding_dim) if config.uses_text_adapter else None
        if config.uses_gradient_checkpointing:  # SD's UNet at 384x384 would keep tens of GiB of activations
            self.unet.enable_gradient_checkpointing()
        self.recorder = ClassAttentionRecorder()
        self.cross_attention_layers = install_recorder(self.unet, self.recorder)
        self._features: list[torch.Tensor] = []
        self.inversion = None
        if config.extraction == "inversion":
            factor = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else config.latent_factor
            self.inversion = InversionExtractor(
                self.unet, self.scheduler, config.inversion, factor, noise_seed=config.noise_seed
            )
            up_channels = self.inversion.out_channels
        else:
            for block in self.unet.up_blocks:
                block.register_forward_hook(self._keep_output)
            up_channels = list(reversed(self.unet.config.block_out_channels))
        self.head = FeaturePyramidHead(up_channels, config.head_channels)
        self.classifier = EmbeddingClassifier(
            config.head_channels, config.embedding_dim, config.class_dim, config.class_projection, config.logit_scale
        )

    def _keep_output(self, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        self._features.append(output[0] if isinstance(output, tuple) else output)

    @property
    def input_multiple(self) -> int:
        """Image sides must be multiples of this: the VAE's (or unshuffle's) factor times the UNet depth."""
        depth = 2 ** (len(self.unet.config.block_out_channels) - 1)
        if self.vae is not None:
            return depth * 2 ** (len(self.vae.config.block_out_channels) - 1)
        return depth * self.config.latent_factor

    # -- inputs -------------------------------------------------------------------------------
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> what the UNet denoises: a scaled VAE latent, backbone features, or pixels in [-1, 1]."""
        if self.latent_encoder is not None:
            return self.latent_encoder(images)
        scaled = images * 2.0 - 1.0
        if self.vae is None:
            factor = self.config.space_to_depth
            return F.pixel_unshuffle(scaled, factor) if factor > 1 else scaled
        latent = self.vae.encode(scaled.to(self.vae.dtype)).latent_dist.mean
        return latent * self.vae.config.scaling_factor

    def fixed_noise(self, like: torch.Tensor) -> torch.Tensor:
        """The same noise for every image (seeded), so a teacher output depends on the image only."""
        generator = torch.Generator().manual_seed(self.config.noise_seed)
        noise = torch.randn((1, *like.shape[1:]), generator=generator, dtype=torch.float32)
        return noise.to(device=like.device, dtype=like.dtype).expand_as(like)

    def conditioning(self, embeddings: ClassEmbeddings, batch: int, device, dtype):
        """(encoder_hidden_states [B, K, D], encoder mask [B, K] or None, token_to_class [K, C])."""
        classes = embeddings.num_classes
        if self.config.conditioning == "pooled":
            states = embeddings.pooled.to(device=device, dtype=dtype).unsqueeze(0)
            mask = None
            token_to_class = torch.eye(classes, device=device)
        else:
            tokens = embeddings.tokens.to(device=device, dtype=dtype)  # [C, L, D]
            length = tokens.shape[1]
            states = tokens.reshape(1, classes * length, -1)
            valid = embeddings.attention_mask.to(device=device).reshape(-1).bool()
            mask = valid.to(dtype).unsqueeze(0).expand(batch, -1)
            owner = torch.arange(classes, device=device).repeat_interleave(length)
            token_to_class = F.one_hot(owner, classes).float() * valid.unsqueeze(1).float()
        if self.text_adapter is not None:
            states = self.text_adapter(states)
        return states.expand(batch, -1, -1), mask, token_to_class

    def check_embeddings(self, embeddings: ClassEmbeddings) -> None:
        self.config.check_embeddings(embeddings)

    # -- forward ------------------------------------------------------------------------------
    def path_control(self, labels: torch.Tensor, embeddings: ClassEmbeddings, latent_size, dtype) -> PathControl | None:
        """DIFF's path control for ``labels``: each present class's own prompt (tokens, or its pooled vector)."""
        if self.config.conditioning == "pooled":
            tokens, mask = embeddings.pooled.unsqueeze(1), None
        else:
            tokens, mask = embeddings.tokens, embeddings.attention_mask.to(dtype)
        return PathControl.from_labels(labels.to(tokens.device), tokens.to(dtype), mask, latent_size)

    def unet_pass(self, images: torch.Tensor, embeddings: ClassEmbeddings, labels: torch.Tensor | None = None):
        """One noisy UNet pass (or the inversion); returns (up-block features, per-layer class attention maps)."""
        sample = self.encode_images(images)
        dtype = next(self.unet.parameters()).dtype
        sample = sample.to(dtype)
        if self.inversion is not None:
            states, mask, token_to_class = self.conditioning(embeddings, sample.shape[0], sample.device, dtype)
            key_bias = None if mask is None else ((1.0 - mask) * -10000.0).unsqueeze(1)
            self.recorder.start(token_to_class, tuple(sample.shape[-2:]), key_bias)
            control = None if labels is None else self.path_control(labels, embeddings, sample.shape[-2:], dtype)
            return self.inversion(sample, states, mask, self.recorder, control)
        if labels is not None:
            raise PromptKitError("labels steer only an inversion teacher with path_control: drop them")
        timestep = torch.full((sample.shape[0],), self.config.timestep, device=sample.device, dtype=torch.long)
        if self.config.timestep > 0:
            sample = self.scheduler.add_noise(sample, self.fixed_noise(sample), timestep)
        states, mask, token_to_class = self.conditioning(embeddings, sample.shape[0], sample.device, dtype)
        key_bias = None if mask is None else ((1.0 - mask) * -10000.0).unsqueeze(1)
        self.recorder.start(token_to_class, tuple(sample.shape[-2:]), key_bias)
        self._features = []
        self.unet(sample, timestep, encoder_hidden_states=states, encoder_attention_mask=mask)
        features, maps = self._features, self.recorder.maps
        self._features, self.recorder.maps = [], []
        return features, maps

    def record_features(self, enabled: bool) -> None:
        """Turn the feature and cross-attention recording on or off, dropping what was recorded.

        Off while the denoiser is pretrained (its UNet calls are not the teacher's forward), on for
        segmentation training and inference.
        """
        self.recorder.enabled = enabled
        self._features, self.recorder.maps = [], []

    def forward(
        self,
        images: torch.Tensor,
        class_embeddings: ClassEmbeddings,
        return_features: bool = False,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits ``[B, C, H/4, W/4]`` for images ``[B, 3, H, W]`` in [0, 1].

        ``labels`` ``[B, H, W]`` (training only, ``inversion.path_control``): the path-controlled branch.
        """
        self.check_embeddings(class_embeddings)
        height, width = images.shape[-2:]
        multiple = self.input_multiple
        if height % multiple or width % multiple:
            raise PromptKitError(
                f"image size {height}x{width} is not a multiple of {multiple}: resize or crop to e.g. "
                f"{height // multiple * multiple}x{width // multiple * multiple}"
            )
        size = (max(1, height // 4), max(1, width // 4))
        features, maps = self.unet_pass(images, class_embeddings, labels)
        pixels = self.head(features, size)
        attention = None
        if self.config.use_attention_maps and maps:
            resized = [F.interpolate(m.float(), size=size, mode="bilinear", align_corners=False) for m in maps]
            attention = torch.stack(resized).mean(0)
        class_vectors = class_embeddings.pooled.to(pixels.device)
        logits = self.classifier(pixels, class_vectors, attention)
        if not return_features:
            return logits
        levels = self.inversion.levels if self.inversion is not None else range(len(features))
        named = {f"up{i}": feature for i, feature in zip(levels, features, strict=True)}
        named["decoder"] = pixels
        if attention is not None:
            named["attention"] = attention
        return logits, named
