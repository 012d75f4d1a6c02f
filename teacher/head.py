"""The decode head: FPN over UNet up-block features, class logits computed *from* the embeddings.

Class logits are cosine similarities between per-pixel features and a learned projection of each
class's embedding (as LSeg and DenseCLIP do), plus each class's own cross-attention map as extra
evidence. Nothing in the head is tied to a class index, so swapping two classes' embeddings swaps
their predictions exactly, and a prompt style can change what the teacher predicts at inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class FeaturePyramidHead(nn.Module):
    """Lateral 1x1 convs, resize everything to 1/4 of the image, sum, two 3x3 conv blocks."""

    def __init__(self, in_channels: list[int], channels: int) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), _norm(channels), nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1), _norm(channels), nn.GELU(),
        )  # fmt: skip

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        total = None
        for lateral, feature in zip(self.laterals, features, strict=True):
            x = lateral(feature)
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            total = x if total is None else total + x
        return self.fuse(total)


class EmbeddingClassifier(nn.Module):
    """``logit[b, c, y, x] = s * cos(P(f[b, :, y, x]), Q(e_c)) + a * C * attn[b, c, y, x]``.

    ``f``: pixel features, ``e_c``: class ``c``'s pooled embedding, ``P``/``Q``: learned
    projections, ``s``: learned logit scale, ``attn``: class ``c``'s cross-attention map (sums to
    1 over classes), ``a``: a learned scalar. No per-class parameters.
    """

    def __init__(self, pixel_channels: int, embedding_dim: int, class_dim: int) -> None:
        super().__init__()
        self.pixel_projection = nn.Conv2d(pixel_channels, class_dim, 1)
        self.class_projection = nn.Sequential(
            nn.Linear(embedding_dim, class_dim * 2), nn.GELU(), nn.Linear(class_dim * 2, class_dim)
        )
        self.log_scale = nn.Parameter(torch.tensor(2.3))  # exp(2.3) ~ 10, a usual cosine-logit scale
        self.attention_weight = nn.Parameter(torch.tensor(0.0))

    def forward(
        self, pixels: torch.Tensor, class_vectors: torch.Tensor, attention: torch.Tensor | None = None
    ) -> torch.Tensor:
        pixel = F.normalize(self.pixel_projection(pixels), dim=1)  # [B, E, h, w]
        classes = F.normalize(self.class_projection(class_vectors.to(pixel.dtype)), dim=-1)  # [C, E]
        logits = torch.einsum("behw,ce->bchw", pixel, classes) * self.log_scale.exp()
        if attention is not None:
            logits = logits + self.attention_weight * attention.shape[1] * attention.to(logits.dtype)
        return logits
