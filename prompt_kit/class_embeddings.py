"""ClassEmbeddings: the tensors a teacher is conditioned on, one entry per class, in taxonomy order.

Like diffusers' ``prompt_embeds``: anything that can produce these tensors can drive a teacher,
and scores are computed on exactly what the teacher sees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_save

from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_bytes
from prompt_kit.readers import read_safetensors_metadata

_METADATA_KEY = "promptkit"


@dataclass
class ClassEmbeddings:
    """``tokens [C, L, D]``, ``attention_mask [C, L]``, ``pooled [C, D]`` plus where they came from."""

    tokens: torch.Tensor
    attention_mask: torch.Tensor
    pooled: torch.Tensor
    class_names: list[str]
    encoder: str
    prompt_set_hash: str = ""
    style: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        classes, length, _ = self.tokens.shape
        if self.attention_mask.shape != (classes, length):
            raise ValueError(f"attention_mask {tuple(self.attention_mask.shape)} does not match tokens [C, L]")
        if self.pooled.shape[0] != classes or len(self.class_names) != classes:
            raise ValueError("pooled, tokens and class_names must have one entry per class")

    @property
    def num_classes(self) -> int:
        return self.tokens.shape[0]

    def to(self, device: torch.device | str) -> ClassEmbeddings:
        """The same embeddings with their tensors on ``device``."""
        return ClassEmbeddings(
            tokens=self.tokens.to(device),
            attention_mask=self.attention_mask.to(device),
            pooled=self.pooled.to(device),
            class_names=self.class_names,
            encoder=self.encoder,
            prompt_set_hash=self.prompt_set_hash,
            style=self.style,
            extra=self.extra,
        )

    def token_mean(self) -> torch.Tensor:
        """Masked mean of the token sequence per class, ``[C, D]``: the token-level summary."""
        mask = self.attention_mask.to(self.tokens.dtype).unsqueeze(-1)
        return (self.tokens * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def metadata(self) -> dict[str, object]:
        return {
            "encoder": self.encoder,
            "prompt_set_hash": self.prompt_set_hash,
            "style": self.style,
            "class_names": self.class_names,
            **self.extra,
        }

    def save(self, path: str | Path) -> Path:
        """Write safetensors (tensors + JSON metadata) atomically."""
        tensors = {
            "tokens": self.tokens.detach().cpu().contiguous(),
            "attention_mask": self.attention_mask.detach().cpu().to(torch.int64).contiguous(),
            "pooled": self.pooled.detach().cpu().contiguous(),
        }
        data = safetensors_save(tensors, metadata={_METADATA_KEY: json.dumps(self.metadata())})
        return atomic_write_bytes(path, data)

    @classmethod
    def load(cls, path: str | Path) -> ClassEmbeddings:
        path = Path(path)
        metadata, tensors = read_safetensors_metadata(path, "class embeddings", ("tokens", "attention_mask", "pooled"))
        try:
            meta = json.loads(metadata[_METADATA_KEY])
            if not isinstance(meta, dict) or not isinstance(meta["class_names"], list) or "encoder" not in meta:
                raise ValueError("no class names or encoder")
        except (KeyError, ValueError, TypeError) as exc:
            raise PromptKitError(f"{path} is not a promptkit class-embeddings file (its metadata is missing)") from exc
        known = {"encoder", "prompt_set_hash", "style", "class_names"}
        try:
            return cls(
                **tensors,
                class_names=[str(name) for name in meta["class_names"]],
                encoder=str(meta["encoder"]),
                prompt_set_hash=str(meta.get("prompt_set_hash", "")),
                style=str(meta.get("style", "")),
                extra={key: value for key, value in meta.items() if key not in known},
            )
        except ValueError as exc:  # tensors of the wrong shapes: __post_init__
            raise PromptKitError(f"{path} is damaged: {exc}") from exc
