#!/usr/bin/env bash
# Runs a sharded farmwatch pipeline on Kubernetes: one Indexed Job per phase, each after the
# previous one completed (Kubernetes has no afterok), then the merge Job.
# usage: RUN=2026-11-29 IMAGE=registry/farmwatch:0.1.0 SHARDS=16 PHASES=6 bash run-phases.sh
# (PHASES: as `farmwatch slurm pipeline.yaml --shards N --dry-run` counts them.)
set -euo pipefail
: "${RUN:?}" "${IMAGE:?}" "${SHARDS:?}" "${PHASES:?}"
here=$(cd "$(dirname "$0")" && pwd)
render() {  # $1: document index (0 phase, 1 merge), $2: phase
  awk -v doc="$1" 'BEGIN{n=0} /^---$/{n++; next} n==doc' "$here/farmwatch-phase-job.yaml" |
    sed -e "s/PHASE/$2/g" -e "s/SHARDS/$SHARDS/g" -e "s|IMAGE|$IMAGE|g" -e "s/RUN/$RUN/g"
}
for k in $(seq 1 "$PHASES"); do
  render 0 "$k" | kubectl apply -f -
  kubectl wait --for=condition=complete --timeout=24h "job/farmwatch-$RUN-phase-$k"
done
render 1 0 | kubectl apply -f -
kubectl wait --for=condition=complete --timeout=24h "job/farmwatch-$RUN-merge"
