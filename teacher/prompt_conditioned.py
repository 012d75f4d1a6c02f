"""A prompt-conditioned teacher behind the Teacher interface: the model and its class embeddings.

The model is a ``DiffusionSegTeacher`` or an ``EmbeddingClassifiedNetwork``; both take
``ClassEmbeddings`` (never strings). This wrapper holds the embeddings a run uses (the teacher's
own, or another prompt set's of the same taxonomy) as buffers, so they move with the module and
the teacher reads like any other: images in, logits out.
"""

from __future__ import annotations

import dataclasses

import torch

from networks.feature_info import OutputInfo
from prompt_kit.class_embeddings import ClassEmbeddings
from teacher.checkpoint import PromptTeacherModel
from teacher.config import DiffusionTeacherConfig
from teacher.interface import Teacher


class PromptConditionedTeacher(Teacher):
    """``model(images, embeddings)`` as a :class:`Teacher`; logits at the model's stride (4, or the network's)."""

    def __init__(self, model: PromptTeacherModel, embeddings: ClassEmbeddings, identity: str | None = None) -> None:
        model.check_embeddings(embeddings)
        super().__init__(embeddings.class_names, model.input_multiple, identity)
        self.kind = "diffusion" if isinstance(model.config, DiffusionTeacherConfig) else "prompt_network"
        self.model = model
        self.register_buffer("tokens", embeddings.tokens.detach().clone(), persistent=True)
        self.register_buffer("attention_mask", embeddings.attention_mask.detach().clone(), persistent=True)
        self.register_buffer("pooled", embeddings.pooled.detach().clone(), persistent=True)
        self._meta = embeddings

    @property
    def embeddings(self) -> ClassEmbeddings:
        """The class embeddings the teacher is conditioned on, on the module's device."""
        return dataclasses.replace(
            self._meta, tokens=self.tokens, attention_mask=self.attention_mask, pooled=self.pooled
        )

    def declared_output_info(self) -> OutputInfo | None:
        if not hasattr(self.model, "feature_info"):  # the diffusion model's maps follow its config: measured
            return None
        return OutputInfo(self.num_classes, self.model.logits_stride, tuple(self.model.feature_info))

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.model(images, self.embeddings, return_features=True)


__all__ = ["PromptConditionedTeacher"]
