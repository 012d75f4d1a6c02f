"""The settings every trainer on the training core shares, in parts, with one set of defaults.

``RunConfig`` (a student or a network teacher) and ``TeacherTrainingConfig`` (a prompt-conditioned
teacher) both derive from :class:`TrainingSettings` and state only what is theirs, and the
defaults that differ (steps, learning rate, class weighting, output folder). The fields stay
flat, so YAML files and ``--set`` keys read as before, and a run folder's config hash (over the
sorted values) is unchanged. The loop's settings are built from them in one place
(:meth:`TrainingSettings.loop_settings`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sized
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from distill.training.core import LoopSettings
from prompt_kit.bounds import (
    STRICT,
    BatchSize,
    GradClip,
    ImageCount,
    LearningRate,
    PositiveImageCount,
    PositiveSteps,
    Seed,
    Steps,
    WeightDecay,
    Workers,
)


class OptimisationSettings(BaseModel):
    """How the weights move: steps, batch, learning rate and its warm-up, decay and clipping."""

    model_config = STRICT

    steps: Steps
    batch_size: BatchSize = 8
    lr: LearningRate
    weight_decay: WeightDecay = 1e-4
    warmup_steps: Steps = 30
    grad_clip: GradClip = 1.0


class DataSettings(BaseModel):
    """What is trained on: the data spec, the train images kept out, augmentation and loader workers."""

    model_config = STRICT

    data: str = "synthetic"
    holdout: ImageCount = Field(
        default=0,
        description="evaluate on this many train images kept out of training (tune here; val stays unseen); "
        "the same images every run's holdout keeps out",
    )
    augment: bool = Field(default=True, description="random scale, crop, flip and colour jitter while training")
    num_workers: Workers = 0


class EvaluationSettings(BaseModel):
    """How often and on what the model is evaluated while it trains."""

    model_config = STRICT

    eval_every: PositiveSteps = 200
    val_images: PositiveImageCount | None = Field(
        default=None, description="evaluate on the first N val images (None: all)"
    )
    panels: Annotated[int, Field(ge=0, le=64)] = 4

    def evaluated_images(self, dataset: Sized) -> int:
        """How many of ``dataset``'s images an evaluation reads (``val_images`` caps it): metrics' ``eval_images``."""
        return len(dataset) if self.val_images is None else min(self.val_images, len(dataset))


class CheckpointSettings(BaseModel):
    """How often a run saves what a killed run resumes from."""

    model_config = STRICT

    checkpoint_every: PositiveSteps = Field(default=100, description="steps between checkpoints (resume with --resume)")


class TrainingSettings(OptimisationSettings, DataSettings, EvaluationSettings, CheckpointSettings):
    """Every part, plus the seed and the precision: what a trainer on the training core reads."""

    seed: Seed = 0
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"

    def loop_settings(self, **changes) -> LoopSettings:
        """The training core's settings from these fields; ``changes`` for a phase of its own (the denoiser)."""
        settings = LoopSettings(
            steps=self.steps,
            batch_size=self.batch_size,
            seed=self.seed,
            checkpoint_every=self.checkpoint_every,
            eval_every=self.eval_every,
            grad_clip=self.grad_clip,
            num_workers=self.num_workers,
        )
        return dataclasses.replace(settings, **changes)


__all__ = [
    "CheckpointSettings",
    "DataSettings",
    "EvaluationSettings",
    "OptimisationSettings",
    "TrainingSettings",
]
