# Shared helpers of the benchmark scripts (sourced; W must be set to the work folder).
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# timeit LABEL COMMAND...: prints "LABEL seconds peakKiB" (median of 3 runs; W/out emptied
# before each run).
timeit() {
  local label=$1; shift
  local ts=() mem=0
  for i in $(seq "${RUNS:-3}"); do
    rm -rf "$W"/out; mkdir -p "$W"/out
    local s
    s=$( { /usr/bin/time -f "%e %M" "$@" >/dev/null 2>"$W/err"; } 2>&1; tail -1 "$W/err")
    ts+=("$(echo "$s" | tail -1 | awk '{print $1}')")
    mem=$(echo "$s" | tail -1 | awk '{print $2}')
  done
  echo "$label $(printf '%s\n' "${ts[@]}" | median) $mem"
}

# bench_scene: sets FW, OUT, S (the 5490 x 5490 synth scene with 20,000 parcels) and W (the work
# folder), and makes, once, the scene, the NDVI of both dates (W/ndvi1, W/ndvi2) and the change
# map with its sub-pixel cover (W/change). Run from the repository root.
bench_scene() {
  BUILD=${BUILD:-build}
  FW=./$BUILD/cli/farmwatch
  OUT=bench/out
  S=$OUT/scene-5490
  W=$OUT/work
  mkdir -p "$W"
  [ -f "$S/date1.tif" ] || "$FW" --log-level warn synth --out "$S" --size 5490 --parcels 20000 --seed 1 >/dev/null
  for d in 1 2; do
    [ -f "$W/ndvi$d/ndvi.tif" ] || "$FW" --log-level warn indices --input "$S/date$d.tif" \
      --mask "$S/date${d}_scl.tif" --mask-type scl --index ndvi --out "$W/ndvi$d" >/dev/null
  done
  [ -f "$W/change/change_cover.tif" ] || "$FW" --log-level warn change --before "$S/date1.tif" \
    --after "$S/date2.tif" --mask-before "$S/date1_scl.tif" --mask-after "$S/date2_scl.tif" \
    --mask-type scl --cover --out "$W/change" >/dev/null
}
