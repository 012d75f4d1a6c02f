"""A frozen backbone's features for fixed views of every image, computed once per search.

A prompt search scores hundreds of prompt sets; each trial trains only a light head on a frozen
image model, so the image model's forward is the same in every trial. As the view bank does for
a teacher's outputs, each training image gets ``views`` geometric augmentations drawn ahead
(``PairedViews.view_params``: crop box, scale, flip from ``view_seed``), the backbone runs once on
each, and every trial reads the stored maps. Evaluation images are read whole, once. A trial then
costs head steps only (CamVid, 2 cores: 307 images x 4 views at 192x256 through EfficientNet-Lite2
in 60 s, once; a 300-step trial 84 s (median); docs/results.md, "Prompt-search controls").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import InterpolationMode
from tqdm import tqdm

from distill.datasets.paired_views import PairedViews, apply_geometry
from distill.datasets.segmentation_dataset import SegmentationDataset
from teacher.feature_latent import BackboneFeatureLatent


@dataclass
class FeatureBank:
    """Backbone maps ``features [N, C, h, w]`` (float16) and their label maps ``labels [N, H, W]`` (int64).

    ``N`` is images x views; view ``v`` of image ``i`` is row ``i * views + v``.
    """

    features: torch.Tensor
    labels: torch.Tensor
    views: int
    ignore_index: int

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def channels(self) -> int:
        return self.features.shape[1]


def build_feature_bank(
    dataset: SegmentationDataset,
    backbone: BackboneFeatureLatent,
    size: tuple[int, int],
    views: int = 1,
    view_seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
) -> FeatureBank:
    """Run ``backbone`` once on every view of every image of ``dataset`` at ``size``.

    ``views=0`` reads each image whole and unflipped (evaluation); ``views=V`` draws V augmented
    views per image, the same for every call with the same ``view_seed``.
    """
    if views < 0:
        raise ValueError(f"views must be 0 (whole images) or a positive count, got {views}")
    augmented = views > 0
    sampler = PairedViews(dataset, size, None, train=augmented, views=views, view_seed=view_seed)
    device = next(backbone.parameters()).device
    per_image = max(views, 1)
    features, labels, images = [], [], []

    def flush() -> None:
        with torch.no_grad():
            features.append(backbone(torch.stack(images).to(device)).to("cpu", torch.float16))
        images.clear()

    bar = tqdm(total=len(dataset) * per_image, desc="features", disable=not progress, leave=False)
    for index in range(len(dataset)):
        image, label = dataset[index]
        source = (image.shape[-2], image.shape[-1])
        for view in range(per_image):
            params = sampler.view_params(index, view, source)
            images.append(apply_geometry(image, params, size, InterpolationMode.BILINEAR, fill=0.0))
            labels.append(
                apply_geometry(label, params, size, InterpolationMode.NEAREST_EXACT, fill=dataset.ignore_index)
            )
            if len(images) == batch_size:
                flush()
            bar.update(1)
    if images:
        flush()
    bar.close()
    return FeatureBank(
        features=torch.cat(features),
        labels=torch.stack(labels).long(),
        views=per_image,
        ignore_index=dataset.ignore_index,
    )


__all__ = ["FeatureBank", "build_feature_bank"]
