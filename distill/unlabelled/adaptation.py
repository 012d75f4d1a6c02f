"""`distill adapt`: a student adapted to a new domain in buckets of unlabelled images, ordered by vDNA.

After the incremental-learning work (a Cityscapes DeepLabV3+ adapted to KITTI-360): the target
domain's train images are ranked by their Visual DNA distance to the source domain (per image,
against the source's vDNA on the same bins, at the student's ``layers``) and cut into ``buckets``
(``asc``: nearest first, ``desc``: farthest first, ``random``: a seeded shuffle). For each bucket
in turn: the teacher pseudo-labels it (a pixel whose prediction entropy exceeds ``max_entropy``
nats, 0.3 there, is ignored), the student of the previous bucket is KD-fine-tuned on it
(``distill run`` with its weights as ``init_weights``; with ``replay`` on the bucket mixed with
the source's labelled train split, ``SOURCE+folder:BUCKET``), and the result is evaluated on the source
and the target val splits (the target's labels are used for nothing else). The table shows, per
bucket, the target gain and the source forgetting against the unadapted student.

``min_kept_share`` is a label-free guard: a bucket whose pseudo-labels keep less than that share
of its pixels (the teacher is unsure of most of it) is skipped, and the student stays as it was.
``min_image_share`` is the same guard per image: an image whose pseudo-labels keep less than that
share of its pixels is left out of its bucket (a bucket left with no image is skipped). Either
share is known before any training and uses no target label.

Every bucket is a folder (``bucket_<k>/pseudo`` a ``folder:`` dataset, ``bucket_<k>/run`` a run
folder), ``adapt.json`` is rewritten atomically after each bucket, and a killed run continues
with the same command: finished buckets are read back, a killed fine-tuning resumes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from prompt_kit.bounds import MAX_BUCKETS, MAX_SEED, STRICT, Bins, LearningRate, Nats, PositiveSteps, Share
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_text
from prompt_kit.readers import read_json

Order = Literal["asc", "desc", "random"]
RECORD = "adapt.json"


class AdaptConfig(BaseModel):
    """What one adaptation run does; fields not given come from the student run's own config."""

    model_config = STRICT

    teacher: str
    student: str = Field(description="the finished student run to adapt")
    source: str = Field(description="the source domain's data spec (its train split gives the reference vDNA)")
    target: str = Field(description="the target domain's data spec (train: unlabelled buckets; val: evaluation)")
    out: str
    buckets: Annotated[int, Field(ge=1, le=MAX_BUCKETS)] = 4
    order: Order = "asc"
    layers: tuple[str, ...] = ("encoder",)
    bins: Bins = 1000
    max_entropy: Nats | None = 0.3
    tta: str | None = None
    steps_per_bucket: PositiveSteps = 200
    kd: str = "dist"
    replay: bool = Field(
        default=False,
        description="train each bucket mixed with the source's labelled train split (against forgetting)",
    )
    min_kept_share: Share | None = Field(
        default=None,
        description="skip a bucket whose pseudo-labels keep less than this share of its pixels (None: train on all)",
    )
    min_image_share: Share | None = Field(
        default=None,
        description="leave out an image whose pseudo-labels keep less than this share of its pixels (None: keep all)",
    )
    lr: LearningRate | None = Field(default=None, description="default: a tenth of the student run's")
    seed: Annotated[int, Field(ge=0, le=MAX_SEED - MAX_BUCKETS)] = 0  # bucket k trains with seed + k


RECORD_MODEL = ConfigDict(extra="allow", allow_inf_nan=False)  # a record may carry more than is checked


class Scores(BaseModel):
    """A student's mIoU on the source and the target val splits (target None: the target has no labels)."""

    model_config = RECORD_MODEL

    source_miou: float | None = Field(ge=0, le=1)
    target_miou: float | None = Field(ge=0, le=1)


class BucketRow(Scores):
    """One bucket of ``adapt.json``: what it held, whether it trained, and the scores after it."""

    bucket: int = Field(ge=0)
    images: int = Field(ge=0)
    mean_distance: float
    kept_share: float = Field(ge=0, le=1)
    images_kept: int | None = Field(default=None, ge=0)
    skipped: bool = False
    target_gain: float | None = None
    source_forgetting: float | None


class BucketOrder(BaseModel):
    model_config = RECORD_MODEL

    target_distance: float | None = None
    buckets: list[list[str]] = Field(default_factory=list)
    mean_distance: list[float] = Field(default_factory=list)


class AdaptRecord(BaseModel):
    """``adapt.json``: the config, the unadapted scores, the bucket order and one row per finished bucket."""

    model_config = RECORD_MODEL

    config: dict[str, Any]
    unadapted: Scores | None  # None until the unadapted student is scored
    order: BucketOrder | None  # None until the target images are ordered
    buckets: list[BucketRow]


def read_record(path: Path) -> dict[str, Any]:
    """``adapt.json`` through the checked readers and :class:`AdaptRecord`: damaged or mistyped is one line."""
    from pydantic import ValidationError

    from prompt_kit.yaml_files import describe_validation_error

    raw = read_json(path, "adaptation record")
    try:
        AdaptRecord.model_validate(raw)
    except ValidationError as exc:
        raise PromptKitError(
            f"{path} is not an adaptation record ({describe_validation_error(exc)}): give a folder written by "
            "`distill adapt`"
        ) from None
    return raw


def bucket_order(distances: list[float], buckets: int, order: Order, seed: int) -> list[list[int]]:
    """Image indices in ``buckets`` nearly equal, contiguous groups of the chosen order."""
    if buckets > len(distances):
        raise PromptKitError(f"--buckets {buckets} is more than the {len(distances)} target images")
    indices = sorted(range(len(distances)), key=lambda i: (distances[i], i))
    if order == "desc":
        indices.reverse()
    elif order == "random":
        random.Random(seed).shuffle(indices)
    size, extra = divmod(len(indices), buckets)
    groups, start = [], 0
    for bucket in range(buckets):
        end = start + size + (1 if bucket < extra else 0)
        groups.append(indices[start:end])
        start = end
    return groups


def _evaluate(run: Path, source: str, target: str | None) -> dict[str, float | None]:
    """Source and target val mIoU (``target`` None: the target has no labelled val split, so no target score)."""
    from distill.training.saved_evaluation import evaluate_saved

    def miou(data: str) -> float | None:
        value = evaluate_saved(run, data=data, split="val")["miou"]
        return None if value is None else round(value, 4)

    return {"source_miou": miou(source), "target_miou": None if target is None else miou(target)}


def labelled_val(spec: str) -> bool:
    """Whether the data spec has a val split with labels (what the target's scores need)."""
    from distill.datasets import create_dataset

    try:
        dataset = create_dataset(spec, "val")
    except PromptKitError:
        return False
    return len(dataset) > 0 and getattr(dataset, "labelled", True)


def _bucket_overrides(config: AdaptConfig, base, index: int, data: str, previous: Path, run: Path) -> dict[str, Any]:
    """The run config of bucket ``index``'s fine-tuning, over the student run's own config."""
    return {
        "data": data,
        "teacher": config.teacher,
        "kd": config.kd,
        "steps": config.steps_per_bucket,
        "eval_every": config.steps_per_bucket,
        "checkpoint_every": max(1, config.steps_per_bucket // 2),
        "lr": config.lr or base.lr / 10,
        "warmup_steps": 0,
        "seed": config.seed + index,
        "init_weights": str(previous),
        "student_pretrained": None,
        "holdout": 0,
        "out": str(run),
        "panels": 0,
    }


def _bucket_config(config: AdaptConfig, base, overrides: dict[str, Any]):
    from pydantic import ValidationError

    from distill.training.run_config import RunConfig, kd_terms
    from prompt_kit.yaml_files import describe_validation_error

    try:
        run_config = RunConfig.model_validate({**base.model_dump(mode="python"), **overrides})
    except ValidationError as exc:
        raise PromptKitError(f"the buckets' fine-tuning config is invalid: {describe_validation_error(exc)}") from None
    try:
        kd_terms(run_config)  # the KD spec parses and its parameters exist
    except ValueError as exc:
        raise PromptKitError(f"kd {config.kd!r}: {exc}") from None
    return run_config


def _open_record(config: AdaptConfig, out: Path, overwrite: bool) -> dict[str, Any]:
    """The record to continue, or a new one; a folder of other settings or other contents is refused."""
    import shutil

    from prompt_kit.outputs import check_output_folder

    check_output_folder(out, "--out", own=RECORD)
    record_path = out / RECORD
    if record_path.is_file() and overwrite:
        foreign = [child.name for child in out.iterdir() if not _written_by_adapt(child.name)]
        if foreign:
            raise PromptKitError(
                f"{out} holds {foreign[0]!r}, which no adaptation wrote: move it or choose another --out"
            )
        for child in out.iterdir():  # only what an adaptation writes: the record, the reference, the buckets
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    if record_path.is_file():
        try:
            record = read_record(record_path)
        except PromptKitError as exc:
            raise PromptKitError(f"{exc}; to start this adaptation over, pass --overwrite") from None
        if recorded_config(record["config"], record_path) != config.model_dump(mode="json"):
            raise PromptKitError(
                f"{out} holds an adaptation with other settings: choose another --out, or pass --overwrite"
            )
        order = record["order"]
        if order is not None and not len(order["buckets"]) == len(order["mean_distance"]) == config.buckets:
            raise PromptKitError(f"{record_path} has a damaged bucket order: to start over, pass --overwrite")
        return record
    if out.is_dir() and any(not child.name.endswith(".tmp") for child in out.iterdir()):
        raise PromptKitError(f"{out} is not empty and holds no adaptation: choose a new or empty --out")
    return {"config": config.model_dump(mode="json"), "unadapted": None, "order": None, "buckets": []}


def _written_by_adapt(name: str) -> bool:
    """The record, the source vDNA, a bucket folder, or one of their staging files (``.NAME.XXXX.tmp``)."""
    own = (RECORD, "source_vdna.safetensors")
    return name in own or name.startswith("bucket_") or (name.endswith(".tmp") and name.lstrip(".").startswith(own))


def adapt(config: AdaptConfig, overwrite: bool = False) -> dict[str, Any]:
    """Run (or continue) the adaptation; returns ``adapt.json``'s content.

    Everything that can be checked is checked before the first file is written: the student run,
    the test-time augmentation, the fine-tuning config of the buckets and the record of an earlier
    try. A bucket with fewer train images than the student's batch trains with a batch of all of
    them (the record says so); the target's val split scores the buckets when it has labels, else
    only the source's forgetting is reported.
    """
    from distill.datasets import create_dataset
    from distill.evaluation.test_time_augmentation import TestTimeAugmentation
    from distill.training.run_config import RunConfig
    from distill.training.saved_evaluation import find_run_folder
    from distill.training.student import train_student
    from distill.unlabelled.prediction import ImageSource, image_source
    from distill.unlabelled.pseudo_labels import RECORD as PSEUDO_RECORD
    from distill.unlabelled.pseudo_labels import pseudo_label
    from distill.unlabelled.vdna import dataset_vdna

    out = Path(config.out)
    student_run, weights = find_run_folder(Path(config.student))
    if not (student_run / "metrics.json").is_file():
        raise PromptKitError(f"{config.student} is not a finished run: adapt a student that finished training")
    augmentation = TestTimeAugmentation.parse(config.tta)
    base = RunConfig.model_validate(load_config_dict(student_run))
    for index in (0, config.buckets - 1):  # the first and last seeds, lr and steps, before anything is written
        _bucket_config(config, base, _bucket_overrides(config, base, index, config.source, weights, out / "check"))
    target_scored = config.target if labelled_val(config.target) else None
    target = image_source(config.target, "train")
    if config.buckets > len(target.images):
        raise PromptKitError(f"--buckets {config.buckets} is more than the {len(target.images)} target images")
    record = _open_record(config, out, overwrite)
    record_path = out / RECORD
    out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")

    if record["unadapted"] is None:
        record["unadapted"] = _evaluate(student_run, config.source, target_scored)
        save()
    if record["order"] is None:
        reference = out / "source_vdna.safetensors"
        vdna, _, _, _ = dataset_vdna(student_run, config.source, list(config.layers), split="train", bins=config.bins)
        vdna.save(reference, metadata={"model": str(student_run), "data": config.source})
        _, names, distances, distance = dataset_vdna(
            student_run, config.target, list(config.layers), split="train", bins=config.bins, against=reference
        )
        groups = bucket_order(distances, config.buckets, config.order, config.seed)
        record["order"] = {
            "target_distance": round(distance, 6),
            "buckets": [[names[i] for i in group] for group in groups],
            "mean_distance": [round(sum(distances[i] for i in group) / len(group), 6) for group in groups],
        }
        save()
    by_name = {item.name: item for item in target.images}
    missing = [name for group in record["order"]["buckets"] for name in group if name not in by_name]
    if missing:
        raise PromptKitError(f"{record_path} names target image {missing[0]!r}, which the target no longer has")
    previous = weights
    for index, names in enumerate(record["order"]["buckets"]):
        folder = out / f"bucket_{index}"
        run = folder / "run"
        if index < len(record["buckets"]):
            if not record["buckets"][index].get("skipped"):
                previous = run / "checkpoints" / "best" / "model.safetensors"
            continue
        pseudo = folder / "pseudo"
        if not (pseudo / PSEUDO_RECORD).is_file():
            kept = pseudo_label(
                config.teacher,
                ImageSource([by_name[name] for name in names]),
                pseudo,
                augmentation,
                max_entropy=config.max_entropy,
                min_image_share=config.min_image_share,
            )
        else:
            kept = read_json(pseudo / PSEUDO_RECORD, "pseudo-label record")
            if not isinstance(kept, dict) or not isinstance(kept.get("kept_share"), (int, float)):
                raise PromptKitError(
                    f"{pseudo / PSEUDO_RECORD} is damaged: to start this adaptation over, pass --overwrite"
                )
        entry = {
            "bucket": index,
            "images": len(names),
            "mean_distance": record["order"]["mean_distance"][index],
            "images_kept": kept.get("images_written", len(names)),
            "kept_share": kept["kept_share"],
        }
        data = f"{config.source}+folder:{pseudo}" if config.replay else f"folder:{pseudo}"
        train_images = len(create_dataset(data, "train")) if entry["images_kept"] else 0
        unsure = config.min_kept_share is not None and kept["kept_share"] < config.min_kept_share
        if unsure or train_images == 0:
            before = record["buckets"][-1] if record["buckets"] else record["unadapted"]
            scores = {key: before[key] for key in ("source_miou", "target_miou")}  # the student is unchanged
            reason = "few_pixels_kept" if unsure else "no_train_images"
            record["buckets"].append(
                {**entry, "skipped": True, "skip_reason": reason, **scores, **_changes(scores, record["unadapted"])}
            )
            save()
            continue
        overrides = _bucket_overrides(config, base, index, data, previous, run)
        overrides["batch_size"] = min(base.batch_size, train_images)  # a bucket smaller than a batch: all of it
        entry["batch_size"] = overrides["batch_size"]
        if not (run / "metrics.json").is_file():  # else it finished before the record was written
            train_student(_bucket_config(config, base, overrides), resume=(run / "checkpoints").is_dir())
        scores = _evaluate(run, config.source, target_scored)
        record["buckets"].append({**entry, "skipped": False, **scores, **_changes(scores, record["unadapted"])})
        save()
        previous = run / "checkpoints" / "best" / "model.safetensors"
    return record


def recorded_config(recorded: dict[str, Any], path: Path) -> dict[str, Any]:
    """The config an ``adapt.json`` at ``path`` recorded, with fields added since it was written at their defaults."""
    try:
        return AdaptConfig.model_validate(recorded).model_dump(mode="json")
    except ValueError:
        raise PromptKitError(f"{path} was written by another promptkit version: choose another --out") from None


def _changes(scores: dict[str, float | None], unadapted: dict[str, float | None]) -> dict[str, float | None]:
    def change(after: float | None, before: float | None) -> float | None:
        return None if after is None or before is None else round(after - before, 4)

    return {
        "target_gain": change(scores["target_miou"], unadapted["target_miou"]),
        "source_forgetting": change(unadapted["source_miou"], scores["source_miou"]),
    }


def load_config_dict(run: Path) -> dict[str, Any]:
    from prompt_kit.readers import read_yaml

    values = read_yaml(run / "config.yaml", "run config") or {}
    if not isinstance(values, dict):
        raise PromptKitError(f"{run / 'config.yaml'} is not a run config")
    return values


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def adapt_table(record: dict[str, Any]) -> str:
    """The per-bucket table (Markdown): the target gain and the source forgetting after each bucket.

    A target without labels shows ``-`` for its scores; a bucket that trained with a smaller batch
    than the student's says so beside its image count.
    """
    unadapted = record["unadapted"]
    lines = [
        "| after bucket | images | mean vDNA distance | pixels kept | target mIoU | gain | source mIoU | forgetting |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| (unadapted) | | | | {_number(unadapted['target_miou'])} | | {_number(unadapted['source_miou'])} | |",
    ]
    for row in record["buckets"]:
        bucket = f"{row['bucket']} (skipped)" if row.get("skipped") else str(row["bucket"])
        kept = row.get("images_kept", row["images"])
        images = str(row["images"]) if kept == row["images"] else f"{kept} of {row['images']}"
        if "batch_size" in row:
            images += f" (batch {row['batch_size']})"
        lines.append(
            f"| {bucket} | {images} | {row['mean_distance']:.4f} | {row['kept_share']:.2f} | "
            f"{_number(row['target_miou'])} | {_number(row['target_gain'], True)} | {_number(row['source_miou'])} | "
            f"{_number(row['source_forgetting'], True)} |"
        )
    if unadapted["target_miou"] is None:
        lines.append("")
        lines.append("The target has no labelled val split: only the source's forgetting is measured.")
    return "\n".join(lines)


__all__ = [
    "AdaptConfig",
    "AdaptRecord",
    "adapt",
    "adapt_table",
    "bucket_order",
    "labelled_val",
    "read_record",
    "recorded_config",
]
