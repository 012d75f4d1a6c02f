#!/usr/bin/env bash
# The view-bank study of README "A view bank": the CamVid KD student (configs/camvid_kd_student.yaml, `dist`)
# from the teacher's banked views (V = 16, 4, 1; float32, the default, and float16; top-3 and top-1 logits),
# the live teacher on the same 16 views, the whole-image cache, and no KD; then one table of val mIoU, gain over
# no KD paired by seed, seconds per step and teacher forwards. Every run resumes: run it again after a kill
# (finished runs are skipped). One training at a time (2 cores): about 3-4 minutes a banked or no-KD run, 8
# a live one, plus each bank's build once (about 4-6 minutes for 16 views), after the teacher (20-37 minutes).
#   scripts/view_bank_camvid.sh [OUT (runs/view-bank)] [SEEDS ("0 1 2 3 4")]
#       [ROWS ("none v16 live16 v16f16 v4 v1 v16top3 image")]
set -euo pipefail
# shellcheck source=scripts/resumable_seeds.sh
. "$(dirname "$0")/resumable_seeds.sh"
out=${1:-runs/view-bank}
seeds=${2:-0 1 2 3 4}
rows=${3:-none v16 live16 v16f16 v4 v1 v16top3 image}
teacher=$out/teacher
config=configs/camvid_kd_student.yaml

[ -f "$teacher/metrics.json" ] || distill teacher --model efficientnet_lite2 --data camvid:../shared/data/camvid \
  --out "$teacher"

for row in $rows; do
  bank=(--teacher "$teacher" --kd dist --set teacher_cache=views)
  case $row in
    none) args=(--kd none) ;;
    v16) args=("${bank[@]}" --set teacher_views=16) ;;  # the default bank: float32
    v4) args=("${bank[@]}" --set teacher_views=4) ;;
    v1) args=("${bank[@]}" --set teacher_views=1) ;;
    v16f16) args=("${bank[@]}" --set teacher_views=16 --set view_bank_dtype=float16) ;;
    v16top3) args=("${bank[@]}" --set teacher_views=16 --set view_bank_top_k=3) ;;
    v16top1) args=("${bank[@]}" --set teacher_views=16 --set view_bank_top_k=1) ;;
    live16) args=(--teacher "$teacher" --kd dist --set teacher_cache=live --set teacher_views=16) ;;
    live) args=(--teacher "$teacher" --kd dist --set teacher_cache=live --set teacher_views=0) ;;
    image) args=(--teacher "$teacher" --kd dist --set teacher_cache=image --set teacher_views=0) ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  run_seeds "$out/$row" "$seeds" --config $config "${args[@]}"
done

# shellcheck disable=SC2086
python scripts/view_bank_table.py "$out" $rows
