"""Per-text embedding cache on disk, keyed by (encoder identity, text): a re-score loads no model."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import platformdirs
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_save

from prompt_kit.files import atomic_write_bytes
from prompt_kit.text_embedding import TextEmbedding

logger = logging.getLogger(__name__)


def default_embedding_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("promptkit")) / "embeddings"


class EmbeddingCache:
    """One small safetensors file per (encoder, text) under ``root/<encoder hash>/``."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else default_embedding_cache_dir()

    def _path(self, identity: str, text: str) -> Path:
        encoder_key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        text_key = hashlib.sha256(text.encode()).hexdigest()
        return self.root / encoder_key / text_key[:2] / f"{text_key}.safetensors"

    def get_many(self, identity: str, texts: list[str]) -> dict[str, TextEmbedding]:
        found = {}
        for text in texts:
            path = self._path(identity, text)
            if not path.is_file():
                continue
            try:
                tensors = load_file(str(path))
                found[text] = TextEmbedding(tensors["tokens"], tensors["mask"], tensors["pooled"])
            except (SafetensorError, OSError, KeyError, ValueError) as exc:
                logger.warning("dropping a damaged embedding-cache entry %s (%s): it is computed again", path, exc)
                path.unlink(missing_ok=True)
        return found

    def put_many(self, identity: str, items: dict[str, TextEmbedding]) -> None:
        for text, item in items.items():
            tensors = {
                "tokens": item.tokens.contiguous(),
                "mask": item.mask.contiguous(),
                "pooled": item.pooled.contiguous(),
            }
            atomic_write_bytes(self._path(identity, text), safetensors_save(tensors), durable=False)

    def clear(self) -> None:
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)
