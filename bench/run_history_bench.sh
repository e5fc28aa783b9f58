#!/usr/bin/env bash
# Issue 8 benchmark: the history store's update for 50,000 patches and 100,000 parcels per run
# (bench/bench_history.cpp), on a GeoPackage and on PostgreSQL + PostGIS (FW_TEST_PG, or the
# local cluster scripts/start_postgres.sh starts). Run 1 records every patch as a new case; run 2
# continues 45,000 of them, resolves 5,000 and opens 5,000 new ones. Prints seconds per run and
# peak memory.
# usage: bash bench/run_history_bench.sh [patches] [parcels]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD:-build}/bench/bench_history
N=${1:-50000}
P=${2:-100000}
W=$(mktemp -d /tmp/fw-history-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
echo "== GeoPackage"
"$BIN" --store "$W/store.gpkg" --patches "$N" --parcels "$P" --dir "$W"
ls -l "$W/store.gpkg" | awk '{printf "store size: %.1f MiB\n", $5/1048576}'
if [ -z "${FW_TEST_PG:-}" ]; then
  eval "$(bash scripts/start_postgres.sh)" || { echo "no PostgreSQL: PostGIS part skipped"; exit 0; }
fi
SCHEMA=fw_bench_$$
ogrinfo -q "$FW_TEST_PG" -sql "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
ogrinfo -q "$FW_TEST_PG" -sql "CREATE SCHEMA $SCHEMA" >/dev/null 2>&1 || true
echo "== PostGIS"
"$BIN" --store "$FW_TEST_PG active_schema=$SCHEMA" --patches "$N" --parcels "$P" --dir "$W"
ogrinfo -q "$FW_TEST_PG" -sql "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
