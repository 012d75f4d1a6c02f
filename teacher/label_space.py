"""A teacher in another label space, seen through a master-labels map: its probabilities summed per student class.

A teacher trained on the source dataset's classes (Cityscapes' 19, say) can teach a student of
the target's (CamVid's 11) when a :class:`~prompt_kit.label_space.LabelSpaceMap` says which
source classes make up each target class: each target's probability is the sum of its source
classes' (``LabelSpaceMap.target_probabilities``), renormalised after the void classes' mass is
dropped. The wrapper returns the log of those probabilities as its logits, so every KD loss that
takes a softmax (at temperature 1) sees exactly the mapped distribution; the feature maps pass
through unchanged.
"""

from __future__ import annotations

import hashlib

import torch

from prompt_kit.errors import PromptKitError
from prompt_kit.label_space import LabelSpaceMap
from teacher.interface import Teacher


class LabelSpaceTeacher(Teacher):
    """``teacher`` predicting ``mapping.target_classes``: log of the summed source-class probabilities."""

    def __init__(self, teacher: Teacher, mapping: LabelSpaceMap) -> None:
        if list(mapping.source_classes) != teacher.class_names:
            raise PromptKitError(
                f"the label map's source classes ({', '.join(mapping.source_classes[:3])}, ...) are not the teacher's "
                f"({', '.join(teacher.class_names[:3])}, ...): write the map from the teacher's taxonomy"
            )
        digest = hashlib.sha256(teacher.identity.encode())
        digest.update(mapping.to_csv().encode())
        super().__init__(list(mapping.target_classes), teacher.input_multiple, identity=digest.hexdigest())
        self.kind = teacher.kind
        self.teacher = teacher
        self.mapping = mapping

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, features = self.teacher.predict(images)
        probabilities = self.mapping.target_probabilities(logits.float().softmax(1))
        return probabilities.clamp_min(1e-8).log(), features


__all__ = ["LabelSpaceTeacher"]
