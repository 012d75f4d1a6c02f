#!/usr/bin/env bash
# Issue 29's real-size measurements on this CPU (README "The diffusion teacher at its real size"): a random-weight
# SD 2.1 (and 1.5) folder from the published configs, then the teacher of `distill teacher --pretrained DIR` at
# 384x384 for two steps at its default batch (8) under scripts/rss_guard.py (peak RSS of the process tree; stopped
# above LIMIT GiB), then bench_sd_teacher's JSON rows (single step and DIFF's inversion; 384 or 512 a side).
# Resumable: a finished folder, teacher or row is kept. One heavy job at a time.
#   scripts/sd_real_size.sh [OUT (runs/sd-real-size)] [ARCHS ("sd21 sd15")] [ROWS ("single:384 inversion:384")]
#       [LIMIT (21)]
set -euo pipefail
out=${1:-runs/sd-real-size}
archs=${2:-sd21 sd15}
rows=${3:-single:384 inversion:384}
limit=${4:-21}
mkdir -p "$out"
for arch in $archs; do
  [ -d "$out/$arch" ] || python benchmarks/make_sd_folder.py --arch "$arch" --out "$out/$arch"
done
arch=${archs%% *}
teacher=$out/teacher-$arch-384
if [ ! -f "$teacher/metrics.json" ]; then
  rm -rf "$teacher"
  python scripts/rss_guard.py --limit-gib "$limit" --report "$out/teacher-$arch-384.json" -- \
    distill teacher --prompts prompts/camvid/label.yaml --pretrained "$out/$arch" --data camvid:../shared/data/camvid \
    --size 384x384 --steps 2 --pretrain-denoiser 0 --set val_images=2 --set panels=0 --out "$teacher" || true
fi
cat "$out/teacher-$arch-384.json"
for arch in $archs; do
  for row in $rows; do
    mode=${row%%:*} side=${row##*:}
    line=$out/bench-$arch-$mode-$side.json
    if [ ! -s "$line" ]; then
      python scripts/rss_guard.py --limit-gib "$limit" --report "$out/guard.jsonl" -- python benchmarks/bench_sd_teacher.py \
        --arch "$arch" --folder "$out/$arch" --size "${side}x${side}" --mode "$mode" --steps 1 > "$line.tmp" \
        && mv "$line.tmp" "$line"
    fi
    cat "$line" 2>/dev/null || echo "$arch $mode $side: no row (see $out/guard.jsonl)"
  done
done
