"""`distill eval`: re-evaluate a saved student run, a student checkpoint, or a teacher folder.

The same evaluation code as training (``evaluate_student`` / ``evaluate_teacher``, with the
saved config's ``val_images`` limit) on another dataset or split, so a number from
``distill eval`` and one from ``metrics.json`` mean the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.datasets import create_dataset
from distill.evaluation.test_time_augmentation import TestTimeAugmentation
from prompt_kit.errors import PromptKitError
from prompt_kit.readers import read_safetensors, read_yaml

BEST_WEIGHTS = Path("checkpoints") / "best" / "model.safetensors"


def find_run_folder(path: Path) -> tuple[Path, Path]:
    """(run folder, student weights) for a run folder or a ``.safetensors`` file inside one."""
    if path.is_dir():
        weights = path / BEST_WEIGHTS
        if not weights.is_file():
            raise PromptKitError(
                f"{path} is neither a teacher folder nor a finished run (no {BEST_WEIGHTS}): "
                "pass a folder written by `distill run` or `distill teacher`"
            )
        return path, weights
    if path.suffix != ".safetensors" or not path.is_file():
        raise PromptKitError(f"{path} is not a run folder, a teacher folder or a .safetensors checkpoint")
    for folder in list(path.parents)[:3]:
        if (folder / "config.yaml").is_file():
            return folder, path
    raise PromptKitError(f"no run folder (config.yaml) above {path}: the student's name and sizes are unknown")


def evaluate_saved(
    path: str | Path,
    data: str | None = None,
    split: str = "val",
    prompts: str | Path | None = None,
    augmentation: TestTimeAugmentation | None = None,
) -> dict[str, Any]:
    """Metrics (``miou``, per-class IoU, pixel accuracy) of the saved model at ``path`` on ``data``.

    ``prompts`` gives a diffusion teacher another prompt set of its classes (prompt transfer);
    ``augmentation`` averages its probabilities over flipped and rescaled copies of each image.
    """
    from distill.training.core import make_accelerator

    path = Path(path)
    if not path.exists():
        raise PromptKitError(f"{path} does not exist: pass a run folder, a teacher folder or a checkpoint")
    accelerator = make_accelerator("auto")
    augmentation = augmentation or TestTimeAugmentation()
    if path.is_dir() and (path / "teacher_config.json").is_file():
        folder, metrics = path, _evaluate_teacher_folder(path, data, split, accelerator, prompts, augmentation)
    else:
        if prompts:
            raise PromptKitError(f"--prompts is for teacher folders; {path} is a student run or checkpoint")
        metrics = _evaluate_student_run(path, data, split, accelerator, augmentation)
        folder = find_run_folder(path)[0]
    return {**metrics, "tta": augmentation.describe(), **run_status(folder)}


def run_status(folder: Path) -> dict[str, Any]:
    """``finished`` (the run wrote metrics.json) and, for a killed run, the step of its last checkpoint."""
    from distill.training.checkpoints import checkpoint_state

    if (folder / "metrics.json").is_file():
        return {"finished": True}
    states = [checkpoint_state(folder / "checkpoints" / name) for name in ("last", "denoiser")]
    step = next((state["step"] for state in states if "step" in state), None)
    return {"finished": False, "checkpoint_step": step}


def _read_config(folder: Path) -> dict[str, Any]:
    values = read_yaml(folder / "config.yaml", "run config") or {}
    if not isinstance(values, dict):
        raise PromptKitError(f"{folder / 'config.yaml'} is not a run config: expected a YAML mapping")
    return values


def _evaluate_teacher_folder(
    folder: Path, data: str | None, split: str, accelerator, prompts: str | Path | None, augmentation
) -> dict[str, Any]:
    from teacher import TeacherFolder

    teacher_folder = TeacherFolder(folder)
    spec = data or teacher_folder.training_config.get("data", "synthetic")
    metrics = evaluate_teacher_folder(folder, create_dataset(spec, split), accelerator, prompts, augmentation)
    return {**metrics, "model": "teacher", "data": spec, "split": split, "size": list(teacher_folder.image_size)}


def evaluate_teacher_folder(
    folder: str | Path,
    dataset,
    accelerator,
    prompts: str | Path | None = None,
    augmentation: TestTimeAugmentation | None = None,
) -> dict[str, Any]:
    """The diffusion teacher in ``folder`` on ``dataset`` at its own size and image limit.

    ``prompts``: condition it on another prompt set of its classes instead of its own.
    """
    from distill.training.prompt_teacher import evaluate_teacher
    from teacher import TeacherFolder, load_teacher

    teacher_folder = TeacherFolder(folder)
    embeddings = teacher_folder.embeddings_for(prompts)
    if embeddings.class_names != dataset.taxonomy.class_names:
        raise PromptKitError(
            f"the teacher in {folder} predicts other classes than {dataset.name}: use data of its taxonomy"
        )
    model = load_teacher(folder).to(accelerator.device)
    limit = teacher_folder.training_config.get("val_images")  # the same images as the folder's own metrics.json
    device_embeddings = embeddings.to(accelerator.device)
    return evaluate_teacher(
        model, device_embeddings, dataset, teacher_folder.image_size, accelerator, limit, augmentation=augmentation
    )


def _evaluate_student_run(path: Path, data: str | None, split: str, accelerator, augmentation) -> dict[str, Any]:
    from distill.training.run_config import RunConfig
    from distill.training.student import evaluate_student
    from networks import create_network

    folder, weights = find_run_folder(path)
    config = RunConfig.model_validate(_read_config(folder))
    spec = data or config.data
    dataset = create_dataset(spec, split)
    model = create_network(config.student, dataset.taxonomy.num_classes)
    try:
        model.load_state_dict(read_safetensors(weights, "student weights"))
    except RuntimeError as exc:
        raise PromptKitError(
            f"{weights} does not fit a {config.student} student for {dataset.taxonomy.num_classes} classes "
            f"({spec}): {str(exc).splitlines()[0]}"
        ) from exc
    metrics = evaluate_student(model.to(accelerator.device), dataset, config, accelerator, augmentation=augmentation)
    return {**metrics, "model": config.student, "data": spec, "split": split, "size": list(config.student_size)}


__all__ = ["evaluate_saved", "find_run_folder"]
