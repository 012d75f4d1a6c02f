"""`distill compare`: which way of naming the classes makes the best teacher, and the best student.

Every cell of the grid is an ordinary run folder under ``out``:
``teachers/<style>/seed<t>/`` (``distill teacher``, one per teacher seed),
``students/<style>/<kd>/teacher<t>/seed<s>/`` (``distill run``: every student seed on every
teacher seed) and ``students/no_kd/seed<s>/`` (the same student without a teacher: the
baseline). Beside the prompt styles, ``teachers`` names other teachers, one row each: a teacher
folder used as it is, or a registered network trained here first (``teachers/<name>/seed0/``,
with the ``network_teacher`` settings; one teacher each, teacher seeds are for the prompt
styles); rows are named after the folder or the network. A cell whose ``metrics.json`` exists
is finished and skipped; a killed student cell resumes from its last checkpoint, a killed
teacher cell too (both trainers sit on the training core). The table joins the orthogonality of
each style's class embeddings (the tensors the teacher saw), the teacher's mIoU over teacher
seeds, the student's mIoU over (teacher seed x student seed), and the gain over the no-KD student
with its 95% interval; a second table gives every pair of styles' difference with its interval
(``distill.evaluation.seed_statistics`` says how), and a third the prompt transfer
(``distill.compare.prompt_transfer``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, Field, field_validator, model_validator

from distill.training.run_folder import resumable
from prompt_kit.bounds import STRICT, Repeats
from prompt_kit.errors import PromptKitError
from prompt_kit.styles import style_names
from prompt_kit.yaml_files import describe_validation_error
from teacher import TeacherFolder

NO_KD = "no_kd"
CELL_KINDS = ("teacher", "network_teacher", "student")
# fields of each cell's config that compare fills in itself, and the option a user sets instead
TEACHER_KEYS = {
    "prompts": "--prompt-sets",
    "data": "--data",
    "out": "--out",
    "encoder": "--encoder",
    "seed": "--teacher-seeds",
}
RUN_KEYS = {
    "teacher": "--out",
    "prompts": "--prompt-sets",
    "student": "--student",
    "kd": "--kd",
    "data": "--data",
    "out": "--out",
    "seed": "--seeds",
}


class CompareConfig(BaseModel):
    """The grid: styles x KD specs x seeds, plus the no-KD baseline; defaults run on a laptop CPU."""

    model_config = STRICT

    data: str = "synthetic"
    styles: list[str] = Field(
        default_factory=lambda: list(style_names()),
        description="prompt styles, one diffusion teacher each ([] with teachers)",
    )
    teachers: list[str] = Field(
        default_factory=list,
        description="more teachers, one row each: a teacher folder (used as it is) or a network name (trained here)",
    )
    network_teacher: dict[str, Any] = Field(
        default_factory=dict, description="RunConfig fields for network teachers trained here (e.g. steps)"
    )
    prompt_sets: str | None = Field(
        default=None, description="folder of <style>.yaml prompt sets (default: the curated sets of the taxonomy)"
    )
    kd: list[str] = Field(
        default_factory=lambda: ["dist"], description="one row per KD spec, e.g. [dist, kl, 'kl=1,cwd=3']"
    )
    student: str = "tiny"
    seeds: Repeats = Field(default=3, description="student seeds on every teacher")
    teacher_seeds: Repeats = Field(
        default=1, description="teachers per prompt style (a network teacher row has one, seed 0)"
    )
    out: str = "runs/compare"
    encoder: str | None = Field(default=None, description="prompt encoder for every teacher (default: minilm)")
    teacher: dict[str, Any] = Field(default_factory=dict, description="TeacherTrainingConfig fields")
    run: dict[str, Any] = Field(default_factory=dict, description="RunConfig fields")
    baseline: bool = Field(default=True, description="also train the student without KD")
    transfer: bool = Field(
        default=True, description="evaluate every style's teachers given every other style's prompts (2+ styles)"
    )

    @field_validator("styles")
    @classmethod
    def _known_styles(cls, styles: list[str]) -> list[str]:
        unknown = [style for style in styles if style not in style_names()]
        if unknown:
            raise ValueError(f"unknown style {unknown[0]}: choose from {', '.join(style_names())}")
        return styles

    @model_validator(mode="after")
    def _something_to_compare(self) -> CompareConfig:
        if not self.styles and not self.teachers:
            raise ValueError(f"no teachers to compare: give styles ({', '.join(style_names())}) or teachers")
        labels = [teacher_label(spec) for spec in self.teachers]
        clash = sorted({label for label in labels if labels.count(label) > 1 or label in self.styles})
        if clash:
            raise ValueError(f"two teachers would share the row and folder {clash[0]!r}: rename a teacher folder")
        return self

    @field_validator("kd")
    @classmethod
    def _kd_given(cls, kd: list[str]) -> list[str]:
        specs = list(dict.fromkeys(spec.strip() for spec in kd if spec.strip()))
        if not specs or any(spec == "none" for spec in specs):
            raise ValueError("give at least one KD spec other than none (the no-KD baseline is always trained)")
        return specs


@dataclass
class Cell:
    """One run folder of the grid."""

    kind: str  # one of CELL_KINDS
    label: str
    path: Path
    style: str | None
    kd: str
    seed: int
    config: Any = field(repr=False)
    teacher_seed: int = 0

    @property
    def done(self) -> bool:
        return (self.path / "metrics.json").is_file()

    @property
    def resumable(self) -> bool:
        """Killed after a checkpoint: continued rather than started over."""
        names = ("denoiser", "last") if self.kind == "teacher" else ("last",)
        return resumable(self.path, [self.path / "checkpoints" / name for name in names])

    def metrics(self) -> dict[str, Any]:
        return json.loads((self.path / "metrics.json").read_text())


def teacher_label(spec: str) -> str:
    """The row and folder name of a ``teachers`` entry: a network's name, or a folder's own name."""
    return Path(spec.rstrip("/")).name or spec


def teacher_is_folder(spec: str) -> bool:
    """A ``teachers`` entry names an existing folder (used as it is) rather than a network to train."""
    from networks import list_networks

    if Path(spec).is_dir():
        return True
    if spec in list_networks():
        return False
    raise PromptKitError(
        f"teacher {spec!r} is neither a teacher folder nor a network name (distill networks lists them)"
    )


def kd_folder_name(spec: str) -> str:
    """A folder name for a KD spec: ``kl=1.0,cwd=3.0`` -> ``kl-1.0_cwd-3.0``."""
    return spec.replace("=", "-").replace(",", "_").replace(" ", "")


def prompt_set_path(config: CompareConfig, style: str, taxonomy_name: str) -> Path:
    """The prompt set a style's teacher uses: from ``prompt_sets`` or the curated ones."""
    from prompt_kit.resources import prompts_dir

    folder = Path(config.prompt_sets) if config.prompt_sets else prompts_dir() / taxonomy_name
    path = folder / f"{style}.yaml"
    if not path.is_file():
        hint = (
            "write it with `promptkit generate`"
            if config.prompt_sets
            else f"no curated sets ship for {taxonomy_name!r}; pass --prompt-sets DIR"
        )
        raise PromptKitError(f"no prompt set for style {style!r} at {path}: {hint}")
    return path


def plan_cells(config: CompareConfig) -> list[Cell]:
    """Every run folder of the comparison, teachers first so students can use them."""
    from distill.datasets import create_dataset
    from distill.training.prompt_teacher import TeacherTrainingConfig
    from distill.training.run_config import RunConfig

    out = Path(config.out)
    for section, owned in (("teacher", TEACHER_KEYS), ("run", RUN_KEYS)):
        clash = sorted(set(getattr(config, section)) & set(owned))
        if clash:
            raise PromptKitError(
                f"{section}.{clash[0]} is set by compare itself: use {owned[clash[0]]} instead of {section}.{clash[0]}"
            )
    taxonomy = create_dataset(config.data, "train").taxonomy
    cells: list[Cell] = []
    try:
        teacher_dirs: dict[str, list[str]] = {}  # row label -> its teacher folders, by teacher seed
        for style in config.styles:
            teacher_dirs[style] = []
            for teacher_seed in range(config.teacher_seeds):
                teacher_config = TeacherTrainingConfig(
                    **{
                        **config.teacher,
                        "prompts": str(prompt_set_path(config, style, taxonomy.name)),
                        "data": config.data,
                        "out": str(out / "teachers" / style / f"seed{teacher_seed}"),
                        "encoder": config.encoder,
                        "seed": teacher_seed,
                    }
                )
                label = f"teacher {style} seed {teacher_seed}"
                cells.append(
                    Cell(
                        "teacher",
                        label,
                        Path(teacher_config.out),
                        style,
                        "",
                        teacher_seed,
                        teacher_config,
                        teacher_seed,
                    )
                )
                teacher_dirs[style].append(teacher_config.out)
        for spec in config.teachers:
            label = teacher_label(spec)
            if teacher_is_folder(spec):
                if not TeacherFolder(spec).finished:
                    raise PromptKitError(f"teacher folder {spec} has no metrics.json: finish training it first")
                teacher_dirs[label] = [spec]
                continue
            from distill.training.network_teacher import network_teacher_config

            network_config = network_teacher_config(
                spec,
                {"data": config.data, "out": str(out / "teachers" / label / "seed0")},
                overrides=[f"{key}={json.dumps(value)}" for key, value in config.network_teacher.items()],
            )
            teacher_dirs[label] = [network_config.out]
            cells.append(
                Cell("network_teacher", f"teacher {label}", Path(network_config.out), label, "", 0, network_config)
            )
        students = [(name, kd, t) for name in teacher_dirs for kd in config.kd for t in range(len(teacher_dirs[name]))]
        if config.baseline:
            students.append((None, "none", 0))
        for seed in range(config.seeds):
            for style, kd, teacher_seed in students:
                if style is None:
                    folder = out / "students" / NO_KD / f"seed{seed}"
                    label = f"student no KD seed {seed}"
                else:
                    folder = out / "students" / style / kd_folder_name(kd) / f"teacher{teacher_seed}" / f"seed{seed}"
                    label = f"student {style} {kd} teacher {teacher_seed} seed {seed}"
                run_config = RunConfig(
                    **{
                        **config.run,
                        "teacher": None if style is None else teacher_dirs[style][teacher_seed],
                        "student": config.student,
                        "kd": kd,
                        "data": config.data,
                        "out": str(folder),
                        "seed": seed,
                    }
                )
                cells.append(Cell("student", label, folder, style, kd, seed, run_config, teacher_seed))
    except pydantic.ValidationError as exc:  # a bad teacher.* or run.* setting
        section = "teacher" if exc.title == TeacherTrainingConfig.__name__ else "run"
        raise PromptKitError(f"invalid compare setting {section}.{describe_validation_error(exc)}") from exc
    _check_before_training(cells)
    return cells


def _check_before_training(cells: list[Cell]) -> None:
    """Fail on a bad student name or KD spec now, not after an hour of teachers."""
    from distill.training.run_config import kd_terms, require_student

    for cell in cells:
        if cell.kind == "student":
            require_student(cell.config.student)
            kd_terms(cell.config)
