#!/usr/bin/env bash
# Issue 3 benchmark: farmwatch indices beside gdal_calc.py, OTB and a windowed NumPy script on
# the same synth date, every tool writing the same output: Float32, tiled 512, DEFLATE level 1,
# floating-point predictor; and the floor (decoding the bands read + encoding the outputs with
# GDAL's own tools on 2 threads). Prints a Markdown table of medians of 3 runs.
# usage: bash bench/run_indices_bench.sh [SIZE]
set -uo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-5490}
BUILD=${BUILD:-build}
FW=./$BUILD/cli/farmwatch
OUT=bench/out
S=$OUT/scene-$SIZE
IN=$S/date1.tif
W=$OUT/work
mkdir -p "$W"
[ -f "$IN" ] || "$FW" --log-level warn synth --out "$S" --size "$SIZE" --parcels 20000 --seed 1 >/dev/null
CO=(--co TILED=YES --co BLOCKXSIZE=512 --co BLOCKYSIZE=512 --co COMPRESS=DEFLATE --co ZLEVEL=1 --co PREDICTOR=3)
OTBCO="?&gdal:co:TILED=YES&gdal:co:BLOCKXSIZE=512&gdal:co:BLOCKYSIZE=512&gdal:co:COMPRESS=DEFLATE&gdal:co:ZLEVEL=1&gdal:co:PREDICTOR=3"
PY=/usr/bin/python3
# Synth band order: 1 B2 blue, 2 B3 green, 3 B4 red, 4 B8 nir, 5 B11 swir1, 6 B12 swir2.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() {  # label, command...: prints "label seconds peakKiB" (median of 3)
  local label=$1; shift
  local ts=() mem=0
  for i in 1 2 3; do
    rm -rf "$W"/out; mkdir -p "$W"/out
    local s
    s=$( { /usr/bin/time -f "%e %M" "$@" >/dev/null 2>"$W/err"; } 2>&1; tail -1 "$W/err")
    ts+=("$(echo "$s" | tail -1 | awk '{print $1}')")
    mem=$(echo "$s" | tail -1 | awk '{print $2}')
  done
  echo "$label $(printf '%s\n' "${ts[@]}" | median) $mem"
}
calc() {  # index name, expression
  gdal_calc.py --quiet -A "$IN" --A_band=1 -B "$IN" --B_band=2 -C "$IN" --C_band=3 -D "$IN" --D_band=4 \
    -E "$IN" --E_band=5 --calc="$2" --type=Float32 --NoDataValue=-9999 "${CO[@]}" --outfile="$W/out/$1.tif"
}
NDVI="(D.astype(float32)-C)/(D.astype(float32)+C)"
NDBI="(E.astype(float32)-D)/(E.astype(float32)+D)"
MNDWI="(B.astype(float32)-E)/(B.astype(float32)+E)"
{
timeit "farmwatch_ndvi_2threads" "$FW" --log-level warn indices --input "$IN" --index ndvi --out "$W/out"
timeit "farmwatch_ndvi_1thread" "$FW" --threads 1 --log-level warn indices --input "$IN" --index ndvi --out "$W/out"
timeit "gdal_calc_ndvi" calc ndvi "$NDVI"
timeit "numpy_windowed_ndvi" $PY bench/peers/ndvi_numpy.py "$IN" 3 4 "$W/out/ndvi.tif" TILED=YES BLOCKXSIZE=512 BLOCKYSIZE=512 COMPRESS=DEFLATE ZLEVEL=1 PREDICTOR=3
if command -v otbcli_RadiometricIndices >/dev/null; then
  timeit "otb_RadiometricIndices_ndvi" otbcli_RadiometricIndices -in "$IN" -list Vegetation:NDVI \
    -channels.red 3 -channels.nir 4 -out "$W/out/ndvi.tif$OTBCO" float
  timeit "otb_BandMath_ndvi" otbcli_BandMath -il "$IN" -exp "(im1b4-im1b3)/(im1b4+im1b3)" \
    -out "$W/out/ndvi.tif$OTBCO" float
fi
timeit "farmwatch_ndvi_ndbi_mndwi" "$FW" --log-level warn indices --input "$IN" --index ndvi,ndbi,mndwi --out "$W/out"
timeit "gdal_calc_x3" bash -c "$(declare -f calc); IN=$IN W=$W; CO=(${CO[*]}); calc ndvi '$NDVI' && calc ndbi '$NDBI' && calc mndwi '$MNDWI'"
# The floor: decode the bands read (2 threads) + encode the outputs (2 threads), GDAL's tools.
gdalbuildvrt -q -b 3 -b 4 "$W/ndvi_in.vrt" "$IN"
gdalbuildvrt -q -b 2 -b 3 -b 4 -b 5 "$W/three_in.vrt" "$IN"
"$FW" --log-level warn indices --input "$IN" --index ndvi,ndbi,mndwi --compress NONE --out "$W/raw" >/dev/null
timeit "floor_decode_2bands" env GDAL_NUM_THREADS=2 gdalinfo -checksum "$W/ndvi_in.vrt"
timeit "floor_decode_4bands" env GDAL_NUM_THREADS=2 gdalinfo -checksum "$W/three_in.vrt"
timeit "floor_encode_ndvi" gdal_translate -q --config GDAL_NUM_THREADS 2 -co NUM_THREADS=2 "${CO[@]}" "$W/raw/ndvi.tif" "$W/out/ndvi.tif"
timeit "floor_encode_3" bash -c "for i in ndvi ndbi mndwi; do gdal_translate -q -co NUM_THREADS=2 ${CO[*]} $W/raw/\$i.tif $W/out/\$i.tif || exit 1; done"
} | tee "$OUT/indices_bench.txt"
