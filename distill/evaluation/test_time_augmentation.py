"""Test-time augmentation: class probabilities averaged over rescaled and flipped copies of each image.

mmsegmentation's usual setting is scales 0.5-1.75 plus a horizontal flip; the label-space
unification work pseudo-labels with flip and scales 0.5-2.0. Each copy is resized to ``scale``
times the model's own input size (rounded to the model's input multiple), predicted, turned into
probabilities with a softmax, resized back to the base output size and un-flipped; the mean over
copies is the prediction. Averaging probabilities, not logits, is what those systems do: a copy
that is unsure then weighs less than a confident one.

``TestTimeAugmentation.parse("flip,scales=0.75,1,1.25")``: the command-line form.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from prompt_kit.bounds import MAX_SCALE, STRICT, real
from prompt_kit.errors import PromptKitError

TTA_EXAMPLE = "flip,scales=0.75,1,1.25"
MAX_SCALES = 32  # copies per image: each is a full forward pass


class TestTimeAugmentation(BaseModel):
    """Which copies of an image are predicted and averaged: ``scales`` (1 = the model's size), each also flipped."""

    __test__ = False  # not a pytest class, whatever its name says
    model_config = ConfigDict(**STRICT, frozen=True)

    flip: bool = False
    scales: tuple[real(0, MAX_SCALE, low_open=True), ...] = Field(default=(1.0,), min_length=1, max_length=MAX_SCALES)

    @property
    def copies(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)

    @property
    def is_identity(self) -> bool:
        return not self.flip and self.scales == (1.0,)

    def describe(self) -> str:
        """The command-line form: ``flip,scales=0.75,1,1.25`` (``none`` for no augmentation)."""
        if self.is_identity:
            return "none"
        parts = ["flip"] if self.flip else []
        if self.scales != (1.0,):
            parts.append("scales=" + ",".join(f"{scale:g}" for scale in self.scales))
        return ",".join(parts)

    @classmethod
    def parse(cls, text: str | None) -> TestTimeAugmentation:
        """``flip``, ``scales=A,B,...`` or both, comma-separated; ``none`` or empty: no augmentation."""
        if text is None or text.strip() in ("", "none"):
            return cls()
        flip, scales, reading_scales = False, [], False
        for token in (part.strip() for part in text.split(",")):
            if token == "flip":
                flip, reading_scales = True, False
            elif token.startswith("scales="):
                reading_scales = True
                scales.append(_scale(token.removeprefix("scales="), text))
            elif reading_scales and token:
                scales.append(_scale(token, text))
            else:
                raise PromptKitError(f"--tta {text!r}: unknown part {token!r}; write it as e.g. {TTA_EXAMPLE}")
        if len(scales) > MAX_SCALES:
            raise PromptKitError(f"--tta {text!r}: {len(scales)} scales, more than {MAX_SCALES}: give fewer")
        try:
            return cls(flip=flip, scales=tuple(scales) if scales else (1.0,))
        except ValueError as exc:
            raise PromptKitError(
                f"--tta {text!r}: each scale must be a finite number in (0, {MAX_SCALE:g}] (e.g. {TTA_EXAMPLE})"
            ) from exc


def _scale(token: str, text: str) -> float:
    try:
        scale = float(token)
    except ValueError:
        raise PromptKitError(f"--tta {text!r}: {token!r} is not a scale; write it as e.g. {TTA_EXAMPLE}") from None
    if not math.isfinite(scale) or not 0 < scale <= MAX_SCALE:
        raise PromptKitError(
            f"--tta {text!r}: scale {token!r} is out of range: give finite numbers in (0, {MAX_SCALE:g}], "
            f"e.g. {TTA_EXAMPLE}"
        )
    return scale


def scaled_size(size: tuple[int, int], scale: float, multiple: int) -> tuple[int, int]:
    """``size`` times ``scale``, each side rounded to the nearest positive multiple of ``multiple``."""
    return tuple(max(multiple, round(side * scale / multiple) * multiple) for side in size)


@torch.no_grad()
def predict_probabilities(
    predict: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    augmentation: TestTimeAugmentation,
    multiple: int = 1,
    out_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Class probabilities ``[B, C, *out_size]`` averaged over the augmentation's copies of ``images``.

    Args:
        predict: images ``[B, 3, h, w]`` in [0, 1] -> logits ``[B, C, h', w']`` at any resolution.
        images: ``[B, 3, H, W]`` in [0, 1] at the model's own input size (scale 1).
        augmentation: the copies to average.
        multiple: the model's input-size multiple (scaled copies are rounded to it).
        out_size: the probabilities' size; default the input's ``H x W``.
    """
    out_size = tuple(out_size or images.shape[-2:])
    total = None
    for scale in augmentation.scales:
        size = scaled_size(tuple(images.shape[-2:]), scale, multiple)
        scaled = images if size == tuple(images.shape[-2:]) else _resize(images, size)
        for flipped in (False, True) if augmentation.flip else (False,):
            copy = scaled.flip(-1) if flipped else scaled
            probabilities = predict(copy).float().softmax(1)
            if flipped:
                probabilities = probabilities.flip(-1)
            if tuple(probabilities.shape[-2:]) != out_size:
                probabilities = _resize(probabilities, out_size)
            total = probabilities if total is None else total + probabilities
    return total / augmentation.copies


def augmented_predictor(
    predict: Callable[[torch.Tensor], torch.Tensor], augmentation: TestTimeAugmentation, multiple: int = 1
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``predict`` under ``augmentation``, returning log-probabilities (their argmax is the averaged prediction)."""
    if augmentation.is_identity:
        return predict

    def predict_augmented(images: torch.Tensor) -> torch.Tensor:
        return predict_probabilities(predict, images, augmentation, multiple).clamp_min(1e-12).log()

    return predict_augmented


def _resize(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


__all__ = ["TTA_EXAMPLE", "TestTimeAugmentation", "augmented_predictor", "predict_probabilities", "scaled_size"]
