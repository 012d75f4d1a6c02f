"""What the Stable Diffusion teacher costs at its real size, before a GPU user pays for it.

    python benchmarks/bench_sd_teacher.py --arch sd15|sd21 [--size 384x384] [--folder DIR] [--batch-size 1]
        [--prompts FILE] [--steps 2] [--gpu h100] [--mode single|inversion]

Builds (or reads, ``--folder``) a real-size diffusers folder (``benchmarks/make_sd_folder.py``:
the published architecture, random weights), embeds a prompt set (``--prompts``, CamVid's label
set by default) with the folder's own text encoder, 77 tokens a class, as ``promptkit embed
--encoder clip:DIR`` does, and builds the teacher as ``distill teacher --pretrained DIR`` does
(frozen UNet and VAE; trained text adapter, FPN head and class projection). Prints one JSON
line: parameters trained and frozen; seconds to embed, to load, per image to extract (a forward
without gradients) and per train step (forward, cross-entropy, backward, AdamW); peak memory (CPU
RSS, or CUDA's peak allocation); the bytes of one view's features; the FLOPs of one extraction
and one train step (``torch.utils.flop_counter``), and from them the hours of a DIFF-style run
(40k iterations at batch 2) at a named GPU's dense bf16 peak, a lower bound (real runs reach a
fraction of peak). ``--mode single``: one noisy UNet pass (trained text adapter); ``--mode inversion``:
DIFF's extraction (``model.extraction: inversion``, teacher/inversion.py: 34 UNet passes of DDIM
inversion, 12 ResNet and 9 transformer maps kept at 9 of them, one bottleneck per stride), which
also reports the bytes of one view's kept features (what a bank would store to skip the UNet).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

# dense bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s)
GPU_PEAK_TFLOPS = {"a100": 312.0, "h100": 989.0, "l40s": 362.0, "rtx4090": 165.0}
DIFF_ITERATIONS, DIFF_BATCH = 40_000, 2


def _make_sd_folder():
    path = Path(__file__).resolve().parent / "make_sd_folder.py"
    spec = importlib.util.spec_from_file_location("make_sd_folder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    scale = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30


def flops_of(step) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def timed(step, device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def measure(args, folder: Path) -> dict:
    from prompt_kit.encoders import create_encoder, encode_prompt_set
    from prompt_kit.prompt_set import load_prompt_set
    from prompt_kit.resources import prompts_dir
    from teacher.checkpoint import build_teacher
    from teacher.config import DiffusionTeacherConfig

    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    height, width = args.size
    start = time.perf_counter()
    prompts = load_prompt_set(args.prompts or prompts_dir() / "camvid" / "label.yaml")
    embeddings = encode_prompt_set(prompts, create_encoder(f"clip:{folder}"))
    embed_seconds = time.perf_counter() - start
    start = time.perf_counter()
    config = DiffusionTeacherConfig(
        num_classes=embeddings.num_classes,
        embedding_dim=embeddings.tokens.shape[-1],
        pretrained=str(folder),
        extraction="inversion" if args.mode == "inversion" else "single_step",
    )
    teacher = build_teacher(config).to(device)
    if device.type == "cuda":  # the frozen parts in half precision, as a GPU user runs them
        teacher.unet.to(torch.float16)
        teacher.vae.to(torch.float16)
    load_seconds = time.perf_counter() - start
    trained = sum(p.numel() for p in teacher.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in teacher.parameters() if not p.requires_grad)
    images = torch.rand(args.batch_size, 3, height, width, device=device)
    labels = torch.randint(0, embeddings.num_classes, (args.batch_size, height, width), device=device)
    optimizer = torch.optim.AdamW([p for p in teacher.parameters() if p.requires_grad], lr=1e-4)

    def extract():
        teacher.eval()
        with torch.no_grad():
            return teacher(images, embeddings, return_features=True)

    def train_step():
        teacher.train()
        logits = teacher(images, embeddings)
        logits = F.interpolate(logits.float(), size=(height, width), mode="bilinear", align_corners=False)
        F.cross_entropy(logits, labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    _, named = extract()
    view_bytes = sum(value[0].numel() * 2 for value in named.values())  # float16, one view
    extractor_bytes = None
    if teacher.inversion is not None:
        extractor_bytes = teacher.inversion.bytes_per_view((height // 8, width // 8))
    extract_seconds = timed(extract, device, args.steps) / args.batch_size
    step_seconds = timed(train_step, device, args.steps)
    extract_flops = flops_of(extract) / args.batch_size
    step_flops = flops_of(train_step)
    peak = GPU_PEAK_TFLOPS[args.gpu] * 1e12
    run_flops = step_flops / args.batch_size * DIFF_BATCH * DIFF_ITERATIONS
    return {
        "arch": args.arch,
        "size": f"{height}x{width}",
        "mode": args.mode,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "batch_size": args.batch_size,
        "classes": embeddings.num_classes,
        "tokens": int(embeddings.tokens.shape[0] * embeddings.tokens.shape[1]),
        "parameters_trained": trained,
        "parameters_frozen": frozen,
        "seconds_to_embed": round(embed_seconds, 1),
        "seconds_to_load": round(load_seconds, 1),
        "extract_seconds_per_image": round(extract_seconds, 2),
        "train_step_seconds": round(step_seconds, 2),
        "peak_memory_gib": round(peak_memory_gib(device), 2),
        "feature_bytes_per_view": view_bytes,
        "extractor_bytes_per_view": extractor_bytes,
        "extract_gflops_per_image": round(extract_flops / 1e9, 1),
        "train_step_gflops": round(step_flops / 1e9, 1),
        "diff_run_hours_at_peak": {args.gpu: round(run_flops / peak / 3600, 2)},
        "torch": torch.__version__,
    }


def parse_size(value: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in value.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--size must be HEIGHTxWIDTH, got {value!r}") from error
    return height, width


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, choices=("sd15", "sd21"))
    parser.add_argument("--size", type=parse_size, default=(384, 384))
    parser.add_argument("--folder", type=Path, help="an SD folder already written (default: build one in a temp dir)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--mode", default="single", choices=("single", "inversion"), help="the teacher's extraction")
    parser.add_argument("--prompts", type=Path, help="a prompt set (default: prompts/camvid/label.yaml, 11 classes)")
    parser.add_argument("--steps", type=int, default=2, help="timed repeats (the fastest is kept)")
    parser.add_argument("--gpu", default="h100", choices=sorted(GPU_PEAK_TFLOPS), help="for the predicted hours")
    parser.add_argument("--cpu", action="store_true", help="measure on the CPU even when CUDA is there")
    parser.add_argument("--tiny", action="store_true", help="a --tiny folder (a quick check of this script)")
    args = parser.parse_args(argv)
    if args.folder:
        print(json.dumps(measure(args, args.folder)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = _make_sd_folder().make_sd_folder(args.arch, Path(tmp) / args.arch, tiny=args.tiny)
        print(json.dumps(measure(args, folder)))


if __name__ == "__main__":
    main(sys.argv[1:])
