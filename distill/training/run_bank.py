"""Which view bank a run reads: its spec from the run's config and shapes, and the banked training data.

``distill.kd.view_bank`` stores and reads banks; this module decides, from a ``RunConfig``, the
teacher's input size and the student's declared outputs, what a run's bank holds (the logits and
each teacher map its KD terms compare, at the size the losses read them). ``distill run`` builds
the bank on first use; ``distill cache`` builds the same bank ahead (``build_run_bank``).
"""

from __future__ import annotations

from typing import Any

from distill.datasets import PairedViews
from distill.kd.terms import LOGITS, KDTerm, pick
from distill.kd.view_bank import (
    FEATURE_PREFIX,
    LOGITS_KEY,
    BankedTeacherViews,
    BankSpec,
    BuildReport,
    ViewBank,
    ensure_view_bank,
)
from distill.training.run_config import RunConfig, kd_terms, train_views
from networks.feature_info import OutputInfo

Size = tuple[int, int]


def bank_outputs(
    terms: list[KDTerm], student: OutputInfo, student_size: Size, align: str
) -> tuple[tuple[str, Size | None], ...]:
    """What a view bank stores for ``terms``: the logits and each teacher map they read, with its storage size.

    Under ``downsample_teacher`` a teacher map is stored at the size of the student map it is compared
    with (the loss would resize it there first), else at the teacher's own size; so is a map two
    terms compare with student maps of different sizes.
    """
    student_out = student.placeholders(student_size)
    sizes: dict[str, set[Size]] = {LOGITS: set()}
    for term in terms:
        student_map = pick(term.spec.student, student_out[0], student_out[1], "student")
        sizes.setdefault(term.spec.teacher, set()).add(tuple(student_map.shape[-2:]))
    if not sizes[LOGITS]:  # no term reads the logits: the pixel masks still do, at the student's logits size
        sizes[LOGITS].add(tuple(student_out[0].shape[-2:]))
    outputs = []
    for name in sorted(sizes, key=lambda name: (name != LOGITS, name)):
        size = next(iter(sizes[name])) if align == "downsample_teacher" and len(sizes[name]) == 1 else None
        outputs.append((LOGITS_KEY if name == LOGITS else FEATURE_PREFIX + name, size))
    return tuple(outputs)


def bank_spec(config: RunConfig, train_data, teacher_size: Size, terms: list[KDTerm], student: OutputInfo) -> BankSpec:
    """The view bank a run with ``teacher_cache: views`` reads (its data, sizes, views and stored outputs).

    The student's seed, loss weights and schedule are not in it: every such run of a teacher shares
    the bank.
    """
    data = config.data
    if train_data.split != "train":  # a held-out part of train: its split name and size identify it
        data = f"{data} {train_data.split} ({len(train_data)} images)"
    return BankSpec(
        data=data,
        images=len(train_data),
        teacher_size=tuple(teacher_size),
        views=config.teacher_views,
        view_seed=config.view_seed,
        augment=config.augment,
        scale_range=tuple(config.scale_range),
        flip=True,
        outputs=bank_outputs(terms, student, config.student_size, config.align),
        dtype=config.view_bank_dtype,
        top_k=config.view_bank_top_k,
    )


def banked_views(
    config: RunConfig, teacher, train_data, views: PairedViews, teacher_size: Size, student: OutputInfo, accelerator
) -> tuple[BankedTeacherViews, dict[str, Any]]:
    """The run's views with the teacher's banked outputs (the bank built first when missing), and its cost."""
    spec = bank_spec(config, train_data, teacher_size, kd_terms(config), student)
    report = ensure_view_bank(teacher, config.teacher, views, spec, accelerator, batch_size=config.batch_size)
    return BankedTeacherViews(views, ViewBank(report.folder, spec)), bank_cost(report, spec)


def bank_cost(report: BuildReport, spec: BankSpec) -> dict[str, Any]:
    """The metrics.json entries of a banked run: the teacher's forwards in this run and the bank's record."""
    return {
        "teacher_forward_images": report.teacher_forward_images,
        "view_bank": {
            "folder": str(report.folder),
            "built": report.built,
            "build_seconds": report.seconds,
            "views": spec.stored_views,
            "dtype": spec.dtype,
            "top_k": spec.top_k,
            "bytes": sum(path.stat().st_size for path in report.folder.glob("shard-*.safetensors")),
        },
    }


def run_views(config: RunConfig, train_data, teacher_size: Size | None) -> PairedViews:
    """The training views of a run (``teacher_size``: also the teacher's crop, for a live teacher)."""
    return PairedViews(
        train_data,
        teacher_size=teacher_size,
        student_size=config.student_size,
        train=config.augment,
        seed=config.seed,
        scale_range=config.scale_range,
        color_jitter=config.color_jitter,
        views=train_views(config),
        view_seed=config.view_seed,
    )


__all__ = ["bank_cost", "bank_outputs", "bank_spec", "banked_views", "run_views"]
