#!/usr/bin/env bash
# Runs farmwatch's benchmarks on a synth scene and prints the figures for docs/performance.md.
# usage: bash bench/run_bench.sh [SIZE]   (default 5490, a quarter of a Sentinel-2 tile)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-5490}
BUILD=${BUILD:-build}
OUT=bench/out
FW=./$BUILD/cli/farmwatch
mkdir -p "$OUT"
if [ ! -f "$OUT/scene-$SIZE/date1.tif" ]; then
  /usr/bin/time -f "synth ${SIZE}x${SIZE}: %e s, peak %M KiB" \
    "$FW" --log-level warn synth --out "$OUT/scene-$SIZE" --size "$SIZE" --parcels 20000 --seed 1
fi
echo "== scheduler pass-through beside plain GDAL RasterIO (${SIZE}x${SIZE}, 6 bands UInt16)"
FW_BENCH_INPUT="$OUT/scene-$SIZE/date1.tif" ./$BUILD/bench/bench_scheduler \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_format=console | tee "$OUT/bench_scheduler.txt"
