"""KD terms as data: which outputs a loss compares, through which connector, with which weight schedule.

As mmrazor has it (recorders, connectors, a loss mapping) but values only, no code in YAML::

    kd:
      - {loss: dist}
      - {loss: cgd, weight: 3, student: decoder, teacher: decoder, connector: conv1x1,
         params: {tau: 2}, schedule: {warmup_steps: 200, decay_start: 0.9, decay_end: 1.0}}

``student`` and ``teacher`` name an output: ``logits`` or one of the named feature maps the model
returns (``feature_info`` of a network, ``decoder``/``up0``... of the diffusion teacher). Names are
checked against what the models offer, and the shapes the models declare (``OutputInfo``) are checked
against each loss, before any step and without running either model. A
``conv1x1`` connector maps the student's channels to the teacher's; it is trained with the student,
kept in its checkpoints (resumed) and not part of the exported student. ``--kd kl=1,cwd=3`` stays
the shorthand for logit terms (``cirkd``: decoder features) with ``kd_params`` shared by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field, field_validator, model_validator
from torch import nn

from distill.kd.losses import create_loss, loss_class, loss_parameters, parse_kd_spec
from networks.feature_info import OutputInfo
from prompt_kit.bounds import STRICT, LossWeight, Share, Steps
from prompt_kit.errors import PromptKitError

LOGITS = "logits"
FEATURE_DEFAULTS = {"cirkd": "decoder"}  # shorthand terms that compare features rather than logits


class WeightSchedule(BaseModel):
    """A term's weight over training: linear warm-up, then (optionally) a linear early decay to 0.

    With ``n = step + 1`` (the 1-based call count SegDistill's schedule runs on, for the warm-up
    and the decay alike): ``factor = min(1, n / warmup_steps)``, times ``(end - n) / (end - start)``
    for ``start < n < end`` and 0 from ``n >= end``, where ``start = decay_start * steps`` and
    ``end = decay_end * steps`` (SegDistill's "+SW": warm-up over the first steps, decay near the
    end; wzpscott/SegDistill ``mmseg/models/distillation/losses.py``, ``warmup``/``earlydecay``).
    Where warm-up and decay overlap the two factors multiply; SegDistill's decay replaces the
    warm-up value there (its configs never overlap them).
    """

    model_config = STRICT

    warmup_steps: Steps = 0
    decay_start: Share = Field(default=1.0, description="fraction of the steps where the decay starts")
    decay_end: Share = Field(default=1.0, description="fraction of the steps where the weight is 0")

    @model_validator(mode="after")
    def _ordered(self) -> WeightSchedule:
        if self.decay_end < self.decay_start:
            raise ValueError(f"decay_end ({self.decay_end}) must be >= decay_start ({self.decay_start})")
        return self

    def factor(self, step: int, steps: int) -> float:
        """The multiplier of the term's weight at 0-based ``step`` of ``steps``."""
        calls = step + 1
        factor = min(1.0, calls / self.warmup_steps) if self.warmup_steps else 1.0
        if self.decay_start < 1.0:
            start, end = self.decay_start * steps, self.decay_end * steps
            if calls >= end:
                return 0.0
            if calls > start:
                factor *= (end - calls) / (end - start)
        return factor


class KDTermSpec(BaseModel):
    """One KD term: ``weight * schedule(step) * loss(connector(student[output]), teacher[output], mask)``."""

    model_config = STRICT

    loss: str
    weight: LossWeight = 1.0
    student: str = Field(default=LOGITS, description="the student output compared: logits or a feature name")
    teacher: str = Field(default=LOGITS, description="the teacher output compared: logits or a feature name")
    connector: Literal["none", "conv1x1"] = Field(
        default="none", description="conv1x1: a trained 1x1 conv from the student's channels to the teacher's"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="the loss's parameters, e.g. {tau: 2}")
    schedule: WeightSchedule | None = None

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, loss: str) -> str:
        loss_class(loss)  # a one-line error listing the valid names
        if loss == "none":
            raise ValueError("loss none is not a KD term: leave the term out (kd: [] or --kd none)")
        return loss

    @model_validator(mode="after")
    def _known_params(self) -> KDTermSpec:
        valid = [p for p in loss_parameters(self.loss) if p != "align"]
        unknown = [key for key in self.params if key not in valid]
        if unknown:
            raise ValueError(f"{self.loss} does not take {unknown[0]!r} (parameters: {', '.join(valid)})")
        return self

    @property
    def label(self) -> str:
        """The name the term is logged and saved under: the loss, and its outputs when not the logits."""
        if self.student == self.teacher == LOGITS:
            return self.loss
        return f"{self.loss}.{self.student}" + ("" if self.teacher == self.student else f".{self.teacher}")


@dataclass
class KDTerm:
    """A built term: its spec, its loss module, and its connector (after :func:`connect`)."""

    spec: KDTermSpec
    loss: nn.Module
    connector: nn.Module | None = None

    def weight_at(self, step: int, steps: int) -> float:
        schedule = self.spec.schedule
        return self.spec.weight * (schedule.factor(step, steps) if schedule else 1.0)


def shorthand_specs(kd: str, kd_params: dict[str, Any]) -> list[KDTermSpec]:
    """``--kd kl=1,cwd=3`` with ``kd_params`` as term specs (shared parameters go to every term that takes them)."""
    if kd.strip() == "none":
        return []
    try:
        spec = [(name, weight) for name, weight in parse_kd_spec(kd) if name != "none"]
    except ValueError as exc:
        raise PromptKitError(f"--kd {kd!r}: {exc}") from exc
    names = [name for name, _ in spec]
    valid = "; ".join(f"{name}: {', '.join(p for p in loss_parameters(name) if p != 'align')}" for name in names)
    own = {key: value for key, value in kd_params.items() if isinstance(value, dict)}
    shared = {key: value for key, value in kd_params.items() if not isinstance(value, dict)}
    for key in own:
        if key not in names:
            raise PromptKitError(f"kd_params.{key}: {key} is not a term of --kd {kd!r}")
    for key in shared:
        if not any(key in loss_parameters(name) for name in names):
            raise PromptKitError(f"kd_params.{key}: no term of --kd {kd!r} takes it (parameters: {valid})")
    specs = []
    for name, weight in spec:
        unknown = [key for key in own.get(name, {}) if key not in loss_parameters(name)]
        if unknown:
            raise PromptKitError(f"kd_params.{name}.{unknown[0]}: {name} does not take it (parameters: {valid})")
        params = {key: value for key, value in shared.items() if key in loss_parameters(name)}
        params.update(own.get(name, {}))
        output = FEATURE_DEFAULTS.get(name, LOGITS)
        specs.append(KDTermSpec(loss=name, weight=weight, student=output, teacher=output, params=params))
    return specs


def build_terms(specs: list[KDTermSpec], align: str) -> list[KDTerm]:
    """The loss module of every term (connectors come with :func:`connect`, once the shapes are known)."""
    labels = [spec.label for spec in specs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise PromptKitError(f"two KD terms are both {repeated[0]!r}: give them different outputs or merge them")
    terms = []
    for spec in specs:
        try:
            terms.append(KDTerm(spec, create_loss(spec.loss, align=align, **spec.params)))
        except (ValueError, TypeError) as exc:
            raise PromptKitError(f"kd term {spec.label}: {str(exc).splitlines()[0]}") from exc
    return terms


def teacher_feature_names(terms: list[KDTerm]) -> tuple[str, ...]:
    """The teacher feature maps the terms compare (what a teacher-output cache keeps beside the logits)."""
    return tuple(sorted({term.spec.teacher for term in terms if term.spec.teacher != LOGITS}))


def pick(output: str, logits: torch.Tensor, features: dict[str, torch.Tensor] | None, side: str) -> torch.Tensor:
    """``logits`` or the named feature map; an unknown name is an error listing the available ones."""
    if output == LOGITS:
        return logits
    if not features or output not in features:
        offered = ", ".join([LOGITS, *(features or {})])
        raise PromptKitError(f"the {side} has no output {output!r}: choose from {offered}")
    return features[output]


def connect(
    terms: list[KDTerm],
    student: OutputInfo,
    teacher: OutputInfo,
    student_size: tuple[int, int],
    teacher_size: tuple[int, int],
    device: torch.device | str = "cpu",
) -> None:
    """Check every term on the shapes both models declare; build its connector from their channels.

    Each loss runs once on zero tensors of those shapes (no model runs). A term whose student and
    teacher maps differ in channels needs ``connector: conv1x1`` (unless its loss compares maps of
    any channel count, as ``at`` and ``cirkd`` do); the error says which.
    """
    student_out = student.placeholders(student_size)
    teacher_out = teacher.placeholders(teacher_size)
    valid = torch.ones(1, *student_size, dtype=torch.bool)
    for term in terms:
        spec = term.spec
        student_map = pick(spec.student, student_out[0], student_out[1], "student")
        teacher_map = pick(spec.teacher, teacher_out[0], teacher_out[1], "teacher")
        if spec.connector == "conv1x1":
            term.connector = nn.Conv2d(student_map.shape[1], teacher_map.shape[1], 1)
            with torch.no_grad():
                student_map = term.connector(student_map)
            term.connector.to(device)
        training = term.loss.training
        term.loss.eval()  # a dry call must not step a loss's own state (cgd's shuffle count)
        try:
            with torch.no_grad():
                term.loss(student_map, teacher_map, valid)
        except (ValueError, RuntimeError) as exc:
            shapes = f"student {spec.student} {list(student_map.shape[1:])}, teacher {spec.teacher} "
            shapes += str(list(teacher_map.shape[1:]))
            differ = student_map.shape[1] != teacher_map.shape[1]
            hint = " (different channels: add connector: conv1x1)" if differ else ""
            raise PromptKitError(f"kd term {spec.label} does not fit: {shapes}{hint}") from exc
        finally:
            term.loss.train(training)


def connector_parameters(terms: list[KDTerm]) -> list[nn.Parameter]:
    return [p for term in terms if term.connector is not None for p in term.connector.parameters()]


def term_state(terms: list[KDTerm]) -> nn.ModuleDict:
    """Every term's loss and connector under its label: what checkpoints keep beside the student."""
    modules = nn.ModuleDict()
    for term in terms:
        modules[term.spec.label.replace(".", "__")] = nn.ModuleDict(
            {"loss": term.loss, **({"connector": term.connector} if term.connector is not None else {})}
        )
    return modules


def kd_loss(
    terms: list[KDTerm],
    student_out: tuple[torch.Tensor, dict[str, torch.Tensor]],
    teacher_out: tuple[torch.Tensor, dict[str, torch.Tensor] | None],
    valid: torch.Tensor,
    step: int,
    steps: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of every term at ``step``, and each term's unweighted value to log."""
    total = student_out[0].new_zeros((), dtype=torch.float32)
    logged: dict[str, float] = {}
    for term in terms:
        spec = term.spec
        student = pick(spec.student, student_out[0], student_out[1], "student")
        teacher = pick(spec.teacher, teacher_out[0], teacher_out[1], "teacher")
        if term.connector is not None:
            student = term.connector(student)
        value = term.loss(student.float(), teacher.float(), valid)
        total = total + term.weight_at(step, steps) * value
        logged[spec.label] = value.item()
    return total, logged


__all__ = [
    "KDTerm",
    "KDTermSpec",
    "WeightSchedule",
    "build_terms",
    "connect",
    "connector_parameters",
    "kd_loss",
    "teacher_feature_names",
    "shorthand_specs",
    "term_state",
]
