"""`distill teacher --prompts`: train the diffusion-feature teacher on a dataset for one prompt set.

Two phases on the training core (``distill.training.core``), each checkpointed, so a killed
teacher resumes exactly (``--resume``): optional denoiser pretraining (real DDPM training of the
UNet on the dataset's images, so the tiny teacher reads diffusion features rather than random
ones), then cross-entropy training of the head (and of the UNet when it is not frozen) with
evaluation on the val split. The folder holds the best weights, resolved config, class
embeddings, metrics, provenance and PNG panels. Network teachers (``--model``) are trained by
the student trainer instead (``distill.training.network_teacher``).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from pydantic import Field, ValidationInfo, field_validator

from distill.datasets import PairedViews
from distill.datasets.holdout import training_and_evaluation_data
from distill.datasets.segmentation_dataset import SegmentationDataset
from distill.datasets.unlabelled import has_unlabelled
from distill.evaluation.segmenter import Segmenter, evaluate_segmenters
from distill.evaluation.test_time_augmentation import augmented_predictor
from distill.training.checkpoints import LoopState
from distill.training.class_weights import ClassWeighting, class_weights
from distill.training.configuration import ImageSize, config_to_yaml
from distill.training.core import (
    Checkpoints,
    checkpoint_exists,
    constant_schedule,
    elapsed,
    make_accelerator,
    poly_schedule,
    tensorboard_writer,
    train_steps,
    write_finished,
)
from distill.training.provenance import provenance
from distill.training.run_folder import RunFolder, open_run_folder
from distill.training.settings import TrainingSettings
from prompt_kit.bounds import (
    LearningRate,
    Steps,
)
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.embedding_cache import EmbeddingCache
from prompt_kit.encoders import create_encoder, encode_prompt_set
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_text
from prompt_kit.prompt_set import PromptSet, load_prompt_set
from teacher import (
    DiffusionSegTeacher,
    DiffusionTeacherConfig,
    TeacherConfig,
    build_teacher,
    load_teacher,
    parse_teacher_config,
    save_teacher,
)
from teacher.checkpoint import PromptTeacherModel, saved_state_keys
from teacher.folder import EMBEDDINGS_NAME


class TeacherTrainingConfig(TrainingSettings):
    """Every field has a default that runs on a laptop CPU in a few minutes."""

    prompts: str
    out: str = "runs/teacher"
    encoder: str | None = Field(default=None, description="default: minilm, or clip:PRETRAINED")
    pretrained: str | None = None
    steps: Steps = 800
    pretrain_denoiser: Steps = Field(default=100, description="DDPM steps before segmentation training")
    image_size: ImageSize = (96, 128)
    lr: LearningRate = 1e-3
    denoiser_lr: LearningRate = 5e-4
    class_weighting: ClassWeighting = Field(
        default="inverse_sqrt_frequency",
        description="cross-entropy class weights from the train labels (distill.training.class_weights); without them "
        "the teacher leaves poles, signs, fences and people at 0 IoU for hundreds of steps",
    )
    model: dict[str, Any] = Field(
        default_factory=dict, description="teacher config overrides (teacher.config; architecture diffusion or network)"
    )

    @field_validator("model")
    @classmethod
    def _known_model_fields(cls, model: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Checked now (with stand-in class counts), not after the prompts are encoded: a typo fails fast."""
        fixed = {"num_classes", "embedding_dim", "pretrained"}
        given = sorted(fixed & set(model))
        if given:
            raise ValueError(f"{given[0]} comes from the prompts and --pretrained, not from model.{given[0]}")
        stand_in = {"num_classes": 2, "embedding_dim": 8, **_pretrained(info.data.get("pretrained"))}
        parse_teacher_config({**stand_in, **model})  # a bad field: a one-line ValueError naming it
        return model

    init_from: str | None = Field(
        default=None,
        description="a teacher folder whose weights training starts from (train longer without starting over; "
        "its UNet is already a denoiser, so pretrain_denoiser is skipped)",
    )


def _pretrained(folder: str | None) -> dict[str, str]:
    """The ``pretrained`` field of the teacher config: only given when set (a network teacher has none)."""
    return {} if folder is None else {"pretrained": folder}


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


def denoiser_loss(teacher: DiffusionSegTeacher, embeddings, images: torch.Tensor) -> torch.Tensor:
    """Real DDPM training of the UNet on the dataset's images: uniform timesteps, MSE on its prediction.

    The latent is a fixed target here, even where the backbone is fine-tuned later (``finetune_latent``).
    """
    with torch.no_grad():
        sample = teacher.encode_images(images)
    noise = torch.randn_like(sample)
    timesteps = torch.randint(0, teacher.scheduler.config.num_train_timesteps, (sample.shape[0],), device=sample.device)
    noisy = teacher.scheduler.add_noise(sample, noise, timesteps)
    states, mask, _ = teacher.conditioning(embeddings, sample.shape[0], sample.device, sample.dtype)
    prediction = teacher.unet(noisy, timesteps, encoder_hidden_states=states, encoder_attention_mask=mask).sample
    return F.mse_loss(prediction.float(), denoiser_target(teacher, sample, noise, timesteps).float())


@torch.no_grad()
def evaluate_teacher(
    teacher, embeddings, dataset, image_size, accelerator, limit=None, panels=0, out=None, augmentation=None
):
    """mIoU, per-class IoU and pixel accuracy on ``dataset`` at ``image_size`` (labels resized nearest).

    ``augmentation`` (a ``TestTimeAugmentation``) averages probabilities over flipped and rescaled copies.
    """
    teacher.eval()

    def predict(images):
        return teacher(images, embeddings)

    if augmentation is not None:
        predict = augmented_predictor(predict, augmentation, teacher.input_multiple)
    segmenter = Segmenter("teacher", "teacher", predict)
    evaluated = evaluate_segmenters(
        [segmenter], dataset, image_size, accelerator, image_size, limit=limit, panels=panels, panels_to=out
    )
    return evaluated["teacher"]


def initial_teacher(folder: str | Path, teacher_config: TeacherConfig) -> PromptTeacherModel:
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


def train_teacher(
    config: TeacherTrainingConfig, resume: bool = False, overwrite: bool = False, allow_changes: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Train, evaluate and write the teacher folder; returns the final metrics.

    ``resume`` continues a killed teacher from its last checkpoint (denoiser or segmentation
    phase) and ends with the same numbers as an uninterrupted run; ``overwrite`` starts a finished
    or killed one over (see ``distill.training.run_folder``).
    """
    start_time = time.time()
    out = Path(config.out)
    checkpoints = [out / "checkpoints" / "denoiser", out / "checkpoints" / "last"]
    with open_run_folder(
        out, config, what="teacher", checkpoints=checkpoints, resume=resume, overwrite=overwrite,
        allow_changes=allow_changes,
    ) as folder:  # fmt: skip
        return _train_teacher(config, resume, folder, start_time)


@dataclasses.dataclass
class _TeacherSetup:
    """What both phases and the final evaluation share: the data, the embeddings and the prepared teacher."""

    accelerator: Accelerator
    prompt_set: PromptSet
    train_data: SegmentationDataset
    val_data: SegmentationDataset
    encoder_spec: str
    embeddings: ClassEmbeddings  # on the accelerator's device
    teacher_config: TeacherConfig
    teacher: torch.nn.Module  # prepared (DDP-wrapped where several processes train)
    model: PromptTeacherModel  # the same teacher unwrapped
    views: PairedViews
    writer: Any


def _set_up_teacher(config: TeacherTrainingConfig, out: Path) -> _TeacherSetup:
    """Data, prompts, embeddings and the teacher (fresh or ``init_from``), checked and prepared."""
    accelerator = make_accelerator(config.mixed_precision)
    set_seed(config.seed)
    prompt_set = load_prompt_set(config.prompts)
    train_data, val_data = training_and_evaluation_data(config.data, config.holdout)
    if has_unlabelled(train_data):
        raise PromptKitError(f"{config.data} has unlabelled images: a teacher trains on labels, drop the images: part")
    prompt_set.check_against(train_data.taxonomy)
    train_data.validate(max_files=64)
    encoder_spec = config.encoder or (f"clip:{config.pretrained}" if config.pretrained else "minilm")
    embeddings = encode_prompt_set(prompt_set, create_encoder(encoder_spec), EmbeddingCache())
    teacher_config = parse_teacher_config(
        {
            "num_classes": embeddings.num_classes,
            "embedding_dim": embeddings.tokens.shape[-1],
            **_pretrained(config.pretrained),
            **config.model,
        }
    )
    teacher = (
        build_teacher(teacher_config) if not config.init_from else initial_teacher(config.init_from, teacher_config)
    )
    multiple = teacher.input_multiple
    if any(side % multiple for side in config.image_size):
        raise PromptKitError(f"image_size {list(config.image_size)} must be multiples of {multiple} for this teacher")
    if accelerator.is_main_process:
        embeddings.save(out / EMBEDDINGS_NAME)
        atomic_write_text(out / "config.yaml", config_to_yaml(config))
    views = PairedViews(
        train_data, teacher_size=config.image_size, student_size=None, train=config.augment, seed=config.seed
    )
    writer = tensorboard_writer(out / "tensorboard", accelerator)
    prepared = accelerator.prepare(teacher)
    return _TeacherSetup(
        accelerator=accelerator,
        prompt_set=prompt_set,
        train_data=train_data,
        val_data=val_data,
        encoder_spec=encoder_spec,
        embeddings=embeddings.to(accelerator.device),
        teacher_config=teacher_config,
        teacher=prepared,
        model=accelerator.unwrap_model(prepared),
        views=views,
        writer=writer,
    )


def _pretrain_denoiser(
    config: TeacherTrainingConfig, setup: _TeacherSetup, checkpoints: Callable[..., Checkpoints], resume: bool
) -> None:
    """Phase one: DDPM training of the UNet on the dataset's images (the tiny UNet reads diffusion features)."""
    model = setup.model
    trained = [p for p in model.unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=config.denoiser_lr)
    scheduler = constant_schedule(optimizer)
    optimizer = setup.accelerator.prepare(optimizer)  # schedulers stay unprepared (see distill run)
    model.record_features(False)

    def denoiser_step(batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        return denoiser_loss(model, setup.embeddings, batch["teacher_image"]), {}

    train_steps(
        accelerator=setup.accelerator,
        model=setup.teacher,
        optimizer=optimizer,
        scheduler=scheduler,
        views=setup.views,
        # the denoiser is never evaluated nor clipped
        settings=config.loop_settings(steps=config.pretrain_denoiser, eval_every=None, grad_clip=0.0),
        checkpoints=checkpoints(optimizer, scheduler),
        loss_fn=denoiser_step,
        resume=resume,
        writer=setup.writer,
        description="denoiser",
        log_prefix="denoiser",
        # the denoiser's forward bypasses the DDP wrapper (it is not the teacher's forward): sync by hand
        synced_by_hand=trained,
    )
    model.record_features(True)


def _segmentation_step(
    setup: _TeacherSetup, weights: torch.Tensor | None
) -> Callable[[dict[str, Any]], tuple[torch.Tensor, dict[str, float]]]:
    """Phase two's loss: weighted cross-entropy, plus DIFF's path-controlled branch where the config asks."""
    ignore_index = setup.train_data.taxonomy.ignore_index
    teacher_config = setup.teacher_config
    diffusion = isinstance(teacher_config, DiffusionTeacherConfig)
    inversion = teacher_config.inversion if diffusion and teacher_config.extraction == "inversion" else None
    path_control = inversion is not None and inversion.path_control

    def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = F.interpolate(logits.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
        return F.cross_entropy(logits, labels, weight=weights, ignore_index=ignore_index)

    def segmentation_step(batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        labels = batch["teacher_label"]
        logits = setup.teacher(batch["teacher_image"], setup.embeddings)
        loss = cross_entropy(logits, labels)
        if not path_control:
            return loss, {}
        # DIFF's two branches: the same head on the plain and on the path-controlled features, each with its
        # cross-entropy, and the MSE between their stride-4 logits (neither side detached)
        steered = setup.teacher(batch["teacher_image"], setup.embeddings, labels=labels)
        consistency = F.mse_loss(steered.float(), logits.float())
        loss = loss + cross_entropy(steered, labels) + inversion.consistency_weight * consistency
        return loss, {"consistency": float(consistency.detach())}

    return segmentation_step


def _train_teacher(config: TeacherTrainingConfig, resume: bool, folder: RunFolder, start_time: float) -> dict[str, Any]:
    out = folder.path
    setup = _set_up_teacher(config, out)
    accelerator, model = setup.accelerator, setup.model
    saved = set(saved_state_keys(model))
    segmentation_checkpoint = out / "checkpoints" / "last"

    def checkpoints_at(path: Path, optimizer, scheduler) -> Checkpoints:
        """The phase's checkpoints: the teacher's trained parts only, stamped with the config digest."""
        return Checkpoints(
            path,
            accelerator,
            setup.teacher,
            optimizer,
            scheduler,
            keep=saved.__contains__,
            config_sha256=folder.config_sha256,
        )

    denoise = (
        isinstance(setup.teacher_config, DiffusionTeacherConfig)
        and config.pretrain_denoiser
        and not config.init_from
        and not (config.pretrained and setup.teacher_config.freeze_unet)
    )
    if denoise and not (resume and checkpoint_exists(segmentation_checkpoint)):
        _pretrain_denoiser(config, setup, functools.partial(checkpoints_at, out / "checkpoints" / "denoiser"), resume)

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = poly_schedule(optimizer, config.steps, config.warmup_steps)
    optimizer = accelerator.prepare(optimizer)
    weights = class_weights(setup.train_data, config.class_weighting, accelerator.device)

    def evaluate() -> dict[str, Any]:
        return evaluate_teacher(
            model, setup.embeddings, setup.val_data, config.image_size, accelerator, config.val_images
        )

    state = train_steps(
        accelerator=accelerator,
        model=setup.teacher,
        optimizer=optimizer,
        scheduler=scheduler,
        views=setup.views,
        settings=config.loop_settings(),
        checkpoints=checkpoints_at(segmentation_checkpoint, optimizer, scheduler),
        loss_fn=_segmentation_step(setup, weights),
        evaluate=evaluate,
        keep_best=lambda: save_teacher(model, out),
        resume=resume,
        writer=setup.writer,
        description="teacher",
    )
    if config.steps == 0 and accelerator.is_main_process:
        save_teacher(model, out)
    accelerator.wait_for_everyone()
    return _finish_teacher(config, setup, folder, state, weights, start_time)


def _finish_teacher(
    config: TeacherTrainingConfig,
    setup: _TeacherSetup,
    folder: RunFolder,
    state: LoopState,
    weights: torch.Tensor | None,
    start_time: float,
) -> dict[str, Any]:
    """Evaluate the kept (best) weights, which the folder holds, and write their metrics, panels and provenance."""
    out, accelerator, val_data = folder.path, setup.accelerator, setup.val_data
    kept = load_teacher(out).to(accelerator.device)
    final = evaluate_teacher(
        kept,
        setup.embeddings,
        val_data,
        config.image_size,
        accelerator,
        limit=config.val_images,
        panels=config.panels,
        out=out,
    )
    metrics = {
        **final,
        "best_step": state.best_step or config.steps,
        "history": state.history,
        "train_seconds": elapsed(start_time),
        "eval_images": config.evaluated_images(val_data),
        "eval_split": val_data.split,
        "image_size": list(config.image_size),
        "class_weights": None if weights is None else [round(float(w), 4) for w in weights],
    }
    record = provenance(
        stage="teacher",
        seed=config.seed,
        prompt_set=str(config.prompts),
        prompt_set_hash=setup.prompt_set.content_hash(),
        encoder=setup.encoder_spec,
        style=setup.prompt_set.style,
        data=config.data,
        device=str(accelerator.device),
        mixed_precision=accelerator.mixed_precision,
        config=config.model_dump(mode="json"),
        config_sha256=folder.config_sha256,
        resumed_from_step=folder.resumed_from_step,
        changed_on_resume=folder.changed_on_resume,
    )
    write_finished(out, accelerator, record, metrics)
    if setup.writer is not None:
        setup.writer.close()
    accelerator.end_training()
    return metrics


__all__ = ["TeacherTrainingConfig", "evaluate_teacher", "train_teacher"]
