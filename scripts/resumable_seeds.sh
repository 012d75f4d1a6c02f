# Sourced by the study scripts: run_seeds FOLDER "SEEDS" DISTILL_RUN_ARGS... runs `distill run` once per seed into
# FOLDER/seedS, skipping a finished run and resuming a killed one (one training at a time).
run_seeds() {
  local folder=$1 seeds=$2 s run
  shift 2
  for s in $seeds; do
    run=$folder/seed$s
    [ -f "$run/metrics.json" ] && continue
    local extra=()
    [ -d "$run" ] && extra=(--resume)
    distill run "$@" --seed "$s" --out "$run" "${extra[@]}"
  done
}
