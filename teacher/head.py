"""The decode head: FPN over UNet up-block features, class logits computed *from* the embeddings.

Class logits are cosine similarities between per-pixel features and each class's embedding, plus
each class's own cross-attention map as extra evidence. Nothing in the head is tied to a class
index, so swapping two classes' embeddings swaps their predictions exactly.

How the embeddings reach the cosine is ``class_projection``. ``mlp`` and ``linear`` learn a map
``Q`` of each embedding first (as DenseCLIP does). With 11-19 classes and 384-768 dimensions such
a map can send any linearly independent set of embeddings to the same classifier, so after
training the prompts' wording acts only through initialisation and optimisation noise (measured:
four styles' teachers within one seed's noise). ``frozen`` keeps the text side fixed, as LSeg does
with CLIP: the pixels are projected into the embedding space and compared with each class's own
embedding, unchanged, so the prompts' geometry survives training (two classes with nearly the same
embedding stay nearly indistinguishable, whatever the weights).
"""

from __future__ import annotations

import math
from typing import get_args

import torch
import torch.nn.functional as F
from torch import nn

from teacher.config import ClassProjection


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


CLASS_PROJECTIONS: tuple[str, ...] = get_args(ClassProjection)


class EmbeddingClassifier(nn.Module):
    """``logit[b, c, y, x] = s * cos(P(f[b, :, y, x]), Q(e_c)) + a * C * attn[b, c, y, x]``.

    ``f``: pixel features, ``e_c``: class ``c``'s pooled embedding, ``P``: a learned 1x1 conv,
    ``Q``: a learned MLP (``mlp``), a learned linear map (``linear``) or the identity (``frozen``,
    where ``P`` maps into the embedding space), ``s``: the logit scale (learned from 10, or fixed
    with ``logit_scale``), ``attn``: class ``c``'s cross-attention map (sums to 1 over classes),
    ``a``: a learned scalar. No per-class parameters.
    """

    def __init__(
        self,
        pixel_channels: int,
        embedding_dim: int,
        class_dim: int,
        class_projection: ClassProjection = "mlp",
        logit_scale: float | None = None,
    ) -> None:
        super().__init__()
        if class_projection not in CLASS_PROJECTIONS:
            choices = ", ".join(CLASS_PROJECTIONS)
            raise ValueError(f"unknown class_projection {class_projection!r}: choose from {choices}")
        if class_projection == "frozen":
            class_dim = embedding_dim
        self.pixel_projection = nn.Conv2d(pixel_channels, class_dim, 1)
        if class_projection == "mlp":
            self.class_projection = nn.Sequential(
                nn.Linear(embedding_dim, class_dim * 2), nn.GELU(), nn.Linear(class_dim * 2, class_dim)
            )
        elif class_projection == "linear":
            self.class_projection = nn.Linear(embedding_dim, class_dim)
        else:
            self.class_projection = nn.Identity()
        if logit_scale is None:
            self.log_scale = nn.Parameter(torch.tensor(2.3))  # exp(2.3) ~ 10, a usual cosine-logit scale
        else:
            self.register_buffer("log_scale", torch.tensor(math.log(logit_scale)))
        self.attention_weight = nn.Parameter(torch.tensor(0.0))

    @property
    def scale(self) -> float:
        """``s``: the factor on the cosines."""
        return float(self.log_scale.exp())

    def forward(
        self, pixels: torch.Tensor, class_vectors: torch.Tensor, attention: torch.Tensor | None = None
    ) -> torch.Tensor:
        pixel = F.normalize(self.pixel_projection(pixels), dim=1)  # [B, E, h, w]
        classes = F.normalize(self.class_projection(class_vectors.to(pixel.dtype)), dim=-1)  # [C, E]
        logits = torch.einsum("behw,ce->bchw", pixel, classes) * self.log_scale.exp()
        if attention is not None:
            logits = logits + self.attention_weight * attention.shape[1] * attention.to(logits.dtype)
        return logits
