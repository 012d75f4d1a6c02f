"""The Teacher interface: what KD, the output cache, evaluation and compare need of any teacher.

Nothing here says how a teacher was made. A teacher maps images in [0, 1] to class logits at
its own resolution, names its feature maps with their channels and stride (as timm's
``FeatureInfo`` does), knows its taxonomy and the input-size multiple it needs, and carries an
identity that changes whenever its outputs could (the output cache is keyed on it). A teacher is
frozen: it is built in eval mode without gradients, and the student trainer never updates it.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from networks.feature_info import FeatureInfo, OutputInfo
from prompt_kit.errors import PromptKitError


class Teacher(nn.Module):
    """A frozen segmentation teacher; subclasses implement :meth:`predict`.

    Attributes:
        kind: ``"diffusion"``, ``"prompt_network"`` or ``"network"``: what made it (for messages and provenance only).
        class_names: the taxonomy it predicts, in label-id order.
        input_multiple: image sides must be multiples of this.
    """

    kind: str = "teacher"

    def __init__(self, class_names: list[str], input_multiple: int = 1, identity: str | None = None) -> None:
        super().__init__()
        self.class_names = list(class_names)
        self.input_multiple = int(input_multiple)
        self._identity = identity
        self._output_info: OutputInfo | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits ``[B, C, h, w]`` and named feature maps for images ``[B, 3, H, W]`` in [0, 1]."""
        raise NotImplementedError

    def forward(
        self, images: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits ``[B, C, h, w]`` (``h = H / stride``), and the named feature maps on request."""
        self.check_size(images.shape[-2:])
        logits, features = self.predict(images)
        return (logits, features) if return_features else logits

    def check_size(self, size) -> None:
        """A one-line error when an image size is not a multiple of :attr:`input_multiple`."""
        height, width = (int(side) for side in size)
        multiple = self.input_multiple
        if height % multiple or width % multiple:
            raise PromptKitError(
                f"image size {height}x{width} is not a multiple of {multiple} for this {self.kind} teacher: use e.g. "
                f"{max(multiple, height // multiple * multiple)}x{max(multiple, width // multiple * multiple)}"
            )

    def declared_output_info(self) -> OutputInfo | None:
        """Logit stride and feature maps as the model declares them (a registered network does), or None to measure."""
        return None

    @property
    def output_info(self) -> OutputInfo:
        """What :meth:`forward` returns with ``return_features=True`` (logits stride, named maps): declared
        by the network, else read once from a dry forward on a small image (the diffusion teacher's maps
        depend on its whole config)."""
        if self._output_info is None:
            self._output_info = self.declared_output_info() or self._measured_output_info()
        return self._output_info

    @property
    def feature_info(self) -> list[FeatureInfo]:
        """Each named feature map's channels and stride (from :attr:`output_info`)."""
        return list(self.output_info.features)

    def _measured_output_info(self) -> OutputInfo:
        side = 2 * max(self.input_multiple, 16)
        parameter = next(self.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        with torch.no_grad():
            logits, features = self.predict(torch.zeros(1, 3, side, side, device=device))
        features_info = tuple(
            FeatureInfo(name, int(value.shape[1]), max(1, side // int(value.shape[-1])))
            for name, value in features.items()
        )
        return OutputInfo(int(logits.shape[1]), max(1, side // int(logits.shape[-1])), features_info)

    @property
    def identity(self) -> str:
        """A digest that changes whenever this teacher's outputs could (its kind, taxonomy and weights)."""
        if self._identity is None:
            digest = hashlib.sha256(f"{self.kind} {self.class_names} {self.input_multiple}".encode())
            for name, tensor in self.state_dict().items():
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            self._identity = digest.hexdigest()
        return self._identity


def freeze(teacher: Teacher) -> Teacher:
    """The teacher in eval mode with gradients off: how every consumer receives it."""
    return teacher.eval().requires_grad_(False)


__all__ = ["FeatureInfo", "Teacher", "freeze"]
