#!/usr/bin/env bash
# Issue 10 benchmark: one pipeline on the 5490 x 5490 synth pair with 20,000 parcels (the default
# steps without zones: four indices per date, change with sub-pixel cover, per-parcel indicators,
# patches with chips, report), run on one machine, then as 1, 2 and 4 shards per phase plus the
# merge, every job one after the other on this machine (2 threads each). Prints per shard count:
# the sum of the shard jobs' times, the slowest shard of each phase summed over the phases (the
# wall time with one node per shard), the merge, the overhead against the one-machine run, and
# per phase the shard times (the per-tile costs of docs/scale-out.md's node model). The merged
# rasters are compared with the one-machine run's.
# usage: bash bench/run_shards_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_scene
R=$W/shards
rm -rf "$R"
mkdir -p "$R"
cat > "$R/p.yaml" <<YAML
inputs:
  before: {files: [$PWD/$S/date1.tif], mask: $PWD/$S/date1_scl.tif, date: 2024-05-01}
  after: {files: [$PWD/$S/date2.tif], mask: $PWD/$S/date2_scl.tif, date: 2024-09-01}
  parcels: {file: $PWD/$S/parcels.gpkg}
outputs: {dir: $PWD/$R/out}
YAML
secs() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
FWQ=("$FW" --log-level warn --threads 2)
one=$(secs "${FWQ[@]}" run "$R/p.yaml" --force)
mv "$R/out" "$R/one"
phases=$("${FWQ[@]}" slurm "$R/p.yaml" --shards 1 --dry-run | grep -c '^#SBATCH --array')
echo "one machine: ${one} s; phases: $phases"
for n in 1 2 4; do
  rm -rf "$R/run$n" "$R/out"
  sum=0
  wall=0
  detail=""
  for k in $(seq "$phases"); do
    slow=0
    per=""
    for i in $(seq 0 $((n - 1))); do
      t=$(secs "${FWQ[@]}" run "$R/p.yaml" --shard "$i/$n" --phase "$k" --run-dir "$R/run$n")
      sum=$(echo "$sum + $t" | bc)
      slow=$(echo "if ($t > $slow) $t else $slow" | bc)
      per="$per $t"
    done
    pass=$(sed -n 's/.*"pass": "\(.*\)".*/\1/p' "$R/run$n/phase-$k/0/shard.json")
    detail="$detail\n  phase $k ($pass):$per"
    wall=$(echo "$wall + $slow" | bc)
  done
  merge=$(secs "${FWQ[@]}" merge "$R/p.yaml" --run-dir "$R/run$n" --shards "$n")
  for f in change_class.tif change_cover.tif indices/after/ndvi.tif parcels.csv patches.geojson; do
    cmp -s "$R/one/$f" "$R/out/$f" || echo "  $f DIFFERS from the one-machine run's"
  done
  total=$(echo "$sum + $merge" | bc)
  echo "shards $n: shard jobs ${sum} s, slowest per phase ${wall} s, merge ${merge} s;" \
    "all jobs $(echo "scale=2; $total / $one" | bc)x one machine;" \
    "wall with $n nodes $(echo "$wall + $merge" | bc) s ($(echo "scale=2; $one / ($wall + $merge)" | bc)x)"
  printf "%b\n" "$detail"
done
