"""`distill run`: train a student with cross-entropy plus KD from a frozen teacher.

One code path on HF accelerate serves the CPU, one GPU and ``accelerate launch``/``torchrun``
over many processes. Batches are a pure function of (seed, step, rank) and checkpoints carry
model, optimizer, scheduler, step and RNG states, so ``--resume`` ends with the same metrics as an
uninterrupted run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
import yaml
from accelerate.utils import set_seed
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from distill.class_weights import ClassWeighting, class_weights
from distill.configuration import config_to_yaml
from distill.datasets import PairedViews, create_dataset
from distill.datasets.holdout import holdout_split
from distill.datasets.paired_views import check_augmentation
from distill.losses import create_loss, kd_pixel_mask, parse_kd_spec
from distill.losses.pixel_selection import KdPixels
from distill.provenance import provenance
from distill.segmenter_evaluation import Segmenter, evaluate_segmenters
from distill.step_sampling import EpochAddressed, StepBatchSampler
from distill.teacher_training import _tensorboard, _to_device, make_accelerator, poly_schedule
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_text
from prompt_kit.prompt_set import load_prompt_set
from student import create_student, list_networks, normalize_images
from teacher import load_teacher


class RunConfig(BaseModel):
    """A distillation run; every default runs on a laptop CPU."""

    model_config = ConfigDict(extra="forbid")

    prompts: str | None = Field(default=None, description="prompt set (default: the teacher's own)")
    teacher: str | None = Field(default=None, description="teacher folder from `distill teacher`")
    student: str = "tiny"
    student_pretrained: str | None = None
    kd: str = Field(
        default="dist",
        description="KD spec; DIST is the default because it beat pixel KL on synthetic scenes with two teachers "
        "(README, KD against no KD)",
    )
    kd_params: dict[str, Any] = Field(default_factory=dict, description="e.g. {temperature: 2.0}")
    align: Literal["upsample_student", "downsample_teacher"] = "downsample_teacher"
    kd_pixels: KdPixels = Field(
        default="valid", description="pixels the KD terms compare: every labelled one, or where the teacher is right"
    )
    ce_weight: float = 1.0
    class_weighting: ClassWeighting = Field(
        default="none",
        description="cross-entropy class weights from the train labels (distill.class_weights); "
        "inverse_sqrt_frequency gave the tiny student +0.043 test mIoU on synthetic scenes (README)",
    )
    data: str = "synthetic"
    out: str = "runs/student"
    steps: int = Field(default=600, ge=1)
    batch_size: int = Field(default=8, ge=1)
    teacher_size: tuple[int, int] | None = Field(default=None, description="default: the teacher's training size")
    student_size: tuple[int, int] = (96, 128)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 30
    grad_clip: float = 1.0
    eval_every: int = Field(default=200, ge=1)
    checkpoint_every: int = Field(default=100, ge=1)
    val_images: int | None = None
    panels: int = 4
    seed: int = 0
    num_workers: int = 0
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    augment: bool = Field(default=True, description="random scale, crop, flip and colour jitter while training")
    scale_range: tuple[float, float] = Field(
        default=(0.75, 1.5), description="zoom factors drawn per sample; [1, 1] keeps the whole image (flips only)"
    )
    color_jitter: float = Field(default=0.2, description="brightness/contrast/saturation +-, in [0, 1)")
    channels_last: bool = Field(
        default=True,
        description="student weights and images in NHWC: depthwise-conv students train ~15-30% faster on CPU "
        "(benchmarks/bench_students.py), as convnets under AMP do on GPUs",
    )
    holdout: int = Field(
        default=0,
        ge=0,
        description="evaluate on this many train images kept out of training (tune here; val stays unseen)",
    )
    teacher_cache: bool = Field(
        default=True, description="compute teacher logits once per train image (not with cirkd, which needs features)"
    )

    @model_validator(mode="after")
    def _check_augmentation(self) -> RunConfig:
        check_augmentation(self.scale_range, self.color_jitter)  # before any data or model is loaded
        return self

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format


def kd_terms(config: RunConfig) -> list[tuple[str, float, torch.nn.Module]]:
    """(name, weight, loss) per term of ``--kd``; cirkd is applied to features, the rest to logits."""
    if config.kd.strip() == "none":
        return []
    terms = []
    try:
        spec = parse_kd_spec(config.kd)
    except ValueError as exc:
        raise PromptKitError(f"--kd {config.kd!r}: {exc}") from exc
    for name, weight in spec:
        if name == "none":
            continue
        params = {
            **{k: v for k, v in config.kd_params.items() if not isinstance(v, dict)},
            **config.kd_params.get(name, {}),
        }
        try:
            loss = create_loss(name, align=config.align, **_accepted(name, params))
        except ValueError as exc:
            raise PromptKitError(f"--kd {config.kd!r}: {exc}") from exc
        terms.append((name, weight, loss))
    return terms


def require_student(name: str) -> None:
    """A one-line error listing the registered students when ``name`` is not one of them."""
    if name not in list_networks():
        raise PromptKitError(f"unknown student {name!r}: choose one of {', '.join(list_networks())}")


def _accepted(name: str, params: dict[str, Any]) -> dict[str, Any]:
    from distill.losses import loss_parameters

    taken = set(loss_parameters(name))
    return {key: value for key, value in params.items() if key in taken}


def load_run_teacher(config: RunConfig):
    """The frozen teacher, its class embeddings (re-embedded when --prompts differs) and its size."""
    folder = Path(config.teacher)
    teacher = load_teacher(folder).eval().requires_grad_(False)
    embeddings = ClassEmbeddings.load(folder / "class_embeddings.safetensors")
    if config.prompts:
        prompt_set = load_prompt_set(config.prompts)
        if prompt_set.class_names != embeddings.class_names:
            raise PromptKitError(
                f"prompt set {config.prompts} names classes {prompt_set.class_names[:3]}... but the teacher in "
                f"{folder} was trained for {embeddings.class_names[:3]}...: use a set of the teacher's taxonomy"
            )
        if prompt_set.content_hash() != embeddings.prompt_set_hash:
            from prompt_kit.embedding_cache import EmbeddingCache
            from prompt_kit.encoders import create_encoder, encode_prompt_set

            embeddings = encode_prompt_set(prompt_set, create_encoder(embeddings.encoder), EmbeddingCache())
    size = config.teacher_size
    if size is None:
        trained = yaml.safe_load((folder / "config.yaml").read_text()) if (folder / "config.yaml").is_file() else {}
        size = tuple(trained.get("image_size", config.student_size))
    return teacher, embeddings, tuple(size)


def training_and_evaluation_data(config: RunConfig):
    """(train, eval) datasets: train and val, or with ``holdout`` the rest of train and its held-out part."""
    train_data = create_dataset(config.data, "train")
    if config.holdout:
        return holdout_split(train_data, config.holdout)
    return train_data, create_dataset(config.data, "val")


def _checkpoint_dir(out: Path) -> Path:
    return out / "checkpoints" / "last"


def train_student(config: RunConfig, resume: bool = False) -> dict[str, Any]:
    """Train, evaluate and write the run folder; returns metrics.json's content."""
    start_time = time.time()
    out = Path(config.out)
    require_student(config.student)
    terms = kd_terms(config)
    if terms and not config.teacher:
        raise PromptKitError(f"--kd {config.kd} needs a teacher: pass --teacher DIR (or --kd none)")
    accelerator = make_accelerator(config.mixed_precision)
    set_seed(config.seed)
    train_data, val_data = training_and_evaluation_data(config)
    taxonomy = train_data.taxonomy
    teacher = embeddings = None
    teacher_size = config.student_size
    if config.teacher:
        teacher, embeddings, teacher_size = load_run_teacher(config)
        if embeddings.class_names != taxonomy.class_names:
            raise PromptKitError(
                f"the teacher predicts {len(embeddings.class_names)} classes ({embeddings.class_names[0]}, ...) "
                f"but {config.data} has {taxonomy.num_classes} ({taxonomy.class_names[0]}, ...): "
                "use a teacher trained on this dataset's taxonomy"
            )
        teacher = teacher.to(accelerator.device)
        embeddings = _to_device(embeddings, accelerator.device)
    train_data.validate(max_files=64)
    set_seed(config.seed)  # building the teacher drew from the RNG: the student's init must depend on the seed only
    student = create_student(config.student, taxonomy.num_classes, pretrained=config.student_pretrained)
    student = student.to(memory_format=config.memory_format)
    parameters = [p for p in student.parameters() if p.requires_grad]
    if config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(parameters, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    scheduler = poly_schedule(optimizer, config.steps, config.warmup_steps)
    student, optimizer, scheduler = accelerator.prepare(student, optimizer, scheduler)

    state = {"step": 0, "best_miou": -1.0, "best_step": 0, "history": []}
    checkpoint = _checkpoint_dir(out)
    if resume and (checkpoint / "state.json").is_file():
        accelerator.load_state(str(checkpoint))
        state = json.loads((checkpoint / "state.json").read_text())
    elif out.exists() and (out / "metrics.json").is_file() and not resume:
        raise PromptKitError(f"{out} already holds a finished run: choose another --out or pass --resume")
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", config_to_yaml(config))

    live_teacher = bool(terms) and (not config.teacher_cache or any(name == "cirkd" for name, _, _ in terms))
    views = PairedViews(
        train_data,
        teacher_size=teacher_size if live_teacher else None,
        student_size=config.student_size,
        train=config.augment,
        seed=config.seed,
        scale_range=config.scale_range,
        color_jitter=config.color_jitter,
    )
    sampler = StepBatchSampler(
        len(views),
        config.batch_size,
        config.seed,
        config.steps,
        start_step=state["step"],
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    if terms and not live_teacher:
        from distill.teacher_outputs import CachedTeacherViews, cached_teacher_logits

        logits = cached_teacher_logits(
            teacher, embeddings, config.teacher, config.data, train_data, teacher_size, accelerator
        )
        views = CachedTeacherViews(views, logits)
    loader = DataLoader(EpochAddressed(views), batch_sampler=sampler, num_workers=config.num_workers)
    writer = _tensorboard(out / "tensorboard") if accelerator.is_main_process else None
    ignore_index = taxonomy.ignore_index
    weights = class_weights(train_data, config.class_weighting, accelerator.device)
    progress = tqdm(
        total=config.steps,
        initial=state["step"],
        desc=f"student {config.student}",
        disable=not accelerator.is_local_main_process,
    )
    step = state["step"]
    for batch in loader:
        student.train()
        images = normalize_images(batch["student_image"].to(accelerator.device))
        images = images.contiguous(memory_format=config.memory_format)
        labels = batch["student_label"].to(accelerator.device)
        with accelerator.autocast():
            logits, features = student(images, return_features=True)
            loss = config.ce_weight * F.cross_entropy(logits.float(), labels, weight=weights, ignore_index=ignore_index)
            logged = {"ce": loss.item()}
            if terms:
                teacher_features = None
                if live_teacher:
                    with torch.no_grad():
                        teacher_logits, teacher_features = teacher(
                            batch["teacher_image"].to(accelerator.device), embeddings, return_features=True
                        )
                else:
                    teacher_logits = batch["teacher_logits"].to(accelerator.device)
                valid = kd_pixel_mask(labels, teacher_logits, ignore_index, config.kd_pixels)
                logged["kd_pixel_fraction"] = (valid.sum() / (labels != ignore_index).sum().clamp_min(1)).item()
                for name, weight, term in terms:
                    if name == "cirkd":
                        value = term(features["decoder"].float(), teacher_features["decoder"].float(), valid)
                    else:
                        value = term(logits.float(), teacher_logits.float(), valid)
                    loss = loss + weight * value
                    logged[name] = value.item()
        accelerator.backward(loss)
        if config.grad_clip:
            accelerator.clip_grad_norm_(student.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.3f}")
        if writer is not None:
            for name, value in logged.items():
                writer.add_scalar(f"train/{name}", value, step)
            writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
        if step % config.eval_every == 0 or step == config.steps:
            metrics = evaluate_student(accelerator.unwrap_model(student), val_data, config, accelerator)
            state["history"].append({"step": step, "miou": metrics["miou"]})
            if writer is not None:
                writer.add_scalar("val/miou", metrics["miou"], step)
            if metrics["miou"] > state["best_miou"]:
                state["best_miou"], state["best_step"] = metrics["miou"], step
                _save_best(accelerator, student, out)
        if step % config.checkpoint_every == 0 or step == config.steps:
            state["step"] = step
            _save_checkpoint(accelerator, out, state)
    progress.close()
    accelerator.wait_for_everyone()
    # one number per rank: with several processes the replicas must hold identical weights
    checksum = torch.stack([p.detach().double().sum() for p in accelerator.unwrap_model(student).parameters()]).sum()
    state["rank_checksums"] = [float(v) for v in accelerator.gather(checksum.reshape(1).to(accelerator.device))]
    final = _final_metrics(config, accelerator, out, val_data, teacher, embeddings, teacher_size, state, start_time)
    if writer is not None:
        writer.close()
    accelerator.end_training()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # gloo workers abort at exit without it
    return final


def _save_checkpoint(accelerator, out: Path, state: dict[str, Any]) -> None:
    folder = _checkpoint_dir(out)
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        atomic_write_text(folder / "state.json", json.dumps(state, indent=1) + "\n")


def _save_best(accelerator, student, out: Path) -> None:
    if not accelerator.is_main_process:
        return
    from safetensors.torch import save as safetensors_save

    from prompt_kit.files import atomic_write_bytes

    weights = {k: v.detach().cpu().contiguous() for k, v in accelerator.unwrap_model(student).state_dict().items()}
    atomic_write_bytes(out / "checkpoints" / "best" / "model.safetensors", safetensors_save(weights))


@torch.no_grad()
def evaluate_student(
    student,
    dataset,
    config: RunConfig,
    accelerator,
    panels_to: Path | None = None,
    teacher=None,
    embeddings=None,
    teacher_size=None,
) -> dict[str, Any]:
    """Student (and optionally teacher) metrics on the same val images; panels on request."""
    student.eval()
    segmenters = [Segmenter("student", "student", lambda images: student(normalize_images(images)))]
    if teacher is not None:
        segmenters.insert(0, Segmenter("teacher", "teacher", lambda images: teacher(images, embeddings)))
    evaluated = evaluate_segmenters(
        segmenters,
        dataset,
        config.student_size,
        accelerator,
        teacher_size=teacher_size or config.student_size,
        limit=config.val_images,
        panels=config.panels,
        panels_to=panels_to,
    )
    metrics = evaluated["student"]
    if teacher is not None:
        metrics["teacher"] = evaluated["teacher"]
    return metrics


def _final_metrics(config, accelerator, out, val_data, teacher, embeddings, teacher_size, state, start_time):
    from safetensors.torch import load_file

    best = create_student(config.student, val_data.taxonomy.num_classes)
    best.load_state_dict(load_file(str(out / "checkpoints" / "best" / "model.safetensors")))
    best = best.to(accelerator.device, memory_format=config.memory_format)
    evaluated = evaluate_student(
        best,
        val_data,
        config,
        accelerator,
        panels_to=out if accelerator.is_main_process else None,
        teacher=teacher,
        embeddings=embeddings,
        teacher_size=teacher_size,
    )
    teacher_metrics = evaluated.pop("teacher", None)
    metrics = {
        "miou": evaluated["miou"],
        "pixel_accuracy": evaluated["pixel_accuracy"],
        "per_class_iou": evaluated["per_class_iou"],
        "student": evaluated,
        "teacher": teacher_metrics,
        "best_step": state["best_step"],
        "history": state["history"],
        "processes": accelerator.num_processes,
        "rank_checksums": state.get("rank_checksums", []),
        "train_seconds": round(time.time() - start_time, 1),
        "student_size": list(config.student_size),
        "teacher_size": list(teacher_size),
        "eval_split": val_data.split,
        "eval_images": len(val_data),
    }
    if accelerator.is_main_process:
        prompt_hash = embeddings.prompt_set_hash if embeddings is not None else None
        record = provenance(
            stage="student",
            seed=config.seed,
            prompt_set=config.prompts,
            prompt_set_hash=prompt_hash,
            encoder=embeddings.encoder if embeddings is not None else None,
            style=getattr(embeddings, "style", None),
            teacher=config.teacher,
            student=config.student,
            kd=config.kd,
            data=config.data,
            device=str(accelerator.device),
            processes=accelerator.num_processes,
            mixed_precision=accelerator.mixed_precision,
            config=config.model_dump(mode="json"),
        )
        atomic_write_text(out / "provenance.json", json.dumps(record, indent=2) + "\n")
        # metrics.json last: its presence is what marks the folder finished (compare skips such cells)
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics
