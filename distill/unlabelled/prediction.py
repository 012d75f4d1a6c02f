"""`distill predict`: a teacher's or a student's predictions for images nobody labelled, as files.

For each image: ``labels/<name>.png`` (one channel, uint8: train ids, or the dataset's own ids
such as Cityscapes ``labelIds`` for its evaluation server), ``overlays/<name>.png`` (the image
under the class colours) and, on request, ``probabilities/<name>.safetensors`` (float16
``[C, h, w]`` at the model's input size, the averaged test-time-augmentation probabilities).
Each image is resized to the model's own input size (as evaluation does), predicted (with
:mod:`distill.evaluation.test_time_augmentation`), and its probabilities resized back to the image's own
resolution before the argmax, so label PNGs match their images pixel for pixel.

Every file is written atomically; an image whose files are all there is skipped, so a killed
run re-run with the same command finishes the rest. ``predictions.json`` (the model, the
augmentation, the ids, the classes, provenance) is written last.
"""

from __future__ import annotations

import glob
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from distill.datasets.file_pairs import IMAGE_SUFFIXES
from distill.datasets.segmentation_dataset import read_image_array
from distill.evaluation.panels import colourise
from distill.evaluation.test_time_augmentation import TestTimeAugmentation, predict_probabilities
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes, atomic_write_text
from prompt_kit.readers import read_json
from prompt_kit.taxonomy import ClassInfo, Taxonomy, list_taxonomies, load_taxonomy

LabelIds = Literal["train", "dataset"]
LABELS, OVERLAYS, PROBABILITIES = "labels", "overlays", "probabilities"
RECORD = "predictions.json"


@dataclass(frozen=True)
class InputImage:
    """One image to predict: the name its output files get, and how to read it (uint8 ``[H, W, 3]``)."""

    name: str
    read: Callable[[], np.ndarray]
    path: Path | None = None  # the file it is read from (None: drawn by a dataset)


@dataclass(frozen=True)
class ImageSource:
    """The images of ``--images``, and the dataset they come from when it is a dataset spec."""

    images: list[InputImage]
    dataset: Any = None


def image_source(spec: str, split: str = "test") -> ImageSource:
    """A folder (searched recursively), one image file, a glob pattern, or a dataset spec and ``split``."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise PromptKitError(f"--images {spec}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return ImageSource(_named_files(files, spec))
    if path.is_file():
        return ImageSource(_named_files([path], spec))
    if any(character in spec for character in "*?["):
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise PromptKitError(f"--images {spec}: the pattern matches no image files")
        return ImageSource(_named_files(files, spec))
    if ":" not in spec and spec != "synthetic":
        raise PromptKitError(
            f"--images {spec}: no such folder or file; pass a folder, an image, a glob pattern or a dataset spec "
            "(camvid:PATH, cityscapes:PATH, folder:PATH, synthetic)"
        )
    from distill.datasets import create_dataset

    dataset = create_dataset(spec, split)
    files = getattr(dataset, "files", None)
    if files:  # drawn datasets (synthetic) have none
        images = _named_files([image for image, _ in files], spec)
    else:
        width = len(str(len(dataset)))
        images = [InputImage(f"{index:0{width}d}", _dataset_reader(dataset, index)) for index in range(len(dataset))]
    return ImageSource(images, dataset)


def _named_files(files: list[Path], spec: str) -> list[InputImage]:
    names: dict[str, Path] = {}
    for file in files:
        if file.stem in names:
            raise PromptKitError(
                f"--images {spec}: {names[file.stem]} and {file} would both be written as {file.stem}.png; "
                "rename one or predict the folders one at a time"
            )
        names[file.stem] = file
    return [InputImage(name, lambda file=file: read_image_array(file), file) for name, file in names.items()]


def _dataset_reader(dataset, index: int) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        image, _ = dataset[index]
        return (image.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()

    return read


def taxonomy_for(class_names: list[str]) -> Taxonomy:
    """The built-in taxonomy of these classes (for its colours), or one with generated colours."""
    for name in list_taxonomies():
        taxonomy = load_taxonomy(name)
        if taxonomy.class_names == list(class_names):
            return taxonomy
    generator = np.random.default_rng(0)
    colours = generator.integers(40, 256, size=(len(class_names), 3))
    classes = tuple(
        ClassInfo(name=name, label=name, color=tuple(int(v) for v in colour))
        for name, colour in zip(class_names, colours, strict=True)
    )
    return Taxonomy(name="model", classes=classes)


def dataset_id_table(dataset, num_classes: int) -> np.ndarray:
    """uint8 ``[num_classes]``: for each train id the raw value the dataset's label files store for it.

    The inverse of the reader's label mapping (Cityscapes: train id 0 -> labelId 7, road); where
    several raw values map to one class (KITTI-11's cyclist), the smallest is written.
    """
    mapping = getattr(dataset, "mapping", None)
    if mapping is None:
        raise PromptKitError(
            "--ids dataset needs --images to be a dataset spec whose reader maps label values (camvid:PATH, "
            "cityscapes:PATH, kitti:PATH); for a folder of images use --ids train"
        )
    table = np.full(num_classes, -1, dtype=np.int64)
    for raw in range(255, -1, -1):  # descending, so the smallest raw value of a class is kept
        class_id = int(mapping.table[raw])
        if mapping.valid[raw] and 0 <= class_id < num_classes:
            table[class_id] = raw
    missing = [index for index, raw in enumerate(table) if raw < 0]
    if missing:
        raise PromptKitError(f"{dataset.name}'s label mapping stores no value for class ids {missing}: use --ids train")
    return table.astype(np.uint8)


def _overlay(image: np.ndarray, classes: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    colours = colourise(torch.from_numpy(classes.astype(np.int64)), taxonomy)
    return (0.5 * image.astype(np.float32) + 0.5 * colours.astype(np.float32)).round().astype(np.uint8)


def _batches(items: list[InputImage], size: int) -> Iterator[list[InputImage]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_record(model_path, model, images: str, split: str, source: ImageSource, augmentation) -> dict[str, Any]:
    """What every output record of a prediction run starts with: the model, the images, the augmentation."""
    return {
        "model": str(model_path),
        "model_kind": model.kind,
        "images": images,
        "split": split if source.dataset is not None else None,
        "count": len(source.images),
        "tta": augmentation.describe(),
    }


def load_finished_model(model_path: str | Path, prompts: str | Path | None = None):
    """``(teacher, input size)`` of a finished teacher folder or student run (a run folder teaches too)."""
    from teacher import TeacherFolder

    folder = TeacherFolder(model_path)
    if not folder.finished:
        raise PromptKitError(f"{model_path} is not finished (no metrics.json): predict with a finished teacher or run")
    model = folder.load(prompts)
    size = folder.image_size
    model.check_size(size)
    return model, size


def source_taxonomy(source: ImageSource, model, images: str) -> Taxonomy:
    """The dataset's taxonomy (it must be the model's), or the model's classes' built-in one."""
    taxonomy = source.dataset.taxonomy if source.dataset is not None else taxonomy_for(model.class_names)
    if taxonomy.class_names != model.class_names:
        raise PromptKitError(
            f"{images} has the classes of {taxonomy.name} but the model predicts {model.class_names[:3]}...: "
            "predict images of the model's taxonomy"
        )
    return taxonomy


@torch.no_grad()
def predicted_probabilities(
    model,
    images: list[InputImage],
    size: tuple[int, int],
    augmentation: TestTimeAugmentation,
    accelerator,
    batch_size: int = 4,
) -> Iterator[tuple[InputImage, np.ndarray, torch.Tensor]]:
    """``(image, its uint8 array, probabilities [C, *size] on the CPU)`` for each image, in batches."""
    for batch in _batches(images, batch_size):
        arrays = [item.read() for item in batch]
        resized = [
            F.interpolate(_tensor(array)[None], size=size, mode="bilinear", align_corners=False)[0] for array in arrays
        ]
        inputs = torch.stack(resized).to(accelerator.device)
        with accelerator.autocast():
            averaged = predict_probabilities(model, inputs, augmentation, model.input_multiple, out_size=size)
        yield from zip(batch, arrays, averaged.float().cpu(), strict=True)


def full_resolution(probabilities: torch.Tensor, array: np.ndarray) -> torch.Tensor:
    """``[C, h, w]`` probabilities resized (bilinear) to the image's own ``H x W``."""
    return F.interpolate(probabilities[None], size=array.shape[:2], mode="bilinear", align_corners=False)[0]


def png_bytes(array: np.ndarray) -> bytes:
    """A uint8 ``[H, W]`` or ``[H, W, 3]`` array as PNG file content."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@torch.no_grad()
def predict_images(
    model_path: str | Path,
    images: str,
    out: str | Path,
    augmentation: TestTimeAugmentation | None = None,
    split: str = "test",
    ids: LabelIds = "train",
    overlays: bool = True,
    probabilities: bool = False,
    prompts: str | Path | None = None,
    batch_size: int = 4,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the predictions of the teacher or student run at ``model_path`` for ``images`` into ``out``.

    Images already predicted into ``out`` by the same model and settings are skipped (a killed
    run continues); a folder of another command's work is refused, and one of predictions by
    another model or setting too, unless ``overwrite`` (every image is then predicted again).
    Returns ``predictions.json``'s content (``predicted``: images written now, ``skipped``: found done).
    """
    from distill.training.core import make_accelerator
    from distill.training.provenance import provenance
    from prompt_kit.outputs import check_output_folder

    out = check_output_folder(out, "--out", own=RECORD)
    augmentation = augmentation or TestTimeAugmentation()
    model, size = load_finished_model(model_path, prompts)
    source = image_source(images, split)
    taxonomy = source_taxonomy(source, model, images)
    table = dataset_id_table(source.dataset, model.num_classes) if ids == "dataset" else None
    out = Path(out)
    kinds = [LABELS] + ([OVERLAYS] if overlays else []) + ([PROBABILITIES] if probabilities else [])
    suffix = {LABELS: ".png", OVERLAYS: ".png", PROBABILITIES: ".safetensors"}

    def paths(item: InputImage) -> dict[str, Path]:
        return {kind: out / kind / f"{item.name}{suffix[kind]}" for kind in kinds}

    now = {**run_record(model_path, model, images, split, source, augmentation), "ids": ids}
    if overwrite:  # every image again: nothing of the earlier predictions may stay beside the new ones
        import shutil

        for kind in (LABELS, OVERLAYS, PROBABILITIES):
            shutil.rmtree(out / kind, ignore_errors=True)
        (out / RECORD).unlink(missing_ok=True)
    elif (out / RECORD).is_file():
        earlier = read_json(out / RECORD, "predictions record")
        if not isinstance(earlier, dict):
            raise PromptKitError(f"{out / RECORD} is not a predictions record: pass --overwrite to predict again")
        changed = [key for key in ("model", "images", "split", "tta", "ids") if earlier.get(key) != now[key]]
        if changed:
            raise PromptKitError(
                f"{out} holds predictions with another {changed[0]} ({earlier.get(changed[0])!r}): choose another "
                "--out, or pass --overwrite to predict every image again"
            )
    elif any((out / kind).is_dir() and any((out / kind).iterdir()) for kind in (LABELS, OVERLAYS, PROBABILITIES)):
        raise PromptKitError(f"{out} holds predictions without a record of what made them: pass --overwrite")
    # what is being written, before the first image: a killed run is continued only with the same settings
    atomic_write_text(out / RECORD, json.dumps({**now, "finished": False}, indent=2) + "\n")
    done = (lambda item: False) if overwrite else (lambda item: all(path.is_file() for path in paths(item).values()))
    todo = [item for item in source.images if not done(item)]
    accelerator = make_accelerator("auto")
    model = model.to(accelerator.device).eval()
    for item, array, probs in tqdm(
        predicted_probabilities(model, todo, size, augmentation, accelerator, batch_size),
        total=len(todo),
        desc="predict",
        disable=not accelerator.is_local_main_process,
    ):
        classes = full_resolution(probs, array).argmax(0).numpy().astype(np.uint8)
        targets = paths(item)
        atomic_write_bytes(targets[LABELS], png_bytes(table[classes] if table is not None else classes), durable=False)
        if overlays:
            atomic_write_bytes(targets[OVERLAYS], png_bytes(_overlay(array, classes, taxonomy)), durable=False)
        if probabilities:
            from safetensors.torch import save as safetensors_save

            metadata = {"image_size": f"{array.shape[0]}x{array.shape[1]}", "classes": json.dumps(model.class_names)}
            data = safetensors_save({"probabilities": probs.half().contiguous()}, metadata=metadata)
            atomic_write_bytes(targets[PROBABILITIES], data, durable=False)
    record = {
        **run_record(model_path, model, images, split, source, augmentation),
        "predicted": len(todo),
        "skipped": len(source.images) - len(todo),
        "ids": ids,
        "input_size": list(size),
        "class_names": model.class_names,
        "outputs": kinds,
        "finished": True,
        "provenance": provenance(stage="predict", teacher_identity=model.identity, device=str(accelerator.device)),
    }
    atomic_write_text(out / RECORD, json.dumps(record, indent=2) + "\n")
    return record


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1).to(torch.float32).div_(255.0)


__all__ = [
    "ImageSource",
    "InputImage",
    "dataset_id_table",
    "full_resolution",
    "image_source",
    "load_finished_model",
    "png_bytes",
    "predict_images",
    "predicted_probabilities",
    "run_record",
    "source_taxonomy",
    "taxonomy_for",
]
