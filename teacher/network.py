"""Any registered segmentation network as a teacher: ImageNet-normalised input, logits at its own stride.

The network is one of ``networks``' registry (students and teacher-size networks keep one
contract), trained by ``distill teacher --model`` or ``distill run``, or loaded from a user's
checkpoint. Its logits are returned at the network's output stride (not upsampled), so cached
outputs stay small; KD's ``align`` option and evaluation resize them explicitly.
"""

from __future__ import annotations

import torch

from networks import SegmentationNetwork, normalize_images
from networks.feature_info import OutputInfo
from teacher.interface import Teacher


class NetworkTeacher(Teacher):
    """A :class:`Teacher` around a ``SegmentationNetwork``-contract network."""

    kind = "network"

    def __init__(
        self, network: SegmentationNetwork, class_names: list[str], name: str = "", identity: str | None = None
    ) -> None:
        if network.num_classes != len(class_names):
            raise ValueError(f"the network predicts {network.num_classes} classes, the taxonomy has {len(class_names)}")
        super().__init__(class_names, input_multiple=getattr(network, "input_multiple", 1), identity=identity)
        self.network = network
        self.name = name or type(network).__name__

    def declared_output_info(self) -> OutputInfo:
        return OutputInfo(self.num_classes, self.network.logits_stride, tuple(self.network.feature_info))

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.network.forward_features(normalize_images(images))


__all__ = ["NetworkTeacher"]
