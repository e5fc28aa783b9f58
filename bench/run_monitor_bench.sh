#!/usr/bin/env bash
# Issue 7 benchmark: `farmwatch monitor` on the 5490 x 5490 synth pair with 20,000 parcels (the
# default pipeline: four indices per date, change with sub-pixel cover, indicators, patches with
# evidence chips, styles, report), and the lean job the peers chain (NDVI of both dates, the
# change map, zonal statistics, sieve, polygonize: --set steps.indices.list=[ndvi]
# steps.change.cover=false steps.patches.chips=false), on 2 and 1 threads; beside
# - the fastest peer for each step: NumPy NDVI of both dates, a windowed NumPy dNDVI change map,
#   exactextract (2 threads; path from $EXACTEXTRACT, skipped when unset), gdal_sieve.py +
#   gdal_polygonize.py;
# - GDAL's own tools: gdal_calc.py NDVI of both dates and the dNDVI change map, exactextract for
#   the zonal step (GDAL 3.6 has no zonal tool), gdal_sieve.py + gdal_polygonize.py;
# - the floor: decoding both dates once.
# Prints "label seconds peakKiB" (RUNS runs each, default 1; the median when more).
# usage: EXACTEXTRACT=/path/to/exactextract [RUNS=3] bash bench/run_monitor_bench.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_scene
RUNS=${RUNS:-1}
export RUNS
PY=/usr/bin/python3
for d in 1 2; do
  gdal_translate -q -of VRT -outsize 5490 5490 -r nearest "$S/date${d}_scl.tif" "$W/scl${d}_10m.vrt"
done
CO="TILED=YES BLOCKXSIZE=512 BLOCKYSIZE=512 COMPRESS=DEFLATE ZLEVEL=1 PREDICTOR=2"
GCO=$(for c in $CO; do printf -- '--co %s ' "$c"; done)
BAD="(M==0)|(M==1)|(M==3)|(M==8)|(M==9)|(M==10)"
EE=${EXACTEXTRACT:-}
export S W PY CO GCO BAD EE
peer_chain() {
  set -e
  P=$W/peer; rm -rf "$P"; mkdir -p "$P"
  $PY bench/peers/ndvi_numpy.py "$S/date1.tif" 3 4 "$P/ndvi1.tif" $CO
  $PY bench/peers/ndvi_numpy.py "$S/date2.tif" 3 4 "$P/ndvi2.tif" $CO
  $PY bench/peers/dndvi_numpy.py "$S/date1.tif" "$S/date2.tif" "$S/date1_scl.tif" "$S/date2_scl.tif" 3 4 -0.2 "$P/change.tif" $CO
  [ -z "$EE" ] || "$EE" -r "ndvi:$P/ndvi2.tif" -p "$S/parcels.gpkg" -f parcel_id -s "mean(ndvi)" -s "count(ndvi)" -o "$P/zonal.csv" --threads 2
  gdal_sieve.py -q -st 4 -8 "$P/change.tif" "$P/sieved.tif"
  gdal_polygonize.py -q -8 "$P/sieved.tif" -f GeoJSON "$P/patches.geojson"
}
gdal_chain() {
  set -e
  P=$W/gdalchain; rm -rf "$P"; mkdir -p "$P"
  for d in 1 2; do
    gdal_calc.py --quiet -A "$S/date$d.tif" --A_band=3 -B "$S/date$d.tif" --B_band=4 \
      --calc="(B.astype(float32)-A)/(B.astype(float32)+A)" --type=Float32 $GCO --outfile="$P/ndvi$d.tif"
  done
  gdal_calc.py --quiet -A "$S/date1.tif" --A_band=3 -B "$S/date1.tif" --B_band=4 \
    -C "$S/date2.tif" --C_band=3 -D "$S/date2.tif" --D_band=4 -M "$W/scl1_10m.vrt" -N "$W/scl2_10m.vrt" \
    --calc="where(($BAD)|(N==0)|(N==1)|(N==3)|(N==8)|(N==9)|(N==10), 255, ((D.astype(float32)-C)/(D.astype(float32)+C)-(B.astype(float32)-A)/(B.astype(float32)+A)) < -0.2)" \
    --type=Byte --NoDataValue=255 $GCO --outfile="$P/change.tif"
  [ -z "$EE" ] || "$EE" -r "ndvi:$P/ndvi2.tif" -p "$S/parcels.gpkg" -f parcel_id -s "mean(ndvi)" -s "count(ndvi)" -o "$P/zonal.csv" --threads 2
  gdal_sieve.py -q -st 4 -8 "$P/change.tif" "$P/sieved.tif"
  gdal_polygonize.py -q -8 "$P/sieved.tif" -f GeoJSON "$P/patches.geojson"
}
export -f peer_chain gdal_chain
MON=(monitor --before "$S/date1.tif" --after "$S/date2.tif" --mask-before "$S/date1_scl.tif"
     --mask-after "$S/date2_scl.tif" --parcels "$S/parcels.gpkg" --zones "$S/zones.geojson" --force)
LEAN=(--set "steps.indices.list=[ndvi]" --set steps.change.cover=false --set steps.patches.chips=false)
{
for t in 2 1; do
  timeit "farmwatch_monitor_lean_${t}thread" "$FW" --threads $t --log-level warn "${MON[@]}" "${LEAN[@]}" --out "$W/mon_lean$t"
done
timeit "farmwatch_monitor_default_2threads" "$FW" --log-level warn "${MON[@]}" --out "$W/mon_default"
timeit "fastest_peer_chain" bash -c peer_chain
timeit "gdal_tools_chain" bash -c gdal_chain
timeit "floor_decode_both_dates" bash -c "GDAL_NUM_THREADS=2 gdalinfo -checksum $S/date1.tif >/dev/null 2>&1; GDAL_NUM_THREADS=2 gdalinfo -checksum $S/date2.tif >/dev/null 2>&1"
echo "stage seconds (lean, 2 threads): $(python3 -c "import json;print(json.load(open('$W/mon_lean2/manifest.json'))['seconds'])" 2>/dev/null || /usr/bin/python3 -c "import json;print(json.load(open('$W/mon_lean2/manifest.json'))['seconds'])")"
echo "stage seconds (default, 2 threads): $(/usr/bin/python3 -c "import json;print(json.load(open('$W/mon_default/manifest.json'))['seconds'])")"
} | tee "$OUT/monitor_bench.txt"
