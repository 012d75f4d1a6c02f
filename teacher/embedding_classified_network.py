"""A segmentation network whose classifier is the class embeddings: a prompt-conditioned teacher without a UNet.

LSeg (Li et al., 2022) in promptkit's terms: an ImageNet-pretrained network of the students'
registry (EfficientNet-Lite2 + FPN by default) is trained end to end, and its 1x1 classifier is
replaced by :class:`~teacher.head.EmbeddingClassifier`, the cosine of each pixel's decoder
feature with each class's pooled prompt embedding. With ``class_projection: frozen`` the class
side is the prompts' own embeddings, unchanged, so the wording reaches the logits and cannot be
trained away.

Why it exists: on two CPU cores no diffusion-feature teacher reached the pretrained student
(CamVid held-out, 96x128: 0.534 at best against the student's 0.564), while the same network
with a learned 1x1 classifier does (0.686 val at 192x256). This keeps that strength and puts the
prompts back where they decide the classes. It takes the diffusion teacher's place everywhere:
``distill teacher --prompts P --set model.architecture=network``, compare, prompt transfer, KD at
``"decoder"`` and ``"encoder"``.
"""

from __future__ import annotations

import torch

from networks import create_network, normalize_images
from networks.feature_info import FeatureInfo
from networks.registry import OFFLINE_IMAGENET_NETWORKS
from prompt_kit.class_embeddings import ClassEmbeddings
from teacher.config import NetworkTeacherConfig
from teacher.head import EmbeddingClassifier


class EmbeddingClassifiedNetwork(torch.nn.Module):
    """``network`` (features only) + ``EmbeddingClassifier`` on its ``"decoder"`` map.

    ``forward(images, class_embeddings) -> logits [B, C, h, w]`` at the network's decoder stride
    (8 for EfficientNet-Lite), images in [0, 1]. The network's own 1x1 classifier is kept (its
    checkpoints stay loadable) but frozen and unused.
    """

    def __init__(self, config: NetworkTeacherConfig, imagenet: bool = True) -> None:
        super().__init__()
        self.config = config
        weights = "imagenet" if imagenet and config.network in OFFLINE_IMAGENET_NETWORKS else None
        self.network = create_network(config.network, config.num_classes, pretrained=weights)
        self.network.classifier.requires_grad_(False)
        self.classifier = EmbeddingClassifier(
            self.network.feature_channels["decoder"],
            config.embedding_dim,
            config.class_dim,
            config.class_projection,
            config.logit_scale,
        )

    @property
    def feature_info(self) -> list[FeatureInfo]:
        """The network's declared maps (``encoder``, ``decoder``): what :meth:`forward` returns as features."""
        return list(self.network.feature_info)

    @property
    def logits_stride(self) -> int:
        """The logits classify the ``decoder`` map, so they sit at its stride."""
        return self.network.logits_stride

    @property
    def input_multiple(self) -> int:
        """Image sides must be multiples of this (the network's own requirement)."""
        return int(getattr(self.network, "input_multiple", 1))

    def check_embeddings(self, embeddings: ClassEmbeddings) -> None:
        self.config.check_embeddings(embeddings)

    def forward(
        self, images: torch.Tensor, class_embeddings: ClassEmbeddings, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits ``[B, C, h, w]`` for images ``[B, 3, H, W]`` in [0, 1]; features ``encoder`` and ``decoder``."""
        self.check_embeddings(class_embeddings)
        _, features = self.network.forward_features(normalize_images(images))
        logits = self.classifier(features["decoder"], class_embeddings.pooled.to(features["decoder"].device))
        return (logits, features) if return_features else logits


__all__ = ["EmbeddingClassifiedNetwork"]
