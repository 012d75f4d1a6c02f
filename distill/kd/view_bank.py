"""The view bank: the teacher's outputs for the exact crops a student sees, computed once per teacher.

A frozen teacher's output depends only on the crop it sees. With views (``PairedViews(views=V)``)
every crop a run can train on is known before training: view ``v`` of image ``i`` is a function
of ``view_seed`` alone. So the teacher runs once on every (image, view) at its own input size,
and its logits (and the named feature maps the KD terms compare) are stored at the resolution the
losses read them (the student's map size under ``align: downsample_teacher``, resized as the
loss would resize them, when that is smaller; the teacher's own size otherwise), float32 (or
float16, ``view_bank_dtype``, half the disk), in safetensors shards of the teacher folder; for
large label spaces ``view_bank_top_k`` keeps each pixel's k largest logits and the mass of the
rest (FKD's soft labels). Every later run, seed and KD loss of that teacher reads its rows
memory-mapped: KD at the cost of a plain training step, with the live teacher's crops (FKD, Shen
& Xing, ECCV 2022, does this for classification). A float32 bank gives the live teacher's
numbers (README, "A view bank"); colour jitter is the student's only, live or banked
(``distill.datasets.paired_views``).

Layout: ``<teacher>/view_bank/<key>/shard-00000.safetensors ...`` (``SHARD_IMAGES`` images x V
views each, row ``(i % SHARD_IMAGES) * V + v``) and ``bank.json``, written last: a bank without
it is unfinished, and building again keeps every finished shard (resumable after a kill). With
several processes each builds its own shards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from tqdm.auto import tqdm

from distill.datasets.paired_views import PairedViews, apply_geometry
from distill.kd.teacher_outputs import FEATURE_PREFIX, LOGITS_KEY  # one storage naming for both formats
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes, atomic_write_text
from prompt_kit.readers import read_json
from teacher import Teacher

logger = logging.getLogger(__name__)

BANK_FOLDER = "view_bank"
BANK_VERSION = 1
SHARD_IMAGES = 32
TOP_K_KEYS = ("logits.top_values", "logits.top_classes", "logits.logsumexp")
DTYPES = {"float16": torch.float16, "float32": torch.float32}
_LATER_FIELDS = {"dtype": "float16", "top_k": 0}  # what banks held before the field existed

Size = tuple[int, int]


@dataclass(frozen=True)
class BankSpec:
    """Everything a bank's content depends on besides the teacher: the key is a digest of it.

    ``outputs`` maps each stored key (``logits``, ``feature.NAME``) to its storage size, or None for
    the teacher's own output size.
    """

    data: str
    images: int
    teacher_size: Size
    views: int
    view_seed: int
    augment: bool
    scale_range: tuple[float, float]
    flip: bool
    outputs: tuple[tuple[str, Size | None], ...]
    dtype: str = "float32"
    top_k: int = 0

    def key(self, teacher: Teacher) -> str:
        fields = asdict(self)
        for name, default in _LATER_FIELDS.items():  # a bank built before a field existed keeps its key
            if fields[name] == default:
                del fields[name]
        digest = hashlib.sha256(teacher.identity.encode())
        digest.update(json.dumps([BANK_VERSION, fields], sort_keys=True).encode())
        return digest.hexdigest()[:20]

    @property
    def tensors(self) -> tuple[str, ...]:
        """The tensor names of a shard: each output's, the logits as three under ``top_k``."""
        names = []
        for key, _ in self.outputs:
            names.extend(TOP_K_KEYS if key == LOGITS_KEY and self.top_k else (key,))
        return tuple(names)

    @property
    def stored_views(self) -> int:
        """Views per image in the bank: one (the whole image) when training does not augment."""
        return self.views if self.augment else 1

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(key.removeprefix(FEATURE_PREFIX) for key, _ in self.outputs if key.startswith(FEATURE_PREFIX))


def bank_folder(teacher_dir: str | Path, teacher: Teacher, spec: BankSpec) -> Path:
    return Path(teacher_dir) / BANK_FOLDER / spec.key(teacher)


def shard_count(spec: BankSpec) -> int:
    return -(-spec.images // SHARD_IMAGES)


@dataclass
class BuildReport:
    """What building cost: teacher forwards (one per view computed here) and seconds; 0 and 0.0 for a finished bank."""

    folder: Path
    teacher_forward_images: int
    seconds: float
    built: bool


def ensure_view_bank(
    teacher: Teacher,
    teacher_dir: str | Path,
    views: PairedViews,
    spec: BankSpec,
    accelerator,
    batch_size: int = 16,
) -> BuildReport:
    """The bank of ``spec`` in ``teacher_dir``, built (or finished) first when it is not complete.

    ``views`` is the run's ``PairedViews`` (its geometry is the bank's); the teacher runs on each
    view at ``spec.teacher_size``, un-jittered.
    """
    folder = bank_folder(teacher_dir, teacher, spec)
    if _complete(folder, spec, teacher):
        return BuildReport(folder, 0, 0.0, built=False)
    start = time.perf_counter()
    shards = range(shard_count(spec))
    mine = [shard for shard in shards if shard % accelerator.num_processes == accelerator.process_index]
    todo = [shard for shard in mine if not _shard_ok(folder / _shard_name(shard), spec, shard)]
    forwards = _build_shards(teacher, views, spec, folder, todo, accelerator, batch_size)
    accelerator.wait_for_everyone()
    total = int(accelerator.gather(torch.tensor([forwards], device=accelerator.device)).sum())
    seconds = round(time.perf_counter() - start, 1)
    if accelerator.is_main_process:
        missing = [shard for shard in shards if not _shard_ok(folder / _shard_name(shard), spec, shard)]
        if missing:
            raise PromptKitError(f"{folder}: shard {missing[0]} is missing after building: is the disk full?")
        record = {
            "version": BANK_VERSION,
            "key": spec.key(teacher),
            "teacher": teacher.identity[:200],
            "spec": asdict(spec),
            "shard_images": SHARD_IMAGES,
            "bytes": sum(path.stat().st_size for path in folder.glob("shard-*.safetensors")),
            "build_seconds": seconds,
            "teacher_forward_images": total,
        }
        atomic_write_text(folder / "bank.json", json.dumps(record, indent=2) + "\n")
    accelerator.wait_for_everyone()
    return BuildReport(folder, total, seconds, built=True)


def _complete(folder: Path, spec: BankSpec, teacher: Teacher) -> bool:
    path = folder / "bank.json"
    if not path.is_file():
        return False
    try:
        record = read_json(path, "view bank record")
    except PromptKitError:
        return False
    if not isinstance(record, dict) or record.get("key") != spec.key(teacher):
        return False
    damaged = [shard for shard in range(shard_count(spec)) if not _shard_ok(folder / _shard_name(shard), spec, shard)]
    if damaged:
        logger.warning("view bank shard %d of %s cannot be used: computing it again", damaged[0], folder)
        return False
    return True


def _shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.safetensors"


def _shard_images(spec: BankSpec, shard: int) -> range:
    return range(shard * SHARD_IMAGES, min(spec.images, (shard + 1) * SHARD_IMAGES))


def _shard_ok(path: Path, spec: BankSpec, shard: int) -> bool:
    """A finished shard of this bank: readable, every stored key, one row per (image, view)."""
    if not path.is_file():
        return False
    rows = len(_shard_images(spec, shard)) * spec.stored_views
    try:
        with safe_open(str(path), "pt") as handle:
            keys = set(handle.keys())
            if keys != set(spec.tensors):
                return False
            return all(handle.get_slice(key).get_shape()[0] == rows for key in keys)
    except (OSError, SafetensorError, ValueError):
        return False


class _ImageViews(Dataset):
    """Item ``i``: every bank view of image ``i`` at the teacher's size, un-jittered, ``[V, 3, h, w]``."""

    def __init__(self, views: PairedViews, spec: BankSpec) -> None:
        self.views, self.spec = views, spec

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, index: int) -> torch.Tensor:
        image, _ = self.views.dataset[index]
        source = (image.shape[-2], image.shape[-1])
        crops = []
        for view in range(self.spec.stored_views):
            params = self.views.view_params(index, view, source)
            crops.append(apply_geometry(image, params, self.spec.teacher_size, InterpolationMode.BILINEAR, fill=0.0))
        return torch.stack(crops)


@torch.no_grad()
def _build_shards(teacher, views, spec, folder, shards, accelerator, batch_size) -> int:
    """Compute and write ``shards``; returns the teacher forwards (views) computed."""
    if not shards:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    images = _ImageViews(views, spec)
    teacher.eval()
    per_batch = max(1, batch_size // spec.stored_views)
    forwards = 0
    progress = tqdm(
        total=sum(len(_shard_images(spec, shard)) for shard in shards),
        desc=f"view bank ({spec.stored_views} views)",
        unit="image",
        disable=not accelerator.is_local_main_process,
    )
    try:
        for shard in shards:
            indices = list(_shard_images(spec, shard))
            loader = DataLoader(
                torch.utils.data.Subset(images, indices),
                batch_size=per_batch,
                collate_fn=lambda items: torch.cat(items),
                generator=torch.Generator().manual_seed(0),  # the global RNG stays untouched
            )
            parts: dict[str, list[torch.Tensor]] = {name: [] for name in spec.tensors}
            for crops in loader:
                with accelerator.autocast():
                    logits, named = teacher(crops.to(accelerator.device), return_features=True)
                classes = logits.shape[1]
                for key, size in spec.outputs:
                    for name, value in _stored(key, logits, named, size, spec).items():
                        parts[name].append(value)
                forwards += crops.shape[0]
                progress.update(crops.shape[0] // spec.stored_views)
            tensors = {key: torch.cat(values).contiguous() for key, values in parts.items()}
            metadata = {"bank": folder.name, "shard": str(shard), "images": str(len(indices)), "classes": str(classes)}
            atomic_write_bytes(folder / _shard_name(shard), safetensors_save(tensors, metadata=metadata))
    finally:
        progress.close()
    return forwards


def _stored(
    key: str, logits: torch.Tensor, named: dict[str, torch.Tensor], size: Size | None, spec: BankSpec
) -> dict[str, torch.Tensor]:
    """One output as the bank stores it: resized as the KD losses would resize it, in ``spec.dtype`` on the CPU.

    Under ``spec.top_k`` the logits become each pixel's k largest (values and classes) and its logsumexp.
    """
    if key == LOGITS_KEY:
        value = logits
    else:
        name = key.removeprefix(FEATURE_PREFIX)
        if name not in named:
            offered = ", ".join(named) or "none"
            raise PromptKitError(f"the teacher has no feature map {name!r} to bank: it offers {offered}")
        value = named[name]
    value = value.float()
    own = tuple(value.shape[-2:])
    if size is not None and own != tuple(size) and size[0] <= own[0] and size[1] <= own[1]:
        # the same resize as distill.kd.losses.alignment, so the loss's own resize is then a no-op; a map the loss
        # would enlarge is stored at its own size (the loss enlarges it from there, as it would the live map)
        value = F.interpolate(value, size=tuple(size), mode="bilinear", align_corners=False)
    dtype = DTYPES[spec.dtype]
    if key != LOGITS_KEY or not spec.top_k:
        return {key: value.cpu().to(dtype)}
    classes = value.shape[1]
    if spec.top_k >= classes:
        raise PromptKitError(
            f"view_bank_top_k={spec.top_k} keeps every one of the teacher's {classes} classes: "
            f"set it below {classes}, or 0 to store the logits whole"
        )
    top = value.topk(spec.top_k, dim=1)
    values, classes_kept, lse = top.values, top.indices, value.logsumexp(dim=1, keepdim=True)
    index_dtype = torch.uint8 if classes <= 256 else torch.int16
    stored = (values.cpu().to(dtype), classes_kept.cpu().to(index_dtype), lse.cpu().to(dtype))
    return dict(zip(TOP_K_KEYS, stored, strict=True))


def dense_logits(values: torch.Tensor, classes_kept: torch.Tensor, logsumexp: torch.Tensor, classes: int):
    """Logits ``[C, h, w]`` back from a top-k bank row: the kept classes' own, the rest sharing what remains.

    The softmax of the result gives each kept class its probability and every other class an even
    share of the remaining mass (FKD's soft labels); the kept logits and each pixel's logsumexp are exact.
    """
    values, lse = values.float(), logsumexp.float()
    kept_mass = torch.exp(values - lse).sum(0, keepdim=True).clamp(max=1.0)
    rest = torch.log((1.0 - kept_mass).clamp_min(1e-12) / (classes - values.shape[0])) + lse
    logits = rest.expand(classes, *values.shape[1:]).clone()
    return logits.scatter_(0, classes_kept.long(), values)


class ViewBank:
    """Rows of a finished bank, read memory-mapped: ``bank.row(image, view) -> {key: tensor}`` (dense logits).

    Shards are opened lazily in each process (DataLoader workers open their own).
    """

    def __init__(self, folder: str | Path, spec: BankSpec) -> None:
        self.folder = Path(folder)
        self.spec = spec
        self._handles: dict[int, Any] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}

    def _handle(self, shard: int):
        if self._pid != os.getpid():
            self._handles, self._pid = {}, os.getpid()
        if shard not in self._handles:
            path = self.folder / _shard_name(shard)
            try:
                self._handles[shard] = safe_open(str(path), "pt")
            except (OSError, SafetensorError) as error:
                raise PromptKitError(
                    f"view bank shard {path} cannot be read ({error}): delete {self.folder} to build it again"
                ) from error
        return self._handles[shard]

    def row(self, image: int, view: int) -> dict[str, torch.Tensor]:
        if not 0 <= view < self.spec.stored_views:
            raise IndexError(f"the bank holds views 0..{self.spec.stored_views - 1} of each image, not {view}")
        shard, within = divmod(int(image), SHARD_IMAGES)
        handle = self._handle(shard)
        row = within * self.spec.stored_views + view
        if not self.spec.top_k:
            return {key: handle.get_slice(key)[row] for key, _ in self.spec.outputs}
        stored = {name: handle.get_slice(name)[row] for name in self.spec.tensors}
        classes = int(handle.metadata()["classes"])
        stored[LOGITS_KEY] = dense_logits(*(stored.pop(name) for name in TOP_K_KEYS), classes)
        return stored


class BankedTeacherViews(Dataset):
    """``PairedViews`` items plus the teacher's banked ``teacher_logits`` (and ``teacher_features``) of their view."""

    def __init__(self, views: PairedViews, bank: ViewBank) -> None:
        if len(views) != bank.spec.images:
            raise ValueError(f"{len(views)} images but a bank of {bank.spec.images}")
        self.views, self.bank = views, bank

    def set_epoch(self, epoch: int) -> None:
        self.views.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.views[index]
        view = max(0, int(item["params"]["view"]))  # -1: training without augmentation reads the whole image
        row = self.bank.row(index, view)
        item["teacher_logits"] = row[LOGITS_KEY].float()
        features = {key.removeprefix(FEATURE_PREFIX): value.float() for key, value in row.items() if key != LOGITS_KEY}
        if features:
            item["teacher_features"] = features
        return item


__all__ = [
    "BANK_FOLDER",
    "BankSpec",
    "BankedTeacherViews",
    "BuildReport",
    "ViewBank",
    "bank_folder",
    "dense_logits",
    "ensure_view_bank",
]
