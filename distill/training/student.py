"""`distill run`: train a student with cross-entropy plus KD from a frozen teacher of any kind.

The loop, checkpoints and exact resume are the training core's (``distill.training.core``); this
module adds what is the student's own: the network from the registry, the teacher from its
folder (``teacher.TeacherFolder``: a diffusion teacher, a network teacher or another run), its
outputs cached or computed live, the KD terms, and a run folder that is itself a valid teacher.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from accelerate.utils import set_seed

from distill.datasets.holdout import training_and_evaluation_data
from distill.datasets.unlabelled import has_unlabelled
from distill.evaluation.segmenter import Segmenter, evaluate_segmenters
from distill.kd.losses import kd_pixel_mask
from distill.kd.terms import (
    KDTerm,
    connect,
    connector_parameters,
    kd_loss,
    teacher_feature_names,
    term_state,
)
from distill.training.class_weights import class_weights
from distill.training.configuration import config_to_yaml
from distill.training.core import (
    Checkpoints,
    elapsed,
    make_accelerator,
    make_optimizer,
    poly_schedule,
    tensorboard_writer,
    train_steps,
    write_finished,
)
from distill.training.provenance import provenance
from distill.training.run_bank import banked_views, run_views
from distill.training.run_config import RunConfig, kd_terms, require_student, train_views
from distill.training.run_folder import RunFolder, open_run_folder
from networks import NETWORKS, create_network, normalize_images
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes, atomic_write_text
from prompt_kit.readers import read_safetensors
from teacher import Teacher, TeacherFolder, write_network_descriptor

RUN_CHECKPOINT = Path("checkpoints") / "last"
BEST_WEIGHTS = Path("checkpoints") / "best" / "model.safetensors"


def load_run_teacher(config: RunConfig, data_classes: list[str] | None = None) -> tuple[Teacher, tuple[int, int]]:
    """The frozen teacher of ``config.teacher`` (conditioned on ``--prompts`` if given) and its input size.

    With ``teacher_label_map`` the teacher is seen through it in the data's classes (``data_classes``,
    read from ``config.data`` when not given).
    """
    folder = TeacherFolder(config.teacher)
    teacher = folder.load(config.prompts)
    size = tuple(config.teacher_size) if config.teacher_size else folder.image_size
    teacher.check_size(size)
    if config.teacher_label_map:
        from prompt_kit.label_space import read_label_map
        from teacher.label_space import LabelSpaceTeacher

        if data_classes is None:
            from distill.datasets import create_dataset

            data_classes = create_dataset(config.data, "train").taxonomy.class_names
        mapping = read_label_map(config.teacher_label_map, teacher.class_names, data_classes)
        teacher = LabelSpaceTeacher(teacher, mapping)
    return teacher, size


def build_network(config: RunConfig, num_classes: int):
    """The registered network, with backbone weights (``student_pretrained``) or whole weights (``init_weights``)."""
    try:
        network = create_network(config.student, num_classes, pretrained=config.student_pretrained)
        if config.init_weights:
            from networks.pretrained import load_network_weights

            load_network_weights(network, config.init_weights)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise PromptKitError(str(exc).splitlines()[0]) from exc
    return network


def train_student(
    config: RunConfig, resume: bool = False, overwrite: bool = False, allow_changes: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Train, evaluate and write the run folder; returns metrics.json's content.

    ``resume`` continues a killed run (same config; ``allow_changes`` names result-neutral fields
    that may differ), ``overwrite`` starts a finished or killed one over (see ``distill.training.run_folder``).
    """
    start_time = time.time()
    checkpoints = [Path(config.out) / RUN_CHECKPOINT]
    with open_run_folder(
        config.out, config, what="run", checkpoints=checkpoints, resume=resume, overwrite=overwrite,
        allow_changes=allow_changes,
    ) as folder:  # fmt: skip
        return _train_student(config, resume, folder, start_time)


class _Setup(NamedTuple):
    accelerator: Any
    train_data: Any
    val_data: Any
    teacher: Teacher | None
    teacher_size: tuple[int, int]
    student: torch.nn.Module
    terms: list[KDTerm]


def _set_up(config: RunConfig) -> _Setup:
    """Data, teacher and student of a run, checked against each other and against the KD terms."""
    require_student(config.student)
    multiple = NETWORKS[config.student].input_multiple
    if any(side % multiple for side in config.student_size):
        raise PromptKitError(
            f"{config.student} needs sides that are multiples of {multiple}: student_size {list(config.student_size)}"
        )
    terms = kd_terms(config)
    if terms and not config.teacher:
        raise PromptKitError(f"--kd {config.kd} needs a teacher: pass --teacher DIR (or --kd none)")
    accelerator = make_accelerator(config.mixed_precision)
    set_seed(config.seed)
    train_data, val_data = training_and_evaluation_data(config.data, config.holdout)
    taxonomy = train_data.taxonomy
    teacher, teacher_size = None, config.student_size
    if config.teacher:
        teacher, teacher_size = load_run_teacher(config, taxonomy.class_names)
        if teacher.class_names != taxonomy.class_names:
            raise PromptKitError(
                f"the teacher predicts {teacher.num_classes} classes ({teacher.class_names[0]}, ...) "
                f"but {config.data} has {taxonomy.num_classes} ({taxonomy.class_names[0]}, ...): "
                "use a teacher trained on this dataset's taxonomy, or map its classes with --set "
                "teacher_label_map=FILE.csv (promptkit map proposes one)"
            )
        teacher = teacher.to(accelerator.device)
    train_data.validate(max_files=64)
    if has_unlabelled(train_data) and not terms:
        raise PromptKitError(
            f"{config.data} has unlabelled images, which teach nothing without a teacher: pass --teacher and --kd"
        )
    set_seed(config.seed)  # building the teacher drew from the RNG: the student's init must depend on the seed only
    student = build_network(config, taxonomy.num_classes).to(memory_format=config.memory_format)
    if terms:  # connectors sized and every term checked from the shapes both declare (no forward)
        connect(terms, student.output_info, teacher.output_info, config.student_size, teacher_size, accelerator.device)
    return _Setup(accelerator, train_data, val_data, teacher, teacher_size, student, terms)


def build_view_bank(config: RunConfig):
    """Build (or finish) the view bank ``distill run`` with ``config`` would read: ``distill cache``."""
    from distill.kd.view_bank import ensure_view_bank
    from distill.training.run_bank import bank_spec, run_views

    if not config.teacher:
        raise PromptKitError("a view bank holds a teacher's outputs: pass the teacher folder")
    if config.teacher_cache != "views":
        raise PromptKitError(f"teacher_cache={config.teacher_cache} reads no view bank: set teacher_cache=views")
    if not kd_terms(config):
        raise PromptKitError(f"--kd {config.kd} reads nothing from a teacher: a bank is for KD terms (e.g. --kd dist)")
    setup = _set_up(config)
    views = run_views(config, setup.train_data, None)
    spec = bank_spec(config, setup.train_data, setup.teacher_size, setup.terms, setup.student.output_info)
    report = ensure_view_bank(
        setup.teacher, config.teacher, views, spec, setup.accelerator, batch_size=config.batch_size
    )
    return report, spec


def _train_student(config: RunConfig, resume: bool, folder: RunFolder, start_time: float) -> dict[str, Any]:
    out = folder.path
    accelerator, train_data, val_data, teacher, teacher_size, student, terms = _set_up(config)
    student_info = student.output_info  # read before accelerate may wrap the student
    taxonomy = train_data.taxonomy
    trained = [p for p in student.parameters() if p.requires_grad] + connector_parameters(terms)
    optimizer = make_optimizer(trained, config.optimizer, config.lr, config.weight_decay)
    scheduler = poly_schedule(optimizer, config.steps, config.warmup_steps)
    # the scheduler stays unprepared: accelerate would step a prepared one once per process and step
    student, optimizer = accelerator.prepare(student, optimizer)
    if accelerator.is_main_process:
        atomic_write_text(out / "config.yaml", config_to_yaml(config))

    live_teacher = bool(terms) and config.teacher_cache == "live"
    views = run_views(config, train_data, teacher_size if live_teacher else None)
    teacher_cost: dict[str, Any] = {"teacher_forward_images": 0}
    if terms and config.teacher_cache == "views":
        views, teacher_cost = banked_views(config, teacher, train_data, views, teacher_size, student_info, accelerator)
    elif terms and config.teacher_cache == "image":
        from distill.kd.teacher_outputs import CachedTeacherViews, cached_teacher_outputs_counted

        cached, computed = cached_teacher_outputs_counted(
            teacher,
            Path(config.teacher),
            config.data,
            train_data,
            teacher_size,
            accelerator,
            teacher_feature_names(terms),
        )
        views = CachedTeacherViews(views, cached)
        teacher_cost = {"teacher_forward_images": computed}
    live_forwards = torch.zeros((), dtype=torch.long)
    ignore_index = taxonomy.ignore_index
    weights = class_weights(train_data, config.class_weighting, accelerator.device)

    def loss_fn(batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        images = normalize_images(batch["student_image"]).contiguous(memory_format=config.memory_format)
        labels = batch["student_label"]
        logits, features = student(images, return_features=True)
        if (labels != ignore_index).any():
            ce = F.cross_entropy(logits.float(), labels, weight=weights, ignore_index=ignore_index)
        else:  # a batch of unlabelled images only: its mean over no pixel would be nan
            ce = logits.float().sum() * 0.0
        loss = config.ce_weight * ce
        logged = {"ce": loss.item()}
        if not terms:
            return loss, logged
        teacher_features = None
        if live_teacher:
            with torch.no_grad():
                teacher_logits, teacher_features = teacher(batch["teacher_image"], return_features=True)
            live_forwards.add_(batch["teacher_image"].shape[0])
        else:
            teacher_logits, teacher_features = batch["teacher_logits"], batch.get("teacher_features")
        valid = kd_pixel_mask(labels, teacher_logits, ignore_index, config.kd_pixels)
        if "labelled" in batch and not bool(batch["labelled"].all()):
            unlabelled = ~batch["labelled"].to(valid.device)
            sure = teacher_confidence(teacher_logits, labels.shape[-2:]) >= config.unlabelled_kd_confidence
            valid = torch.where(unlabelled[:, None, None], sure, valid)
        logged["kd_pixel_fraction"] = (valid.sum() / (labels != ignore_index).sum().clamp_min(1)).item()
        distilled, values = kd_loss(
            terms, (logits, features), (teacher_logits, teacher_features), valid, batch["step"], config.steps
        )
        logged.update(values)
        return loss + distilled, logged

    def keep_best() -> None:
        _save_best(accelerator, student, out)

    writer = tensorboard_writer(out / "tensorboard", accelerator)
    settings = config.loop_settings()
    state = train_steps(
        accelerator=accelerator,
        model=student,
        optimizer=optimizer,
        scheduler=scheduler,
        views=views,
        settings=settings,
        checkpoints=Checkpoints(
            out / RUN_CHECKPOINT,
            accelerator,
            student,
            optimizer,
            scheduler,
            config_sha256=folder.config_sha256,
            extra=term_state(terms),
        ),
        loss_fn=loss_fn,
        evaluate=lambda: evaluate_student(accelerator.unwrap_model(student), val_data, config, accelerator),
        keep_best=keep_best,
        resume=resume,
        writer=writer,
        description=f"student {config.student}",
    )
    if config.steps == 0:
        keep_best()  # nothing trained: the initial weights are the run's result
    accelerator.wait_for_everyone()
    # one number per rank: with several processes the replicas must hold identical weights
    checksum = torch.stack([p.detach().double().sum() for p in accelerator.unwrap_model(student).parameters()]).sum()
    checksums = [float(v) for v in accelerator.gather(checksum.reshape(1).to(accelerator.device))]
    if live_teacher:
        forwards = accelerator.gather(live_forwards.reshape(1).to(accelerator.device))
        teacher_cost["teacher_forward_images"] = int(forwards.sum())
    final = _final_metrics(
        config, accelerator, folder, val_data, teacher, teacher_size, state, checksums, start_time, teacher_cost
    )
    if writer is not None:
        writer.close()
    accelerator.end_training()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # gloo workers abort at exit without it
    return final


def teacher_confidence(teacher_logits: torch.Tensor, size) -> torch.Tensor:
    """The teacher's top class probability ``[B, H, W]`` at the labels' size (the mask of unlabelled images)."""
    logits = teacher_logits.detach().float()
    if logits.shape[-2:] != tuple(size):
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
    return logits.softmax(1).amax(1)


def _save_best(accelerator, student, out: Path) -> None:
    if not accelerator.is_main_process:
        return
    from safetensors.torch import save as safetensors_save

    weights = {k: v.detach().cpu().contiguous() for k, v in accelerator.unwrap_model(student).state_dict().items()}
    atomic_write_bytes(out / BEST_WEIGHTS, safetensors_save(weights))


@torch.no_grad()
def evaluate_student(
    student,
    dataset,
    config: RunConfig,
    accelerator,
    panels_to: Path | None = None,
    teacher: Teacher | None = None,
    teacher_size=None,
    augmentation=None,
) -> dict[str, Any]:
    """Student (and optionally teacher) metrics on the same val images; panels on request.

    ``augmentation`` (a ``TestTimeAugmentation``) averages the student's probabilities over flipped
    and rescaled copies of each image.
    """
    student.eval()

    def predict(images):
        return student(normalize_images(images))

    if augmentation is not None:
        from distill.evaluation.test_time_augmentation import augmented_predictor

        predict = augmented_predictor(predict, augmentation, getattr(student, "input_multiple", 1))
    segmenters = [Segmenter("student", "student", predict)]
    if teacher is not None:
        segmenters.insert(0, Segmenter("teacher", "teacher", teacher))
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


def _final_metrics(
    config, accelerator, folder, val_data, teacher, teacher_size, state, checksums, start_time, teacher_cost
):
    out = folder.path
    best = create_network(config.student, val_data.taxonomy.num_classes)
    best.load_state_dict(read_safetensors(out / BEST_WEIGHTS, "best student weights"))
    best = best.to(accelerator.device, memory_format=config.memory_format)
    evaluated = evaluate_student(
        best,
        val_data,
        config,
        accelerator,
        panels_to=out if accelerator.is_main_process else None,
        teacher=teacher,
        teacher_size=teacher_size,
    )
    teacher_metrics = evaluated.pop("teacher", None)
    metrics = {
        "miou": evaluated["miou"],
        "pixel_accuracy": evaluated["pixel_accuracy"],
        "per_class_iou": evaluated["per_class_iou"],
        "student": evaluated,
        "teacher": teacher_metrics,
        "teacher_kind": None if teacher is None else teacher.kind,
        "best_step": state.best_step,
        "history": state.history,
        "processes": accelerator.num_processes,
        "rank_checksums": checksums,
        "train_seconds": elapsed(start_time),
        "seconds_per_step": round(state.step_seconds / state.step, 4) if state.step else None,
        "student_size": list(config.student_size),
        "teacher_size": list(teacher_size),
        "teacher_cache": config.teacher_cache if teacher is not None else None,
        "teacher_views": train_views(config),
        **teacher_cost,
        "eval_split": val_data.split,
        "eval_images": config.evaluated_images(val_data),
    }
    if accelerator.is_main_process:
        embeddings = getattr(teacher, "embeddings", None)
        record = provenance(
            stage="student",
            seed=config.seed,
            prompt_set=config.prompts,
            prompt_set_hash=embeddings.prompt_set_hash if embeddings is not None else None,
            encoder=embeddings.encoder if embeddings is not None else None,
            style=getattr(embeddings, "style", None),
            teacher=config.teacher,
            teacher_identity=None if teacher is None else teacher.identity,
            student=config.student,
            kd=config.kd if isinstance(config.kd, str) else [term.model_dump(mode="json") for term in config.kd],
            data=config.data,
            device=str(accelerator.device),
            processes=accelerator.num_processes,
            mixed_precision=accelerator.mixed_precision,
            config=config.model_dump(mode="json"),
            config_sha256=folder.config_sha256,
            resumed_from_step=folder.resumed_from_step,
            changed_on_resume=folder.changed_on_resume,
        )
        # the run folder teaches too: name the network, its classes and input size
        write_network_descriptor(out, config.student, val_data.taxonomy.class_names, config.student_size)
        write_finished(out, accelerator, record, metrics)
    return metrics
