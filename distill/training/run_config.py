"""RunConfig: every choice of a distillation run (`distill run`), validated before anything is loaded.

Its own module because everything that starts or reads a run needs it (compare, adapt, network
teachers, saved evaluation, benchmarks), while only ``distill.training.student`` trains one.
``kd_terms`` turns its KD fields into the terms the trainer computes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import torch
from pydantic import BeforeValidator, Field, model_validator

from distill.datasets.paired_views import check_augmentation
from distill.kd.losses.pixel_selection import KdPixels
from distill.kd.terms import KDTerm, KDTermSpec, build_terms, shorthand_specs
from distill.training.class_weights import ClassWeighting
from distill.training.configuration import ImageSize
from distill.training.settings import TrainingSettings
from networks import list_networks
from prompt_kit.bounds import (
    MAX_SCALE,
    LearningRate,
    LossWeight,
    Seed,
    Share,
    Steps,
    Views,
    real,
)
from prompt_kit.errors import PromptKitError

TeacherCache = Literal["views", "image", "live"]
TEACHER_CACHES: tuple[str, ...] = get_args(TeacherCache)


def _legacy_teacher_cache(value: Any) -> Any:
    """The booleans of configs written before views: true was the whole-image cache, false the live teacher."""
    if isinstance(value, bool):
        return "image" if value else "live"
    return value


class RunConfig(TrainingSettings):
    """A distillation run; every default runs on a laptop CPU."""

    prompts: str | None = Field(default=None, description="prompt set (default: the teacher's own)")
    teacher: str | None = Field(
        default=None, description="teacher folder: `distill teacher` (diffusion or --model) or a finished run"
    )
    student: str = "tiny"
    student_pretrained: str | None = Field(
        default=None, description="backbone weights: imagenet (where they ship) or a local state dict"
    )
    init_weights: str | None = Field(
        default=None,
        description="a whole-network checkpoint loaded before training (a torchvision-style state dict .pth/.pt/"
        ".safetensors, or a transformers folder for segformer): a trained teacher you already have",
    )
    kd: str | list[KDTermSpec] = Field(
        default="dist",
        description="KD spec ('kl=1,cwd=3') or a list of terms with outputs, connectors and schedules "
        "(distill.kd.terms); DIST is the default because it beat pixel KL on synthetic scenes with two teachers "
        "(README, KD against no KD)",
    )
    kd_params: dict[str, Any] = Field(default_factory=dict, description="e.g. {temperature: 2.0}")
    align: Literal["upsample_student", "downsample_teacher"] = "downsample_teacher"
    kd_pixels: KdPixels = Field(
        default="valid", description="pixels the KD terms compare: every labelled one, or where the teacher is right"
    )
    ce_weight: LossWeight = 1.0
    class_weighting: ClassWeighting = Field(
        default="none",
        description="cross-entropy class weights from the train labels (distill.training.class_weights); "
        "inverse_sqrt_frequency gave the tiny student +0.043 test mIoU on synthetic scenes (README)",
    )
    out: str = "runs/student"
    steps: Steps = Field(default=600, description="0: evaluate the initial weights (e.g. init_weights) only")
    teacher_size: ImageSize | None = Field(default=None, description="default: the teacher's training size")
    unlabelled_kd_confidence: Share = Field(
        default=0.5,
        description="images without labels (images:PATH): KD at the pixels where the teacher's top probability "
        "is at least this",
    )
    teacher_label_map: str | None = Field(
        default=None,
        description="a master-labels CSV from the teacher's classes to the data's: KD with a teacher in another "
        "label space sums its probabilities over the classes mapped to each student class",
    )
    student_size: ImageSize = (96, 128)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: LearningRate = 2e-3
    scale_range: tuple[real(0, MAX_SCALE, low_open=True), real(0, MAX_SCALE, low_open=True)] = Field(
        default=(0.75, 1.5), description="zoom factors drawn per sample; [1, 1] keeps the whole image (flips only)"
    )
    color_jitter: real(0, 1, high_open=True) = Field(
        default=0.2, description="brightness/contrast/saturation +-, in [0, 1)"
    )
    channels_last: bool = Field(
        default=True,
        description="student weights and images in NHWC: depthwise-conv students train ~15-30% faster on CPU "
        "(benchmarks/bench_students.py), as convnets under AMP do on GPUs",
    )
    teacher_cache: Annotated[TeacherCache, BeforeValidator(_legacy_teacher_cache)] = Field(
        default="views",
        description="views: the teacher's outputs for every pre-drawn view of every train image, computed once per "
        "teacher and read by every run (distill.kd.view_bank); image: once per whole image, re-cropped like each "
        "sample (blurs zoomed-in crops); live: the teacher runs on every batch",
    )
    teacher_views: Views = Field(
        default=16,
        description="crops drawn ahead per train image for a run with a teacher (each epoch reads one, every view "
        "once per cycle); 0: a fresh crop each epoch, as runs without a teacher train (live or image cache only)",
    )
    view_seed: Seed = Field(default=0, description="the seed of the views' geometry, shared by every run of a bank")
    view_bank_dtype: Literal["float32", "float16"] = Field(
        default="float32",
        description="how a view bank stores the teacher's outputs; float16 halves the disk but cost the CamVid "
        "student 0.008 of its 0.018 KD gain over 5 seeds, where float32 matched the live teacher (README)",
    )
    view_bank_top_k: Annotated[int, Field(ge=0, le=1024)] = Field(
        default=0,
        description="a view bank keeps only each pixel's k largest teacher logits (and the mass of the rest, spread "
        "evenly over the other classes when read; FKD's soft labels): for large label spaces; 0 keeps every class",
    )

    @model_validator(mode="after")
    def _check_augmentation(self) -> RunConfig:
        check_augmentation(self.scale_range, self.color_jitter)  # before any data or model is loaded
        if self.teacher_cache == "views" and self.teacher_views < 1:
            raise ValueError(
                "teacher_cache=views needs teacher_views >= 1 (0 draws a fresh crop each epoch, which no bank holds): "
                "set teacher_views=16, or teacher_cache=live"
            )
        return self

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format


def kd_terms(config: RunConfig) -> list[KDTerm]:
    """The run's KD terms: ``kd`` as a list of term specs, or the ``--kd`` shorthand with ``kd_params``.

    In the shorthand, ``kd_params`` holds parameters shared by the terms (each goes to every term
    that takes it and must be taken by one) and, under a term's name, that term's own; a parameter
    no term takes, a misspelt one included, is an error that lists the valid ones.
    """
    if isinstance(config.kd, str):
        specs = shorthand_specs(config.kd, config.kd_params)
    elif config.kd_params:
        raise PromptKitError("kd_params is for the --kd shorthand: with kd as a list, give each term its params")
    else:
        specs = list(config.kd)
    return build_terms(specs, config.align)


def require_student(name: str) -> None:
    """A one-line error listing the registered students when ``name`` is not one of them."""
    if name not in list_networks():
        raise PromptKitError(f"unknown student {name!r}: choose one of {', '.join(list_networks())}")


def train_views(config: RunConfig) -> int:
    """Views per image the run's crops come from: ``teacher_views`` with a teacher's KD terms, else 0 (fresh)."""
    return config.teacher_views if config.teacher and kd_terms(config) else 0


__all__ = ["TEACHER_CACHES", "RunConfig", "TeacherCache", "kd_terms", "require_student", "train_views"]
