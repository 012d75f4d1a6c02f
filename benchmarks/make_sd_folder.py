"""A Stable Diffusion 1.5 or 2.1 diffusers folder at real size, with random weights, for measuring.

    python benchmarks/make_sd_folder.py --arch sd15|sd21 --out DIR [--dtype float16] [--tiny]

Real weights cannot be downloaded here, but the real architectures can be built from their
published configs (``benchmarks/sd_configs/ARCH/``, copied from the Hub repositories; sources in
``sd_configs/SOURCES.md``) and saved in the layout of a user's folder: model_index.json, unet/,
vae/, text_encoder/, tokenizer/, scheduler/. ``distill teacher --pretrained DIR`` and
``promptkit embed --encoder clip:DIR`` then load them exactly as they load a downloaded model, so
shapes, memory and time at full size are measurable (what the weights compute is not).

The tokenizer is CLIP's BPE at its real size (49,408 tokens): the real vocabulary when the
``open_clip_torch`` package (which ships it) is installed, else a generated one of the same size
(byte-level tokens, then merges of letter pairs, triples and quadruples). Prompts are padded to 77
tokens either way, so the cost is the same; `promptkit_sd_folder.json` records which was written.
``--tiny`` keeps every config's structure and shrinks its widths and depths (the tests' folder).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import shutil
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

CONFIGS = Path(__file__).resolve().parent / "sd_configs"
ARCHS = ("sd15", "sd21")
VOCAB_SIZE = 49408
MERGES = VOCAB_SIZE - 2 * 256 - 2  # CLIP: byte tokens, their word-final forms, merges, two specials
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def read_configs(arch: str) -> dict[str, dict[str, Any]]:
    """The published configs of ``arch`` (``unet``, ``vae``, ``text_encoder``, ``scheduler``, tokenizer files)."""
    if arch not in ARCHS:
        raise SystemExit(f"error: unknown --arch {arch!r}: use one of {', '.join(ARCHS)}")
    names = ("model_index", "unet", "vae", "text_encoder", "scheduler", "tokenizer_config", "special_tokens_map")
    return {name: json.loads((CONFIGS / arch / f"{name}.json").read_text()) for name in names}


def shrink(configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same architecture with small widths and depths: every block type, attention kind and scheduler kept."""
    configs = json.loads(json.dumps(configs))
    unet, vae, text = configs["unet"], configs["vae"], configs["text_encoder"]
    levels = len(unet["block_out_channels"])
    unet["block_out_channels"] = [32 * min(2, 1 + level // 2) for level in range(levels)]
    heads = unet["attention_head_dim"]  # diffusers' name; SD 2.x gives heads per level, SD 1.x channels per head
    unet["attention_head_dim"] = [2] * levels if isinstance(heads, list) else 16
    unet["layers_per_block"] = 1
    unet["cross_attention_dim"] = 64
    vae["block_out_channels"] = [32] * len(vae["block_out_channels"])
    vae["layers_per_block"] = 1
    text.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, projection_dim=32)
    return configs


def clip_merges() -> tuple[list[tuple[str, str]], str]:
    """CLIP's BPE merges (``open_clip_torch``'s file) or generated ones of the same count, and which."""
    try:
        from importlib.resources import files

        path = files("open_clip") / "bpe_simple_vocab_16e6.txt.gz"
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")[1 : MERGES + 1]
        return [tuple(line.split()) for line in lines], "CLIP's vocabulary (open_clip_torch's bpe_simple_vocab_16e6)"
    except (ImportError, FileNotFoundError, ModuleNotFoundError):
        pass
    merges: list[tuple[str, str]] = []
    letters = string.ascii_lowercase
    for length in (1, 2, 3):  # stems of this many letters (each one a token already), then one more letter
        for stem in map("".join, itertools.product(letters, repeat=length)):
            for last in letters:
                merges += [(stem, last), (stem, last + "</w>")]
                if len(merges) >= MERGES:
                    return merges[:MERGES], "a generated vocabulary of CLIP's size (open_clip_torch is not installed)"
    raise AssertionError("the generated merges fell short of CLIP's count")


def write_tokenizer(folder: Path, configs: dict[str, dict[str, Any]]) -> str:
    """vocab.json, merges.txt and the published tokenizer configs; returns where the vocabulary came from."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's and CLIP's byte alphabet

    merges, source = clip_merges()
    alphabet = list(bytes_to_unicode().values())
    tokens = alphabet + [char + "</w>" for char in alphabet] + ["".join(pair) for pair in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    if len(vocab) != VOCAB_SIZE:
        raise AssertionError(f"the vocabulary has {len(vocab)} tokens, not {VOCAB_SIZE}")
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(pair) for pair in merges) + "\n")
    for name in ("tokenizer_config", "special_tokens_map"):
        (folder / f"{name}.json").write_text(json.dumps(configs[name], indent=2) + "\n")
    return source


def make_sd_folder(arch: str, out: str | Path, dtype: str = "float16", tiny: bool = False, seed: int = 0) -> Path:
    """Write the diffusers folder of ``arch`` with random weights to ``out`` (built beside it, then renamed)."""
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    out = Path(out)
    if out.exists():
        raise SystemExit(f"error: {out} exists: pass a new folder (or delete it first)")
    configs = read_configs(arch)
    if tiny:
        configs = shrink(configs)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    seconds: dict[str, float] = {}
    parameters: dict[str, int] = {}
    try:
        torch.manual_seed(seed)
        builders = {
            "unet": lambda: UNet2DConditionModel.from_config(configs["unet"]),
            "vae": lambda: AutoencoderKL.from_config(configs["vae"]),
            "text_encoder": lambda: CLIPTextModel(CLIPTextConfig(**configs["text_encoder"])),
        }
        for part, build in builders.items():  # one at a time: the UNet alone is 3.4 GB in float32
            start = time.perf_counter()
            model = build()
            parameters[part] = sum(p.numel() for p in model.parameters())
            model.to(DTYPES[dtype]).save_pretrained(work / part, safe_serialization=True)
            del model
            seconds[part] = round(time.perf_counter() - start, 1)
        scheduler_class = getattr(diffusers, configs["scheduler"]["_class_name"])
        scheduler_class.from_config(configs["scheduler"]).save_pretrained(work / "scheduler")
        vocabulary = write_tokenizer(work / "tokenizer", configs)
        index = {**configs["model_index"], "safety_checker": [None, None], "feature_extractor": [None, None]}
        (work / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
        record = {
            "arch": arch,
            "tiny": tiny,
            "weights": f"random (torch seed {seed}), {dtype}",
            "vocabulary": vocabulary,
            "parameters": parameters,
            "build_seconds": seconds,
            "configs": str(CONFIGS / arch),
        }
        (work / "promptkit_sd_folder.json").write_text(json.dumps(record, indent=2) + "\n")
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, choices=ARCHS)
    parser.add_argument("--out", required=True, help="a new folder")
    parser.add_argument("--dtype", default="float16", choices=sorted(DTYPES), help="of the saved weights")
    parser.add_argument("--tiny", action="store_true", help="the same structure at small widths (tests)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = make_sd_folder(args.arch, args.out, args.dtype, args.tiny, args.seed)
    record = json.loads((folder / "promptkit_sd_folder.json").read_text())
    total = sum(record["parameters"].values())
    print(f"wrote {folder}: {args.arch}, {total / 1e6:.0f}M parameters {record['parameters']}; {record['vocabulary']}")


if __name__ == "__main__":
    main(sys.argv[1:])
