"""`distill teacher`: train the diffusion-feature teacher on a dataset for one prompt set.

Optional denoiser pretraining first (real DDPM training of the UNet on the dataset's images, so
the tiny teacher reads diffusion features rather than random ones), then cross-entropy training
of the head (and of the UNet when it is not frozen), evaluation on the val split, and a folder
with the weights, resolved config, class embeddings, metrics, provenance and PNG panels.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from distill.class_weights import ClassWeighting, class_weights
from distill.configuration import config_to_yaml
from distill.datasets import PairedViews, create_dataset
from distill.provenance import provenance
from distill.segmenter_evaluation import Segmenter, evaluate_segmenters
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.embedding_cache import EmbeddingCache
from prompt_kit.encoders import create_encoder, encode_prompt_set
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_text
from prompt_kit.prompt_set import load_prompt_set
from teacher import DiffusionSegTeacher, TeacherConfig, build_teacher, load_teacher, save_teacher


class TeacherTrainingConfig(BaseModel):
    """Every field has a default that runs on a laptop CPU in a few minutes."""

    model_config = ConfigDict(extra="forbid")

    prompts: str
    data: str = "synthetic"
    out: str = "runs/teacher"
    encoder: str | None = Field(default=None, description="default: minilm, or clip:PRETRAINED")
    pretrained: str | None = None
    steps: int = Field(default=800, ge=0)
    pretrain_denoiser: int = Field(default=100, ge=0, description="DDPM steps before segmentation training")
    batch_size: int = Field(default=8, ge=1)
    image_size: tuple[int, int] = (96, 128)
    lr: float = 1e-3
    denoiser_lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 30
    grad_clip: float = 1.0
    eval_every: int = Field(default=200, ge=1)
    val_images: int | None = Field(default=None, description="evaluate on the first N val images (None: all)")
    panels: int = 4
    seed: int = 0
    num_workers: int = 0
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    augment: bool = True
    class_weighting: ClassWeighting = Field(
        default="inverse_sqrt_frequency",
        description="cross-entropy class weights from the train labels (distill.class_weights); without them "
        "the teacher leaves poles, signs, fences and people at 0 IoU for hundreds of steps",
    )
    model: dict[str, Any] = Field(default_factory=dict, description="TeacherConfig overrides")
    init_from: str | None = Field(
        default=None,
        description="a teacher folder whose weights training starts from (train longer without starting over; "
        "its UNet is already a denoiser, so pretrain_denoiser is skipped)",
    )


def make_accelerator(mixed_precision: str) -> Accelerator:
    """CPU, one GPU or many through one code path; bf16 autocast on CUDA when it is supported."""
    if mixed_precision == "auto":
        mixed_precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if torch.cuda.is_available() else "no"
    # cpu=True without CUDA makes torchrun/accelerate launch start gloo processes instead of one
    return Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available())


def poly_schedule(optimizer: torch.optim.Optimizer, total: int, warmup: int, power: float = 0.9):
    """Linear warmup, then polynomial decay to zero: the usual segmentation schedule."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 1 - (step - warmup) / max(1, total - warmup)) ** power

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def infinite(loader: DataLoader, views: PairedViews):
    epoch = 0
    while True:
        views.set_epoch(epoch)
        yield from loader
        epoch += 1


def denoiser_target(teacher: DiffusionSegTeacher, sample, noise, timesteps) -> torch.Tensor:
    """What the UNet predicts, as the scheduler's ``prediction_type`` says."""
    kind = teacher.scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return teacher.scheduler.get_velocity(sample, noise, timesteps)
    if kind == "sample":
        return sample
    raise PromptKitError(f"unsupported scheduler prediction_type {kind!r}")


def pretrain_denoiser(teacher, embeddings, batches, steps: int, lr: float, accelerator: Accelerator, log) -> None:
    """Real DDPM training of the UNet on the dataset's images (uniform timesteps, MSE)."""
    unet = teacher.unet
    optimizer = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=lr)
    optimizer = accelerator.prepare(optimizer)
    progress = tqdm(range(steps), desc="denoiser", disable=not accelerator.is_local_main_process)
    teacher.train()
    teacher.recorder.enabled = False
    for step in progress:
        batch = next(batches)
        with accelerator.autocast():
            sample = teacher.encode_images(batch["teacher_image"])
            noise = torch.randn_like(sample)
            timesteps = torch.randint(
                0, teacher.scheduler.config.num_train_timesteps, (sample.shape[0],), device=sample.device
            )
            noisy = teacher.scheduler.add_noise(sample, noise, timesteps)
            states, mask, _ = teacher.conditioning(embeddings, sample.shape[0], sample.device, sample.dtype)
            prediction = unet(noisy, timesteps, encoder_hidden_states=states, encoder_attention_mask=mask).sample
            loss = F.mse_loss(prediction.float(), denoiser_target(teacher, sample, noise, timesteps).float())
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        progress.set_postfix(loss=f"{loss.item():.4f}")
        log("denoiser/loss", loss.item(), step)
    teacher.recorder.enabled = True
    teacher._features = []


@torch.no_grad()
def evaluate_teacher(teacher, embeddings, dataset, image_size, accelerator, limit=None, panels=0, out=None):
    """mIoU, per-class IoU and pixel accuracy on ``dataset`` at ``image_size`` (labels resized nearest)."""
    teacher.eval()
    segmenter = Segmenter("teacher", "teacher", lambda images: teacher(images, embeddings))
    evaluated = evaluate_segmenters(
        [segmenter], dataset, image_size, accelerator, image_size, limit=limit, panels=panels, panels_to=out
    )
    return evaluated["teacher"]


def initial_teacher(folder: str | Path, teacher_config: TeacherConfig) -> DiffusionSegTeacher:
    """The teacher saved in ``folder``, refused unless its model config is the one this run asks for."""
    teacher = load_teacher(folder)
    saved, wanted = teacher.config.model_dump(), teacher_config.model_dump()
    differences = [key for key in wanted if saved.get(key) != wanted[key]]
    if differences:
        key = differences[0]
        raise PromptKitError(
            f"init_from {folder}: its teacher has {key}={saved.get(key)!r} but this run asks for {wanted[key]!r} "
            f"({len(differences)} setting(s) differ); use the same prompts' encoder and --set model.* as that teacher"
        )
    return teacher


def train_teacher(config: TeacherTrainingConfig) -> dict[str, Any]:
    """Train, evaluate and write the teacher folder; returns the final metrics."""
    start_time = time.time()
    out = Path(config.out)
    accelerator = make_accelerator(config.mixed_precision)
    set_seed(config.seed)
    prompt_set = load_prompt_set(config.prompts)
    train_data = create_dataset(config.data, "train")
    val_data = create_dataset(config.data, "val")
    prompt_set.check_against(train_data.taxonomy)
    train_data.validate(max_files=64)
    encoder_spec = config.encoder or (f"clip:{config.pretrained}" if config.pretrained else "minilm")
    embeddings = encode_prompt_set(prompt_set, create_encoder(encoder_spec), EmbeddingCache())
    teacher_config = TeacherConfig(
        num_classes=embeddings.num_classes,
        embedding_dim=embeddings.tokens.shape[-1],
        pretrained=config.pretrained,
        **config.model,
    )
    teacher = (
        build_teacher(teacher_config) if not config.init_from else initial_teacher(config.init_from, teacher_config)
    )
    multiple = teacher.input_multiple
    if any(side % multiple for side in config.image_size):
        raise PromptKitError(f"image_size {list(config.image_size)} must be multiples of {multiple} for this teacher")
    out.mkdir(parents=True, exist_ok=True)
    embeddings.save(out / "class_embeddings.safetensors")
    atomic_write_text(out / "config.yaml", config_to_yaml(config))

    views = PairedViews(
        train_data,
        teacher_size=config.image_size,
        student_size=None,
        train=config.augment,
        seed=config.seed,
    )
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(
        views,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        generator=generator,
        num_workers=config.num_workers,
    )
    writer = _tensorboard(out / "tensorboard") if accelerator.is_main_process else None

    def log(name: str, value: float, step: int) -> None:
        if writer is not None:
            writer.add_scalar(name, value, step)

    teacher = accelerator.prepare(teacher)
    loader = accelerator.prepare(loader)
    model = accelerator.unwrap_model(teacher)
    device_embeddings = _to_device(embeddings, accelerator.device)
    batches = infinite(loader, views)
    if config.pretrain_denoiser and not config.init_from and not (config.pretrained and teacher_config.freeze_unet):
        pretrain_denoiser(
            model, device_embeddings, batches, config.pretrain_denoiser, config.denoiser_lr, accelerator, log
        )

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = poly_schedule(optimizer, config.steps, config.warmup_steps)
    optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
    ignore_index = train_data.taxonomy.ignore_index
    weights = class_weights(train_data, config.class_weighting, accelerator.device)
    best: dict[str, Any] = {"miou": -1.0}
    history = []
    progress = tqdm(range(config.steps), desc="teacher", disable=not accelerator.is_local_main_process)
    for step in progress:
        model.train()
        batch = next(batches)
        with accelerator.autocast():
            logits = teacher(batch["teacher_image"], device_embeddings)
            logits = F.interpolate(
                logits.float(), size=batch["teacher_label"].shape[-2:], mode="bilinear", align_corners=False
            )
            loss = F.cross_entropy(logits, batch["teacher_label"], weight=weights, ignore_index=ignore_index)
        accelerator.backward(loss)
        if config.grad_clip:
            accelerator.clip_grad_norm_(parameters, config.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        progress.set_postfix(loss=f"{loss.item():.3f}")
        log("train/loss", loss.item(), step)
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            metrics = evaluate_teacher(
                model, device_embeddings, val_data, config.image_size, accelerator, limit=config.val_images
            )
            history.append({"step": step + 1, "miou": metrics["miou"]})
            log("val/miou", metrics["miou"], step + 1)
            if metrics["miou"] > best["miou"] and accelerator.is_main_process:
                best = {**metrics, "step": step + 1}
                save_teacher(model, out)
    if config.steps == 0 and accelerator.is_main_process:
        save_teacher(model, out)
    # the kept (best) weights are what the folder holds: report their numbers and panels
    kept = load_teacher(out).to(accelerator.device)
    final = evaluate_teacher(
        kept,
        device_embeddings,
        val_data,
        config.image_size,
        accelerator,
        limit=config.val_images,
        panels=config.panels,
        out=out,
    )
    metrics = {
        **final,
        "best_step": best.get("step", config.steps),
        "history": history,
        "train_seconds": round(time.time() - start_time, 1),
        "val_images": _count(val_data, config.val_images),
        "image_size": list(config.image_size),
        "class_weights": None if weights is None else [round(float(w), 4) for w in weights],
    }
    if accelerator.is_main_process:
        record = provenance(
            stage="teacher",
            seed=config.seed,
            prompt_set=str(config.prompts),
            prompt_set_hash=prompt_set.content_hash(),
            encoder=encoder_spec,
            style=prompt_set.style,
            data=config.data,
            device=str(accelerator.device),
            mixed_precision=accelerator.mixed_precision,
            config=config.model_dump(mode="json"),
        )
        atomic_write_text(out / "provenance.json", json.dumps(record, indent=2) + "\n")
        # metrics.json last: its presence is what marks the folder finished (compare skips such cells)
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if writer is not None:
        writer.close()
    accelerator.end_training()
    return metrics


def _count(dataset, limit: int | None) -> int:
    return len(dataset) if limit is None else min(limit, len(dataset))


def _to_device(embeddings: ClassEmbeddings, device) -> ClassEmbeddings:
    return ClassEmbeddings(
        tokens=embeddings.tokens.to(device),
        attention_mask=embeddings.attention_mask.to(device),
        pooled=embeddings.pooled.to(device),
        class_names=embeddings.class_names,
        encoder=embeddings.encoder,
        prompt_set_hash=embeddings.prompt_set_hash,
        style=embeddings.style,
        extra=embeddings.extra,
    )


def _tensorboard(folder: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(folder))


__all__ = ["TeacherTrainingConfig", "evaluate_teacher", "train_teacher"]
