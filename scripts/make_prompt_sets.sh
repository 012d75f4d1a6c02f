#!/usr/bin/env bash
# Regenerates the shipped prompt sets prompts/<dataset>/<style>.yaml from prompts/concepts.yaml.
# Orthogonal words are chosen by the measured selection under the default encoder (minilm).
set -euo pipefail
cd "$(dirname "$0")/.."
for dataset in camvid kitti11 cityscapes; do
  for style in $(promptkit styles --names); do
    promptkit generate --dataset "$dataset" --style "$style" --out "prompts/$dataset/$style.yaml" --overwrite
  done
done
