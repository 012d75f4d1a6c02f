"""TeacherFolder: the one reader of a teacher folder, whatever kind of teacher it holds.

Two kinds of folder teach:

- **prompt** (``distill teacher --prompts``, a diffusion teacher or an embedding-classified
  network): ``teacher_config.json``, ``teacher.safetensors``, ``class_embeddings.safetensors``,
  ``config.yaml`` (its training size), ``metrics.json``.
- **network** (``distill teacher --model`` or any finished ``distill run``): ``network.json``
  (network name, class names, input size), ``checkpoints/best/model.safetensors``,
  ``config.yaml``, ``metrics.json``. Run folders written before ``network.json`` existed are read
  from their ``config.yaml`` and the class names in ``metrics.json``.

Everything that needs a teacher (``distill run``, the output cache, ``distill eval``, compare)
goes through :class:`TeacherFolder`, so a folder is interpreted one way only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_text
from prompt_kit.readers import read_json, read_safetensors, read_yaml
from teacher.checkpoint import CONFIG_NAME, WEIGHTS_NAME
from teacher.interface import Teacher, freeze

EMBEDDINGS_NAME = "class_embeddings.safetensors"
NETWORK_NAME = "network.json"
NETWORK_WEIGHTS = Path("checkpoints") / "best" / "model.safetensors"
DEFAULT_DIFFUSION_SIZE = (96, 128)  # TeacherTrainingConfig's default, for folders whose config.yaml lacks it

TeacherKind = Literal["prompt", "network"]


def write_network_descriptor(folder: str | Path, network: str, class_names: list[str], image_size) -> Path:
    """``network.json``: what makes a folder of trained network weights readable as a teacher."""
    record = {"network": network, "class_names": list(class_names), "image_size": [int(s) for s in image_size]}
    return atomic_write_text(Path(folder) / NETWORK_NAME, json.dumps(record, indent=2) + "\n")


class TeacherFolder:
    """A folder that holds a trained teacher; a folder that holds none is a one-line error."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if (self.path / CONFIG_NAME).is_file():
            self.kind: TeacherKind = "prompt"
        elif (self.path / NETWORK_NAME).is_file() or (self.path / NETWORK_WEIGHTS).is_file():
            self.kind = "network"
        else:
            raise PromptKitError(
                f"{self.path} is not a teacher folder (no {CONFIG_NAME}, {NETWORK_NAME} or {NETWORK_WEIGHTS}): "
                "train one with `distill teacher --out DIR`, or pass a finished `distill run` folder"
            )

    # -- what the folder says about its teacher -------------------------------------------------
    def _read_yaml(self, name: str) -> dict[str, Any]:
        path = self.path / name
        if not path.is_file():
            return {}
        what = f"teacher folder's {name}"
        values = read_json(path, what) if path.suffix == ".json" else read_yaml(path, what)
        return values if isinstance(values, dict) else {}

    @property
    def training_config(self) -> dict[str, Any]:
        """The resolved config the teacher was trained with (``config.yaml``; empty if absent)."""
        return self._read_yaml("config.yaml")

    @property
    def metrics(self) -> dict[str, Any] | None:
        """``metrics.json`` (written last by every trainer), or None while the teacher is unfinished."""
        return self._read_yaml("metrics.json") or None

    @property
    def finished(self) -> bool:
        return (self.path / "metrics.json").is_file()

    @property
    def network_record(self) -> dict[str, Any]:
        """Network name, class names and input size of a network teacher (``network.json`` or a legacy run)."""
        if self.kind != "network":
            raise PromptKitError(f"{self.path} holds a diffusion teacher, not a network")
        record = self._read_yaml(NETWORK_NAME)
        if record:
            missing = [key for key in ("network", "class_names", "image_size") if key not in record]
            if missing:
                raise PromptKitError(f"{self.path / NETWORK_NAME} lacks {', '.join(missing)}: the folder is damaged")
            return record
        config, metrics = self.training_config, self.metrics or {}
        if "student" not in config or "per_class_iou" not in metrics:
            raise PromptKitError(
                f"{self.path} has weights but no {NETWORK_NAME}, and its config.yaml/metrics.json do not name the "
                "network and its classes: pass a finished `distill run` or `distill teacher --model` folder"
            )
        return {
            "network": config["student"],
            "class_names": list(metrics["per_class_iou"]),
            "image_size": config.get("student_size", list(DEFAULT_DIFFUSION_SIZE)),
        }

    @property
    def class_names(self) -> list[str]:
        if self.kind == "network":
            return list(self.network_record["class_names"])
        return self.class_embeddings().class_names

    @property
    def image_size(self) -> tuple[int, int]:
        """The size the teacher was trained (and is evaluated) at."""
        if self.kind == "network":
            size = self.network_record["image_size"]
        else:
            size = self.training_config.get("image_size", DEFAULT_DIFFUSION_SIZE)
        try:
            height, width = (int(side) for side in size)
        except (TypeError, ValueError) as exc:
            raise PromptKitError(f"{self.path}: image_size {size!r} is not [height, width]") from exc
        if height < 1 or width < 1:
            raise PromptKitError(f"{self.path}: image_size {size!r} must be positive")
        return height, width

    def class_embeddings(self) -> ClassEmbeddings:
        """The embeddings a prompt-conditioned teacher was trained with."""
        if self.kind != "prompt":
            raise PromptKitError(f"{self.path} holds a network teacher: it takes no class embeddings")
        return ClassEmbeddings.load(self.path / EMBEDDINGS_NAME)

    def weight_files(self) -> list[Path]:
        if self.kind == "prompt":
            return [self.path / CONFIG_NAME, self.path / WEIGHTS_NAME]
        return [path for path in (self.path / NETWORK_NAME, self.path / NETWORK_WEIGHTS) if path.is_file()]

    def identity(self, embeddings: ClassEmbeddings | None = None) -> str:
        """Changes whenever the teacher's outputs could: its weights and config, and its class embeddings."""
        digest = hashlib.sha256(self.kind.encode())
        for path in self.weight_files():
            digest.update(path.read_bytes())
        if embeddings is not None:
            for tensor in (embeddings.tokens, embeddings.attention_mask, embeddings.pooled):
                digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
        return digest.hexdigest()

    # -- the teacher itself ---------------------------------------------------------------------
    def embeddings_for(self, prompts: str | Path | None) -> ClassEmbeddings:
        """The teacher's own embeddings, or those of another prompt set of the same classes."""
        embeddings = self.class_embeddings()
        if not prompts:
            return embeddings
        from prompt_kit.prompt_set import load_prompt_set

        prompt_set = load_prompt_set(prompts)
        if prompt_set.class_names != embeddings.class_names:
            raise PromptKitError(
                f"prompt set {prompts} names classes {prompt_set.class_names[:3]}... but the teacher in "
                f"{self.path} was trained for {embeddings.class_names[:3]}...: use a set of the teacher's taxonomy"
            )
        if prompt_set.content_hash() == embeddings.prompt_set_hash:
            return embeddings
        from prompt_kit.embedding_cache import EmbeddingCache
        from prompt_kit.encoders import create_encoder, encode_prompt_set

        return encode_prompt_set(prompt_set, create_encoder(embeddings.encoder), EmbeddingCache())

    def load(self, prompts: str | Path | None = None) -> Teacher:
        """The frozen teacher; ``prompts`` conditions a prompt-conditioned teacher on another prompt set."""
        if self.kind == "prompt":
            from teacher.checkpoint import load_teacher
            from teacher.prompt_conditioned import PromptConditionedTeacher

            embeddings = self.embeddings_for(prompts)
            model = load_teacher(self.path)
            return freeze(PromptConditionedTeacher(model, embeddings, identity=self.identity(embeddings)))
        if prompts:
            raise PromptKitError(f"{self.path} holds a network teacher, which takes no prompts: drop --prompts")
        return freeze(self._load_network())

    def _load_network(self) -> Teacher:
        from networks import create_network, list_networks
        from teacher.network import NetworkTeacher

        record = self.network_record
        name, class_names = record["network"], list(record["class_names"])
        if name not in list_networks():
            raise PromptKitError(f"{self.path}: unknown network {name!r} (known: {', '.join(list_networks())})")
        weights = self.path / NETWORK_WEIGHTS
        if not weights.is_file():
            raise PromptKitError(f"{self.path} has no {NETWORK_WEIGHTS}: the run did not finish its first evaluation")
        network = create_network(name, len(class_names))
        try:
            network.load_state_dict(read_safetensors(weights, "network teacher weights"))
        except RuntimeError as exc:
            raise PromptKitError(
                f"{weights} does not fit a {name} network for {len(class_names)} classes: {str(exc).splitlines()[0]}"
            ) from exc
        return NetworkTeacher(network, class_names, name=name, identity=self.identity())


__all__ = ["EMBEDDINGS_NAME", "NETWORK_NAME", "NETWORK_WEIGHTS", "TeacherFolder", "write_network_descriptor"]
