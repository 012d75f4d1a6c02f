#!/usr/bin/env bash
# The GPU rows of README "The Stable Diffusion teacher at real size" and the CUDA-only tests, in one go, for a
# machine with a GPU (this project's CPU machines have none). Resumable: the SD folders are kept in OUT.
#   scripts/gpu_check.sh [OUT (runs/gpu-check)]
set -euo pipefail
out=${1:-runs/gpu-check}
mkdir -p "$out"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this script is for a GPU')"
python -m pytest -q -m cuda tests/ | tee "$out/tests.txt"
for arch in sd15 sd21; do
  [ -d "$out/$arch" ] || python benchmarks/make_sd_folder.py --arch "$arch" --out "$out/$arch"
  for size in 384x384 512x512; do
    python benchmarks/bench_sd_teacher.py --arch "$arch" --folder "$out/$arch" --size "$size" --batch-size 2 \
      | tee -a "$out/bench_sd_teacher.jsonl"
  done
done
