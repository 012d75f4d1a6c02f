"""Per-class cross-attention maps: how much attention each image position gives each class.

A diffusers attention processor that computes cross-attention exactly like ``AttnProcessor`` but
keeps the attention probabilities, summed over the tokens of each class and averaged over heads:
``[B, C, h, w]`` per cross-attention layer. No fork of diffusers: it is installed with
``unet.set_attn_processor``.
"""

from __future__ import annotations

import math

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0


class ClassAttentionRecorder:
    """Holds the token-to-class assignment of the current forward and the maps it produced."""

    def __init__(self) -> None:
        self.token_to_class: torch.Tensor | None = None  # [K, C] one-hot (float)
        self.image_size: tuple[int, int] | None = None
        self.key_bias: torch.Tensor | None = None  # [B, 1, K]: 0 for tokens, -10000 for padding
        self.maps: list[torch.Tensor] = []
        self.enabled = True

    def start(
        self, token_to_class: torch.Tensor, image_size: tuple[int, int], key_bias: torch.Tensor | None = None
    ) -> None:
        self.token_to_class = token_to_class
        self.image_size = image_size
        self.key_bias = key_bias
        self.maps = []

    def spatial_shape(self, positions: int) -> tuple[int, int]:
        """(h, w) of a feature map with ``positions`` pixels, from the input's aspect ratio."""
        height, width = self.image_size
        stride = math.sqrt(height * width / positions)
        h = max(1, round(height / stride))
        if positions % h:
            raise ValueError(f"cannot lay {positions} attention positions out for an input of {height}x{width}")
        return h, positions // h

    def record(self, probs: torch.Tensor, batch: int) -> None:
        heads = probs.shape[0] // batch
        per_class = probs.view(batch, heads, probs.shape[1], probs.shape[2]).mean(1) @ self.token_to_class.to(probs)
        h, w = self.spatial_shape(probs.shape[1])
        self.maps.append(per_class.transpose(1, 2).reshape(batch, -1, h, w))


class RecordingCrossAttnProcessor:
    """``AttnProcessor`` for cross-attention layers, recording per-class attention maps."""

    def __init__(self, recorder: ClassAttentionRecorder) -> None:
        self.recorder = recorder
        self.fallback = AttnProcessor2_0()

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        if encoder_hidden_states is None or not self.recorder.enabled or self.recorder.token_to_class is None:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch, sequence_length, _ = encoder_hidden_states.shape
        if attention_mask is None and self.recorder.key_bias is not None:
            # diffusers hands only_cross_attention's attn1 no encoder mask: padding must stay masked
            attention_mask = self.recorder.key_bias.to(hidden_states.dtype)
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(attn.head_to_batch_dim(query), key, attention_mask)
        self.recorder.record(probs, batch)
        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def install_recorder(unet: torch.nn.Module, recorder: ClassAttentionRecorder) -> int:
    """Put the recording processor on every cross-attention layer; returns how many.

    A layer is cross-attention when diffusers built it with a ``cross_attention_dim`` (``attn2``
    of each transformer block, and ``attn1`` too where ``only_cross_attention`` is set).
    """
    cross = {
        f"{name}.processor"
        for name, module in unet.named_modules()
        if isinstance(module, Attention) and module.is_cross_attention
    }
    processors = {
        name: RecordingCrossAttnProcessor(recorder) if name in cross else AttnProcessor2_0()
        for name in unet.attn_processors
    }
    unet.set_attn_processor(processors)
    return len(cross)
