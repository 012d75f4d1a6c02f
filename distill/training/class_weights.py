"""Per-class cross-entropy weights from the train split's label frequencies.

Street scenes are dominated by road, sky and buildings; poles, signs, pedestrians and cyclists
are a few percent of the pixels together, so unweighted cross-entropy can leave them at zero IoU
for a long time. The usual remedies, both computed from the train labels:

- ``median_frequency`` (Eigen & Fergus 2015, SegNet on CamVid): ``w_c = median(f) / f_c``.
- ``inverse_sqrt_frequency``: ``w_c = 1 / sqrt(f_c)``, a gentler version that trades less of the
  large classes' precision for the small classes' recall.

``f_c`` is class ``c``'s share of the labelled pixels. Weights are scaled so that their
pixel-weighted mean is 1 (the loss keeps its usual magnitude, so learning rates carry over);
a class absent from the train labels gets weight 0.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from prompt_kit.errors import PromptKitError

ClassWeighting = Literal["none", "median_frequency", "inverse_sqrt_frequency"]
CLASS_WEIGHTINGS: tuple[str, ...] = get_args(ClassWeighting)


def label_pixel_counts(dataset, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Labelled pixels per class over every item of ``dataset`` (int64 ``[C]``)."""
    counts = torch.zeros(num_classes, dtype=torch.int64)
    for index in range(len(dataset)):
        label = dataset[index][1].reshape(-1)
        label = label[label != ignore_index]
        counts += torch.bincount(label, minlength=num_classes)[:num_classes]
    return counts


def class_weights_from_counts(counts: torch.Tensor, weighting: str) -> torch.Tensor | None:
    """``[C]`` float32 weights for ``F.cross_entropy(weight=...)``, or None for ``"none"``."""
    if weighting not in CLASS_WEIGHTINGS:
        raise PromptKitError(f"class_weighting {weighting!r} is not known: choose one of {', '.join(CLASS_WEIGHTINGS)}")
    if weighting == "none":
        return None
    if counts.sum() == 0:
        raise PromptKitError("class_weighting needs labelled pixels, but the train split has none")
    frequency = counts.double() / counts.sum()
    present = frequency > 0
    weights = torch.zeros_like(frequency)
    if weighting == "median_frequency":
        weights[present] = frequency[present].median() / frequency[present]
    else:
        weights[present] = frequency[present].rsqrt()
    weights = weights / (weights * frequency).sum()  # pixel-weighted mean 1
    return weights.float()


def class_weights(dataset, weighting: str, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """``weighting``'s weights from ``dataset``'s labels, on ``device``; None (and nothing read) for ``"none"``."""
    if weighting == "none":
        return None
    counts = label_pixel_counts(dataset, dataset.taxonomy.num_classes, dataset.taxonomy.ignore_index)
    return class_weights_from_counts(counts, weighting).to(device)


__all__ = ["CLASS_WEIGHTINGS", "ClassWeighting", "class_weights", "class_weights_from_counts", "label_pixel_counts"]
