#!/usr/bin/env bash
# The feature terms of docs/results.md "Distillation at named layers" from the view bank against the whole-image cache:
# CWD at the decoder (weight 3) and the hint at the encoder (weight 0.1), each with teacher_cache=views (the default,
# 16 views) and teacher_cache=image, beside no KD, 3 seeds on val; then one table with each seed's gain over no KD
# and each banked row's gap to its whole-image row, paired by seed. Every run resumes: run it again after a kill.
# One training at a time (2 cores): the teacher (20-37 minutes) once, each bank's build once (6-8 minutes for 16
# views), then about 3-4 minutes a run.
#   [TEACHER_ARGS="--steps 1000"] scripts/view_bank_features.sh [OUT (runs/view-bank-features)] [SEEDS ("0 1 2")] [ROWS]
set -euo pipefail
# shellcheck source=scripts/resumable_seeds.sh
. "$(dirname "$0")/resumable_seeds.sh"
out=${1:-runs/view-bank-features}
seeds=${2:-0 1 2}
rows=${3:-none cwd-views cwd-image hint-views hint-image}
teacher=$out/teacher

# shellcheck disable=SC2086
[ -f "$teacher/metrics.json" ] || distill teacher --model efficientnet_lite2 --data camvid:../shared/data/camvid \
  --out "$teacher" ${TEACHER_ARGS:-}

for row in $rows; do
  case $row in
    none) args=(--config configs/camvid_kd_student.yaml --kd none) ;;
    cwd-*) args=(--config configs/camvid_feature_kd/cwd_decoder.yaml --teacher "$teacher") ;;
    hint-*) args=(--config configs/camvid_feature_kd/hint_encoder.yaml --teacher "$teacher") ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  case $row in
    *-views) args+=(--set teacher_cache=views --set teacher_views=16) ;;
    *-image) args+=(--set teacher_cache=image --set teacher_views=0) ;;
  esac
  run_seeds "$out/$row" "$seeds" "${args[@]}"
done

# shellcheck disable=SC2086
python scripts/view_bank_table.py "$out" $rows
