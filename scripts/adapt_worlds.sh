#!/usr/bin/env bash
# The adaptation study of docs/results.md "Adapting to a new domain": for each synthetic world (seed), a
# source-only teacher and student, then `distill adapt` with replay under every setting on both
# shifted domains (target, night), then `distill adapt-summary` per domain. Every step resumes:
# run it again after a kill. One CPU run per world takes about 45 minutes.
#   scripts/adapt_worlds.sh [OUT (runs/adapt-worlds)] [WORLDS ("0 1 2")]
set -euo pipefail
out=${1:-runs/adapt-worlds}
worlds=${2:-0 1 2}
size=96x128

for k in $worlds; do
  w=$out/w$k
  data=synthetic:size=$size,seed=$k
  [ -f "$w/teacher/metrics.json" ] || distill teacher --model efficientnet_lite2 --data "$data" --size $size \
    --steps 1000 --set seed="$k" --out "$w/teacher"
  [ -f "$w/student/metrics.json" ] || distill run --student efficientnet_lite0 --set student_pretrained=imagenet \
    --kd none --data "$data" --student-size $size --steps 600 --set eval_every=600 --set seed="$k" --out "$w/student"
  for domain in target night; do
    for setting in "asc" "asc-guard:asc:min_kept_share=0.5" "asc-img:asc:min_image_share=0.5" "desc:desc" \
      "random:random" "random-guard:random:min_kept_share=0.5" "random-img:random:min_image_share=0.5"; do
      IFS=: read -r name order extra <<<"$setting"
      args=(--set replay=true --set seed="$k")
      [ -n "$extra" ] && args+=(--set "$extra")
      distill adapt --teacher "$w/teacher" --student "$w/student" --source "$data" \
        --target "$data,domain=$domain" --buckets 4 --order "${order:-$name}" --out "$w/$domain-$name" "${args[@]}"
    done
  done
done

for domain in target night; do
  echo "## domain=$domain"
  # shellcheck disable=SC2046
  distill adapt-summary $(for name in asc asc-guard asc-img desc random random-guard random-img; do
    for k in $worlds; do echo "$out/w$k/$domain-$name"; done
  done)
done
