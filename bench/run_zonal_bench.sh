#!/usr/bin/env bash
# Issue 5 benchmark: mean and count of one raster (the NDVI of the synth date 1, 5490 x 5490,
# Float32, tiled 512, DEFLATE) for the 20,000 synth parcels: farmwatch zonal (exact coverage) on
# 1 and 2 threads beside exactextract (path from $EXACTEXTRACT; skipped when unset) and
# otbcli_ZonalStatistics; then the full indicator set over three rasters (NDVI of both dates
# and the change classes). Prints "label seconds peakKiB" (median of 3 runs), and the largest
# differences from exactextract over the parcels with valid geometry.
# usage: EXACTEXTRACT=/path/to/exactextract [OTB=1] bash bench/run_zonal_bench.sh
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
FW=./$BUILD/cli/farmwatch
OUT=bench/out
S=$OUT/scene-5490
W=$OUT/work
mkdir -p "$W"
[ -f "$S/date1.tif" ] || "$FW" --log-level warn synth --out "$S" --size 5490 --parcels 20000 --seed 1 >/dev/null
for d in 1 2; do
  [ -f "$W/ndvi$d/ndvi.tif" ] || "$FW" --log-level warn indices --input "$S/date$d.tif" --mask "$S/date${d}_scl.tif" \
    --mask-type scl --index ndvi --out "$W/ndvi$d" >/dev/null
done
[ -f "$W/change/change_class.tif" ] || "$FW" --log-level warn change --before "$S/date1.tif" --after "$S/date2.tif" \
  --mask-before "$S/date1_scl.tif" --mask-after "$S/date2_scl.tif" --mask-type scl --out "$W/change" >/dev/null
R=$W/ndvi1/ndvi.tif
source bench/lib.sh
{
timeit farmwatch_zonal_mean_count_1thread "$FW" --threads 1 --log-level warn zonal --raster "$R" --parcels "$S/parcels.gpkg" --stats mean,count --out "$W/fw1.csv"
timeit farmwatch_zonal_mean_count_2threads "$FW" --threads 2 --log-level warn zonal --raster "$R" --parcels "$S/parcels.gpkg" --stats mean,count --out "$W/fw2.csv"
if [ -n "${EXACTEXTRACT:-}" ]; then
  for t in 1 2; do
    timeit "exactextract_mean_count_${t}thread" "$EXACTEXTRACT" -r "ndvi:$R" -p "$S/parcels.gpkg" -f parcel_id \
      -s "mean(ndvi)" -s "count(ndvi)" -o "$W/ee$t.csv" --threads $t
  done
fi
if [ -n "${OTB:-}" ] && command -v otbcli_ZonalStatistics >/dev/null; then
  # Opt-in (OTB=1): one run, at most 10 minutes (it rasterises the 20,000 polygons and writes a GeoPackage).
  s=$( { /usr/bin/time -f "%e %M" timeout 600 otbcli_ZonalStatistics -in "$R" -inzone.vector.in "$S/parcels.gpkg" \
    -out.vector.filename "$W/otb_zonal.shp" -inbv -9999 >/dev/null 2>"$W/err"; } 2>&1; tail -1 "$W/err")
  echo "otb_ZonalStatistics_one_run $(echo "$s" | tail -1)"
fi
timeit farmwatch_indicators_3_rasters_2threads "$FW" --log-level warn indicators --parcels "$S/parcels.gpkg" \
  --ndvi-before "$W/ndvi1/ndvi.tif" --ndvi-after "$W/ndvi2/ndvi.tif" --change-class "$W/change/change_class.tif" \
  --out "$W/indicators.gpkg" --summary "$W/summary.csv"
if [ -n "${EXACTEXTRACT:-}" ]; then
  /usr/bin/python3 - "$W/ee1.csv" "$W/fw1.csv" <<'PY'
import csv, sys
ee = {r["parcel_id"]: r for r in csv.DictReader(open(sys.argv[1]))}
fw = {r["parcel_id"]: r for r in csv.DictReader(open(sys.argv[2]))}
dm = dc = 0.0
n = rep = 0
for k, r in ee.items():
    f = fw[k]
    if f["repaired"] == "1":
        rep += 1  # farmwatch repairs invalid geometries (MakeValid); exactextract does not
        continue
    if r["ndvi_count"] and f["ndvi_count"]:
        c = float(r["ndvi_count"])
        dc = max(dc, abs(c - float(f["ndvi_count"])) / max(c, 1.0))
    if r["ndvi_mean"] not in ("", "nan", "-nan") and f["ndvi_mean"]:
        dm = max(dm, abs(float(r["ndvi_mean"]) - float(f["ndvi_mean"])))
    n += 1
print(f"agreement_with_exactextract parcels {n} (repaired, not compared: {rep}) max_abs_mean_diff {dm:.3g} max_rel_count_diff {dc:.3g}")
PY
fi
} | tee "$OUT/zonal_bench.txt"
