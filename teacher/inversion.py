"""DIFF's feature extraction: DDIM inversion of the image's latent, features of named up-block layers.

The single-step teacher (``teacher/model.py``) noises the latent once and reads each up block's
output. DIFF (Ji et al., 2024; ``docs/research/diff_extraction.md``) instead walks the clean latent
up a short timestep list by DDIM inversion (37 UNet passes to t = 160), and at 9 of those passes
keeps the residual branch of every up-block ResNet (``conv2``'s output, before the skip is added)
and the output of every up-block transformer block. Per stride, everything kept is concatenated
and squeezed by one bottleneck block; those maps feed the teacher's head.

What differs from DIFF's code, on purpose, each a setting or a sentence here:

- The latent is the VAE posterior's mean, and the eta noise is drawn from ``noise_seed`` (the same
  for every image): a teacher's output depends on its image only, so view banks and caches hold.
  DIFF samples both afresh on every forward.
- ``prediction: scheduler`` turns a v-prediction UNet's output (SD 2.1) into epsilon before the
  DDIM arithmetic; ``epsilon`` reads it as epsilon, as DIFF's code does.
- Every UNet pass is conditioned on the class prompts' tokens (promptkit's conditioning), where
  DIFF conditions on the empty prompt and adds class prompts in its path-controlled branch.
- Passes after the last saved one cannot change any kept feature and are not run (34 of DIFF's 37).
- The head is promptkit's FPN and embedding classifier, not DIFF's deconvolution finecoder and
  DAFormer head; the stride-64 level, whose output DIFF computes and drops, is not built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, model_validator
from torch import nn

from prompt_kit.bounds import MAX_CHANNELS, STRICT, real
from prompt_kit.errors import PromptKitError

# DIFF's diff_config.yaml: the inversion timesteps (from high to low, as written there) and the loop
# indices of the passes whose features are kept (t = 91, 52, 30, 22, 18, 14, 11, 7, 3).
DIFF_TIMESTEPS: tuple[int, ...] = (160, 139, 121, 105, 91, 80, 69, 60, 52, 45, 40, 34, 30, 26, 23, 22, 21, 20, 19, 18,
                                   17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)  # fmt: skip
DIFF_SAVE_STEPS: tuple[int, ...] = (33, 29, 25, 22, 18, 14, 11, 7, 3)
DIFF_AGGREGATION: dict[int, int] = {64: 2048, 32: 2048, 16: 1024, 8: 512}  # projection_dim per stride

Layer = tuple[int, int]  # (up block, index within it)


class InversionConfig(BaseModel):
    """How the inversion runs and what it keeps; DIFF's values are the defaults."""

    model_config = STRICT

    timesteps: tuple[int, ...] = Field(
        default=DIFF_TIMESTEPS,
        min_length=1,
        max_length=1000,
        description="the inversion's timesteps, from high to low (DIFF's 37); the walk runs from 0 upwards",
    )
    save_steps: tuple[int, ...] = Field(
        default=DIFF_SAVE_STEPS,
        min_length=1,
        max_length=1000,
        description="loop indices of the UNet passes whose features are kept (pass i runs at the i-th lowest "
        "timestep, pass 0 at t = 0)",
    )
    eta: real(0, 10) = Field(default=1.0, description="DDIM eta (fresh noise) inside eta_window, 0 outside")
    eta_window: tuple[int, int] = Field(default=(10, 250), description="eta applies where low < t < high")
    path_control: bool = Field(
        default=False,
        description="train with DIFF's path-controlled branch too: inside each labelled region the walk is steered "
        "by that class's prompt; the loss adds its cross-entropy and the consistency term (training only)",
    )
    guidance_scale: real(0, 100) = Field(default=5.0, description="path control: eps_base + g (eps_class - eps_base)")
    consistency_weight: real(0, 1e4) = Field(
        default=1.0, description="path control: weight of the MSE between the two branches' logits (DIFF: 1)"
    )
    prediction: Literal["scheduler", "epsilon"] = Field(
        default="scheduler",
        description="scheduler: convert a v-prediction UNet's output to epsilon; epsilon: read it as epsilon "
        "whatever the scheduler says (DIFF's code)",
    )
    resnets: tuple[Layer, ...] | None = Field(
        default=None, description="(up block, resnet) pairs whose residual branch is kept; None: all of them"
    )
    transformer_blocks: tuple[Layer, ...] | None = Field(
        default=None, description="(up block, attention) pairs whose first transformer block is kept; None: all"
    )
    max_stride: Literal[4, 8, 16, 32, 64] = Field(
        default=32, description="levels coarser than this stride (in input pixels) are not aggregated"
    )
    aggregation_channels: dict[int, int] | None = Field(
        default=None,
        description="output channels of each stride's bottleneck, e.g. {32: 2048, 16: 1024, 8: 512} (DIFF's); "
        "None: DIFF's where it names the stride, else the level's UNet channels",
    )

    @model_validator(mode="after")
    def _check(self) -> InversionConfig:
        if any(b >= a for a, b in zip(self.timesteps, self.timesteps[1:], strict=False)) or min(self.timesteps) < 1:
            raise ValueError("inversion timesteps must be positive and strictly decreasing, e.g. [160, 139, ..., 1]")
        bad = [step for step in self.save_steps if not 0 <= step < len(self.timesteps)]
        if bad:
            raise ValueError(f"save step {bad[0]} is not a pass of the {len(self.timesteps)}-step inversion")
        if len(set(self.save_steps)) != len(self.save_steps):
            raise ValueError("save_steps repeats a step")
        if self.aggregation_channels and any(not 1 <= c <= MAX_CHANNELS for c in self.aggregation_channels.values()):
            raise ValueError(f"aggregation channels must be in [1, {MAX_CHANNELS}]")
        return self

    @property
    def passes(self) -> list[tuple[int, int]]:
        """(t of the UNet pass, t the latent moves to) for every pass that can change a kept feature."""
        ascending = list(reversed(self.timesteps))
        return list(zip([0, *ascending[:-1]], ascending, strict=True))[: max(self.save_steps) + 1]


def epsilon_from_output(output: torch.Tensor, sample: torch.Tensor, alpha: torch.Tensor, prediction_type: str):
    """The UNet's output as the noise estimate: v-prediction (``v = sqrt(a) eps - sqrt(1-a) x0``) converted."""
    if prediction_type == "epsilon":
        return output
    if prediction_type == "v_prediction":
        return alpha.sqrt() * output + (1 - alpha).sqrt() * sample
    raise ValueError(f"prediction type {prediction_type!r} is neither epsilon nor v_prediction")


def ddim_move(
    sample: torch.Tensor,
    epsilon: torch.Tensor,
    alpha_from: torch.Tensor,
    alpha_to: torch.Tensor,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """One DDIM step from cumulative alpha ``alpha_from`` to ``alpha_to``, either direction.

    ``x0 = (x - sqrt(1-a_from) eps) / sqrt(a_from)``; ``x' = sqrt(a_to) x0 + c1 z + c2 eps`` with
    ``c1 = eta sqrt((1-a_to)/(1-a_from) (1 - a_small/a_large))`` and ``c2 = sqrt(1 - a_to - c1^2)``:
    diffusers' DDIM step when moving down (to less noise), DIFF's inversion step when moving up.
    """
    x0 = (sample - (1 - alpha_from).sqrt() * epsilon) / alpha_from.sqrt()
    direction = torch.minimum(alpha_from, alpha_to) / torch.maximum(alpha_from, alpha_to)
    c1 = eta * ((1 - alpha_to) / (1 - alpha_from) * (1 - direction)).sqrt()
    c2 = (1 - alpha_to - c1**2).clamp_min(1e-10).sqrt()
    moved = alpha_to.sqrt() * x0 + c2 * epsilon
    if eta and noise is not None:
        moved = moved + c1 * noise
    return moved


@dataclass(frozen=True)
class PathControl:
    """What steers a path-controlled inversion: each present class's prompt and where it is in each image.

    ``states`` ``[K, L, D]`` (the K present classes' token sequences, or pooled vectors as L = 1),
    ``mask`` ``[K, L]`` or None, ``regions`` ``[B, K, h, w]`` (1 inside the class, at latent size).
    """

    states: torch.Tensor
    mask: torch.Tensor | None
    regions: torch.Tensor

    @staticmethod
    def from_labels(
        labels: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor | None, latent_size
    ) -> PathControl | None:
        """The control of labels ``[B, H, W]``: the classes present in them (an ignored label is out of range)."""
        present = [int(c) for c in torch.unique(labels) if 0 <= int(c) < tokens.shape[0]]
        if not present:
            return None
        index = torch.tensor(present, device=labels.device)
        regions = torch.stack([(labels == c).float() for c in present], dim=1)
        regions = F.interpolate(regions, size=tuple(latent_size), mode="nearest")
        mask = None if token_mask is None else token_mask[index]
        return PathControl(tokens[index], mask, regions)


def _gn(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(16, channels), channels)


class Bottleneck(nn.Module):
    """detectron2's BottleneckBlock as DIFF aggregates a stride: 1x1, 3x3, 1x1 (GN), a projected shortcut."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        middle = max(1, out_channels // 4)
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, middle, 1, bias=False), _gn(middle), nn.ReLU(),
            nn.Conv2d(middle, middle, 3, padding=1, bias=False), _gn(middle), nn.ReLU(),
            nn.Conv2d(middle, out_channels, 1, bias=False), _gn(out_channels),
        )  # fmt: skip
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), _gn(out_channels))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # c2_msra_fill
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.relu(self.branch(features) + self.shortcut(features))


class _Keep:
    """A forward hook that keeps its module's output while ``armed``."""

    def __init__(self) -> None:
        self.armed = False
        self.kept: list[torch.Tensor] = []

    def __call__(self, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        if self.armed:
            self.kept.append(output[0] if isinstance(output, tuple) else output)


class InversionExtractor(nn.Module):
    """Inverts latents through a UNet and returns one aggregated map per kept stride, deepest first."""

    def __init__(
        self, unet: nn.Module, scheduler, config: InversionConfig, latent_factor: int, noise_seed: int = 0
    ) -> None:
        super().__init__()
        self.config = config
        self.noise_seed = noise_seed
        self.unet = [unet]  # a reference, not a submodule: the teacher owns (and saves or skips) the UNet
        last = max(config.timesteps)
        if last >= scheduler.config.num_train_timesteps:
            steps = scheduler.config.num_train_timesteps
            raise PromptKitError(f"inversion timestep {last} is past the scheduler's last ({steps - 1})")
        self.register_buffer("alphas", scheduler.alphas_cumprod.detach().clone().float(), persistent=False)
        self.prediction_type = (
            "epsilon" if config.prediction == "epsilon" else scheduler.config.get("prediction_type", "epsilon")
        )
        levels = len(unet.up_blocks)
        self.strides = [latent_factor * 2 ** (levels - 1 - i) for i in range(levels)]
        self.levels = [i for i in range(levels) if self.strides[i] <= config.max_stride]
        resnets = config.resnets or [(i, j) for i in range(levels) for j in range(len(unet.up_blocks[i].resnets))]
        blocks = config.transformer_blocks or [
            (i, j) for i in range(levels) for j in range(len(getattr(unet.up_blocks[i], "attentions", None) or []))
        ]
        self.layers: dict[int, list[tuple[str, Layer, _Keep]]] = {i: [] for i in self.levels}
        for kind, layers in (("resnet", resnets), ("transformer", blocks)):
            for i, j in layers:
                module = self._layer(unet, kind, i, j)
                if i not in self.layers:
                    continue
                keep = _Keep()
                module.register_forward_hook(keep)
                self.layers[i].append((kind, (i, j), keep))
        self.in_channels = {i: self._channels(unet, i) * len(config.save_steps) for i in self.levels}
        wanted = config.aggregation_channels or {}
        self.out_channels = [
            wanted.get(self.strides[i], DIFF_AGGREGATION.get(self.strides[i], unet.config.block_out_channels[-1 - i]))
            for i in self.levels
        ]
        self.aggregate = nn.ModuleList(
            Bottleneck(self.in_channels[i], out) for i, out in zip(self.levels, self.out_channels, strict=True)
        )

    @staticmethod
    def _layer(unet: nn.Module, kind: str, i: int, j: int) -> nn.Module:
        blocks = unet.up_blocks
        where = f"up block {i}"
        if not 0 <= i < len(blocks):
            raise PromptKitError(f"inversion layer: {where} does not exist: the UNet has {len(blocks)} up blocks")
        if kind == "resnet":
            if not 0 <= j < len(blocks[i].resnets):
                raise PromptKitError(f"inversion layer: {where} has no resnet {j} (it has {len(blocks[i].resnets)})")
            return blocks[i].resnets[j].conv2  # the residual branch, before the skip is added
        attentions = getattr(blocks[i], "attentions", None) or []
        if not 0 <= j < len(attentions):
            raise PromptKitError(f"inversion layer: {where} has no transformer block {j} (it has {len(attentions)})")
        return attentions[j].transformer_blocks[0]

    def _channels(self, unet: nn.Module, level: int) -> int:
        total = 0
        for kind, (i, j), _ in self.layers[level]:
            block = unet.up_blocks[i]
            if kind == "resnet":
                total += block.resnets[j].conv2.out_channels
            else:
                total += block.attentions[j].transformer_blocks[0].norm1.normalized_shape[0]
        return total

    def level_size(self, level: int, latent_size: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of up block ``level``'s maps for a latent of ``latent_size``."""
        scale = 2 ** (len(self.unet[0].up_blocks) - 1 - level)
        return max(1, latent_size[0] // scale), max(1, latent_size[1] // scale)

    def bytes_per_view(self, latent_size: tuple[int, int], element_bytes: int = 2) -> int:
        """What one view's kept features take (float16 by default): what a bank of them would store per view."""
        total = sum(self.in_channels[i] * math.prod(self.level_size(i, latent_size)) for i in self.levels)
        return total * element_bytes

    def kept_features(
        self, latents: torch.Tensor, states, mask, recorder, control: PathControl | None = None
    ) -> tuple[dict[int, dict[tuple[str, Layer], torch.Tensor]], list[torch.Tensor]]:
        """The inversion of ``latents``: {kept pass: {(kind, layer): map}} and the kept passes' class attention maps.

        Resnet maps are ``[B, C, h, w]``, transformer maps the block's tokens ``[B, h*w, C]``. With
        ``control`` (DIFF's path-controlled branch) every pass also runs the UNet on each present
        class's prompt alone; each class's guided DDIM move counts inside its region, the plain move
        everywhere; resnet maps stay the plain copy's, transformer maps are summed over all copies.
        """
        unet = self.unet[0]
        config = self.config
        saved = set(config.save_steps)
        hooks = [(kind, layer, hook) for level in self.layers.values() for kind, layer, hook in level]
        generator = torch.Generator().manual_seed(self.noise_seed)
        alphas = self.alphas.to(latents.device)
        low, high = config.eta_window
        passes = config.passes
        batch = latents.shape[0]
        sample = latents
        kept: dict[int, dict[tuple[str, Layer], torch.Tensor]] = {}
        maps: list[torch.Tensor] = []
        try:
            for step, (t, t_next) in enumerate(passes):
                keep = step in saved
                for _, _, hook in hooks:
                    hook.armed, hook.kept = keep, []
                recorder.enabled = keep and recorder.token_to_class is not None
                recorder.maps = []
                timestep = torch.full((batch,), t, device=sample.device, dtype=torch.long)
                with torch.no_grad():
                    output = unet(sample, timestep, encoder_hidden_states=states, encoder_attention_mask=mask).sample
                    recorder.enabled = False  # the class copies' tokens are not the recorder's
                    guided = None if control is None else self._class_outputs(unet, sample, t, control)
                if keep:
                    kept[step] = {(kind, layer): self._merged(kind, hook.kept, control) for kind, layer, hook in hooks}
                    maps.extend(recorder.maps)
                if step == len(passes) - 1:
                    break
                alpha, alpha_next = alphas[t], alphas[t_next]
                eta = config.eta if low < t < high else 0.0
                noise = None
                if eta:
                    noise = torch.randn((1, *sample.shape[1:]), generator=generator).to(sample.device)
                    noise = noise.expand_as(sample)
                epsilon = epsilon_from_output(output.float(), sample.float(), alpha, self.prediction_type)
                moved = ddim_move(sample.float(), epsilon, alpha, alpha_next, eta, noise)
                if guided is not None:
                    moved = self._steered(
                        moved, sample.float(), epsilon, guided, (alpha, alpha_next), eta, noise, control
                    )
                sample = moved.to(latents.dtype)
        finally:
            for _, _, hook in hooks:
                hook.armed, hook.kept = False, []
            recorder.enabled, recorder.maps = True, []
        return kept, maps

    def _class_outputs(self, unet: nn.Module, sample: torch.Tensor, t: int, control: PathControl) -> torch.Tensor:
        """The UNet's output for every (present class, image): ``[K, B, ...]``, each on its class's prompt alone."""
        classes, batch = control.states.shape[0], sample.shape[0]
        states = (
            control.states.unsqueeze(1).expand(-1, batch, -1, -1).reshape(classes * batch, *control.states.shape[1:])
        )
        mask = None
        if control.mask is not None:
            mask = control.mask.unsqueeze(1).expand(-1, batch, -1).reshape(classes * batch, -1)
        repeated = sample.repeat(classes, 1, 1, 1)
        timestep = torch.full((classes * batch,), t, device=sample.device, dtype=torch.long)
        output = unet(repeated, timestep, encoder_hidden_states=states, encoder_attention_mask=mask).sample
        return output.view(classes, batch, *sample.shape[1:])

    def _steered(self, moved, sample, epsilon, guided, alphas, eta, noise, control: PathControl):
        """DIFF's mask-averaged move: the plain move everywhere, each class's guided move inside its region."""
        alpha, alpha_next = alphas
        total, weight = moved, torch.ones_like(control.regions[:, :1])
        for k in range(guided.shape[0]):
            class_epsilon = epsilon_from_output(guided[k].float(), sample, alpha, self.prediction_type)
            steered = epsilon + self.config.guidance_scale * (class_epsilon - epsilon)
            region = control.regions[:, k : k + 1]
            total = total + region * ddim_move(sample, steered, alpha, alpha_next, eta, noise)
            weight = weight + region
        return total / weight

    @staticmethod
    def _merged(kind: str, outputs: list[torch.Tensor], control: PathControl | None) -> torch.Tensor:
        """The kept map of one pass: the plain copy's; a transformer block's summed over the class copies too."""
        plain = outputs[0]
        if control is None or kind == "resnet" or len(outputs) < 2:
            return plain
        copies = outputs[1].view(-1, *plain.shape)
        return plain + copies.sum(0)

    def forward(
        self, latents: torch.Tensor, states, mask, recorder, control: PathControl | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Aggregated features (one per kept level, deepest first) and the kept passes' class attention maps."""
        kept, maps = self.kept_features(latents, states, mask, recorder, control)
        aggregated = []
        for level, bottleneck in zip(self.levels, self.aggregate, strict=True):
            size = self.level_size(level, tuple(latents.shape[-2:]))
            parts = []
            for kind, layer, _ in self.layers[level]:
                for step in self.config.save_steps:  # DIFF's channel layout: layer-major, steps as configured
                    feature = kept[step][(kind, layer)]
                    if kind == "transformer":
                        feature = feature.transpose(1, 2).reshape(feature.shape[0], -1, *size)
                    parts.append(feature.float())
            aggregated.append(bottleneck(torch.cat(parts, dim=1)))
        return aggregated, maps


__all__ = [
    "DIFF_AGGREGATION",
    "DIFF_SAVE_STEPS",
    "DIFF_TIMESTEPS",
    "Bottleneck",
    "InversionConfig",
    "InversionExtractor",
    "PathControl",
    "ddim_move",
    "epsilon_from_output",
]
