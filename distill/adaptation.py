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

from pydantic import BaseModel, Field

from prompt_kit.bounds import MAX_SEED, STRICT, Bins, LearningRate, Nats, PositiveSteps, Share
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_text

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
    buckets: Annotated[int, Field(ge=1, le=10_000)] = 4
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
    seed: Annotated[int, Field(ge=0, le=MAX_SEED - 10_000)] = 0


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


def _evaluate(run: Path, source: str, target: str) -> dict[str, float]:
    from distill.saved_evaluation import evaluate_saved

    return {
        "source_miou": round(evaluate_saved(run, data=source, split="val")["miou"], 4),
        "target_miou": round(evaluate_saved(run, data=target, split="val")["miou"], 4),
    }


def adapt(config: AdaptConfig) -> dict[str, Any]:
    """Run (or continue) the adaptation; returns ``adapt.json``'s content."""
    from distill.prediction import ImageSource, image_source
    from distill.pseudo_labels import RECORD as PSEUDO_RECORD
    from distill.pseudo_labels import pseudo_label
    from distill.run_config import RunConfig
    from distill.saved_evaluation import find_run_folder
    from distill.student_training import train_student
    from distill.test_time_augmentation import TestTimeAugmentation
    from distill.vdna import dataset_vdna

    out = Path(config.out)
    student_run, weights = find_run_folder(Path(config.student))
    if not (student_run / "metrics.json").is_file():
        raise PromptKitError(f"{config.student} is not a finished run: adapt a student that finished training")
    record_path = out / RECORD
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if recorded_config(record["config"], record_path) != config.model_dump(mode="json"):
            raise PromptKitError(f"{out} holds an adaptation with other settings: choose another --out")
    else:
        if out.is_dir() and any(out.iterdir()):
            raise PromptKitError(f"{out} is not empty and holds no adaptation: choose a new or empty --out")
        record = {"config": config.model_dump(mode="json"), "unadapted": None, "order": None, "buckets": []}
    out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")

    if record["unadapted"] is None:
        record["unadapted"] = _evaluate(student_run, config.source, config.target)
        save()
    target = image_source(config.target, "train")
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
    base = RunConfig.model_validate(load_config_dict(student_run))
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
                TestTimeAugmentation.parse(config.tta),
                max_entropy=config.max_entropy,
                min_image_share=config.min_image_share,
            )
        else:
            kept = json.loads((pseudo / PSEUDO_RECORD).read_text())
        entry = {
            "bucket": index,
            "images": len(names),
            "mean_distance": record["order"]["mean_distance"][index],
            "images_kept": kept.get("images_written", len(names)),
            "kept_share": kept["kept_share"],
        }
        unsure = config.min_kept_share is not None and kept["kept_share"] < config.min_kept_share
        if unsure or entry["images_kept"] == 0:
            before = record["buckets"][-1] if record["buckets"] else record["unadapted"]
            scores = {key: before[key] for key in ("source_miou", "target_miou")}  # the student is unchanged
            record["buckets"].append({**entry, "skipped": True, **scores, **_changes(scores, record["unadapted"])})
            save()
            continue
        overrides = {
            "data": f"{config.source}+folder:{pseudo}" if config.replay else f"folder:{pseudo}",
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
        if not (run / "metrics.json").is_file():  # else it finished before the record was written
            run_config = RunConfig.model_validate({**base.model_dump(mode="python"), **overrides})
            train_student(run_config, resume=(run / "checkpoints").is_dir())
        scores = _evaluate(run, config.source, config.target)
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


def _changes(scores: dict[str, float], unadapted: dict[str, float]) -> dict[str, float]:
    return {
        "target_gain": round(scores["target_miou"] - unadapted["target_miou"], 4),
        "source_forgetting": round(unadapted["source_miou"] - scores["source_miou"], 4),
    }


def load_config_dict(run: Path) -> dict[str, Any]:
    from prompt_kit.readers import read_yaml

    values = read_yaml(run / "config.yaml", "run config") or {}
    if not isinstance(values, dict):
        raise PromptKitError(f"{run / 'config.yaml'} is not a run config")
    return values


def adapt_table(record: dict[str, Any]) -> str:
    """The per-bucket table (Markdown): the target gain and the source forgetting after each bucket."""
    unadapted = record["unadapted"]
    lines = [
        "| after bucket | images | mean vDNA distance | pixels kept | target mIoU | gain | source mIoU | forgetting |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| (unadapted) | | | | {unadapted['target_miou']:.3f} | | {unadapted['source_miou']:.3f} | |",
    ]
    for row in record["buckets"]:
        bucket = f"{row['bucket']} (skipped)" if row.get("skipped") else str(row["bucket"])
        kept = row.get("images_kept", row["images"])
        images = str(row["images"]) if kept == row["images"] else f"{kept} of {row['images']}"
        lines.append(
            f"| {bucket} | {images} | {row['mean_distance']:.4f} | {row['kept_share']:.2f} | "
            f"{row['target_miou']:.3f} | {row['target_gain']:+.3f} | {row['source_miou']:.3f} | "
            f"{row['source_forgetting']:+.3f} |"
        )
    return "\n".join(lines)


__all__ = ["AdaptConfig", "adapt", "adapt_table", "bucket_order", "recorded_config"]
