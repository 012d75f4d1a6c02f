"""SegFormer (Xie et al., 2021) from transformers, built from its config: no hub access.

``transformers`` is imported when the network is built, not when ``networks`` is imported, so the
other networks do not pay for it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from networks.base import SegmentationNetwork
from networks.feature_info import feature_maps
from networks.pretrained import load_backbone_state

# MiT-b0: the encoder of SegFormer-B0.
MIT_B0 = {
    "depths": [2, 2, 2, 2],
    "hidden_sizes": [32, 64, 160, 256],
    "num_attention_heads": [1, 2, 5, 8],
    "sr_ratios": [8, 4, 2, 1],
    "patch_sizes": [7, 3, 3, 3],
    "strides": [4, 2, 2, 2],
    "mlp_ratios": [4, 4, 4, 4],
    "decoder_hidden_size": 256,
}

# MiT-b2: the encoder of SegFormer-B2 (Xie et al., 2021, table 6).
MIT_B2 = {
    "depths": [3, 4, 6, 3],
    "hidden_sizes": [64, 128, 320, 512],
    "num_attention_heads": [1, 2, 5, 8],
    "sr_ratios": [8, 4, 2, 1],
    "patch_sizes": [7, 3, 3, 3],
    "strides": [4, 2, 2, 2],
    "mlp_ratios": [4, 4, 4, 4],
    "decoder_hidden_size": 768,
}


class SegFormer(SegmentationNetwork):
    """transformers' ``SegformerForSemanticSegmentation`` with the MiT config of :attr:`encoder_config`.

    ``backbone`` is the MiT encoder (``SegformerModel``); the all-MLP decode head is transformers'
    own, run step by step so that its fused 256-channel map at stride 4 (before dropout and the
    classifier) can be returned as ``"decoder"``. ``pretrained`` may also be a local transformers
    folder of a MiT-b0 or SegFormer-B0 checkpoint (e.g. ``nvidia/mit-b0`` downloaded beforehand):
    it is read with ``from_pretrained(local_files_only=True)``, which renames old checkpoint keys.
    """

    backbone_key_prefixes = ("backbone.", "segformer.")
    checkpoint_key_renames = (("segformer.", "backbone."),)
    encoder_config: dict = MIT_B0

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        from transformers import SegformerConfig, SegformerForSemanticSegmentation

        config = SegformerConfig(**self.encoder_config, num_labels=num_classes)
        model = SegformerForSemanticSegmentation(config)
        self.num_classes = num_classes
        self.backbone = model.segformer
        self.decode_head = model.decode_head
        self.feature_info = feature_maps(encoder=(config.hidden_sizes[-1], 32), decoder=(config.decoder_hidden_size, 4))

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        stages = self.backbone(images, output_hidden_states=True, return_dict=True).hidden_states
        head = self.decode_head
        size = stages[0].shape[-2:]
        projected = []
        for stage, projection in zip(stages, head.linear_projections, strict=True):
            batch, _, height, width = stage.shape
            tokens = projection(stage)  # [B, h*w, D]
            stage_map = tokens.transpose(1, 2).reshape(batch, -1, height, width)
            projected.append(F.interpolate(stage_map, size=size, mode="bilinear", align_corners=False))
        fused = head.activation(head.batch_norm(head.linear_fuse(torch.cat(projected[::-1], dim=1))))
        logits = head.classifier(head.dropout(fused))
        return logits, {"encoder": stages[-1], "decoder": fused}

    def load_backbone_weights(self, source: str | Path) -> list[str]:
        """Load a state dict file, or a local transformers folder (MiT-b0 / SegFormer-B0), into the encoder."""
        if not Path(source).is_dir():
            return super().load_backbone_weights(source)
        from transformers import SegformerModel

        loaded = SegformerModel.from_pretrained(str(source), local_files_only=True)
        return load_backbone_state(self.backbone, loaded.state_dict(), source=str(source), strip_prefixes=())

    def read_checkpoint_folder(self, folder: Path) -> dict[str, torch.Tensor]:
        """A local transformers ``SegformerForSemanticSegmentation`` folder's weights (keys ``segformer.*``)."""
        from transformers import SegformerForSemanticSegmentation

        loaded = SegformerForSemanticSegmentation.from_pretrained(str(folder), local_files_only=True)
        return loaded.state_dict()


class SegFormerB0(SegFormer):
    """SegFormer-B0: MiT-b0 and a 256-channel all-MLP head, the usual real-time student."""

    encoder_config = MIT_B0


class SegFormerB2(SegFormer):
    """SegFormer-B2: the MiT-b2 encoder and a 768-channel all-MLP head (transformers)."""

    encoder_config = MIT_B2
