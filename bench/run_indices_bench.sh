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
# Output settings for every tool (gdal_calc.py spells them --co, gdal_translate -co).
CO_LIST="TILED=YES BLOCKXSIZE=512 BLOCKYSIZE=512 COMPRESS=DEFLATE ZLEVEL=1 PREDICTOR=3"
CO=(); TCO=(); for c in $CO_LIST; do CO+=(--co "$c"); TCO+=(-co "$c"); done
OTBCO="?&gdal:co:TILED=YES&gdal:co:BLOCKXSIZE=512&gdal:co:BLOCKYSIZE=512&gdal:co:COMPRESS=DEFLATE&gdal:co:ZLEVEL=1&gdal:co:PREDICTOR=3"
PY=/usr/bin/python3
# Synth band order: 1 B2 blue, 2 B3 green, 3 B4 red, 4 B8 nir, 5 B11 swir1, 6 B12 swir2.
source bench/lib.sh
cat > "$W/calc.sh" <<CALC
#!/usr/bin/env bash
# usage: calc.sh NAME EXPRESSION [NAME EXPRESSION...]: one gdal_calc.py run per index
set -e
while [ \$# -gt 0 ]; do
  gdal_calc.py --quiet -A "$IN" --A_band=1 -B "$IN" --B_band=2 -C "$IN" --C_band=3 -D "$IN" --D_band=4 \\
    -E "$IN" --E_band=5 --calc="\$2" --type=Float32 --NoDataValue=-9999 ${CO[*]} --outfile="$W/out/\$1.tif"
  shift 2
done
CALC
chmod +x "$W/calc.sh"
NDVI="(D.astype(float32)-C)/(D.astype(float32)+C)"
NDBI="(E.astype(float32)-D)/(E.astype(float32)+D)"
MNDWI="(B.astype(float32)-E)/(B.astype(float32)+E)"
{
timeit "farmwatch_ndvi_2threads" "$FW" --log-level warn indices --input "$IN" --index ndvi --out "$W/out"
timeit "farmwatch_ndvi_1thread" "$FW" --threads 1 --log-level warn indices --input "$IN" --index ndvi --out "$W/out"
timeit "gdal_calc_ndvi" "$W/calc.sh" ndvi "$NDVI"
timeit "numpy_windowed_ndvi" $PY bench/peers/ndvi_numpy.py "$IN" 3 4 "$W/out/ndvi.tif" TILED=YES BLOCKXSIZE=512 BLOCKYSIZE=512 COMPRESS=DEFLATE ZLEVEL=1 PREDICTOR=3
if command -v otbcli_RadiometricIndices >/dev/null; then
  timeit "otb_RadiometricIndices_ndvi" otbcli_RadiometricIndices -in "$IN" -list Vegetation:NDVI \
    -channels.red 3 -channels.nir 4 -out "$W/out/ndvi.tif$OTBCO" float
  timeit "otb_BandMath_ndvi" otbcli_BandMath -il "$IN" -exp "(im1b4-im1b3)/(im1b4+im1b3)" \
    -out "$W/out/ndvi.tif$OTBCO" float
fi
timeit "farmwatch_ndvi_ndbi_mndwi" "$FW" --log-level warn indices --input "$IN" --index ndvi,ndbi,mndwi --out "$W/out"
timeit "gdal_calc_x3" "$W/calc.sh" ndvi "$NDVI" ndbi "$NDBI" mndwi "$MNDWI"
# The floor: decode the bands read (2 threads) + encode the outputs (2 threads), GDAL's tools.
# The bands each job reads, as files compressed like the input, decoded with gdalinfo -checksum.
IN_CO="-co TILED=YES -co COMPRESS=DEFLATE -co PREDICTOR=2 -co INTERLEAVE=BAND"
[ -f "$W/ndvi_in.tif" ] || gdal_translate -q -b 3 -b 4 $IN_CO "$IN" "$W/ndvi_in.tif"
[ -f "$W/three_in.tif" ] || gdal_translate -q -b 2 -b 3 -b 4 -b 5 $IN_CO "$IN" "$W/three_in.tif"
"$FW" --log-level warn indices --input "$IN" --index ndvi,ndbi,mndwi --compress NONE --out "$W/raw" >/dev/null
timeit "floor_decode_2bands" env GDAL_NUM_THREADS=2 gdalinfo -checksum "$W/ndvi_in.tif"
timeit "floor_decode_4bands" env GDAL_NUM_THREADS=2 gdalinfo -checksum "$W/three_in.tif"
timeit "floor_encode_ndvi" gdal_translate -q -co NUM_THREADS=2 "${TCO[@]}" "$W/raw/ndvi.tif" "$W/out/ndvi.tif"
timeit "floor_encode_3" bash -c "for i in ndvi ndbi mndwi; do gdal_translate -q -co NUM_THREADS=2 ${TCO[*]} $W/raw/\$i.tif $W/out/\$i.tif || exit 1; done"
# Peers with GDAL's default DEFLATE settings (level 6, no predictor), for reference.
CO=(--co TILED=YES --co BLOCKXSIZE=512 --co BLOCKYSIZE=512 --co COMPRESS=DEFLATE)
sed -i 's/--co ZLEVEL=1 --co PREDICTOR=3//' "$W/calc.sh"
timeit "gdal_calc_ndvi_gdal_defaults" "$W/calc.sh" ndvi "$NDVI"
timeit "numpy_windowed_ndvi_gdal_defaults" $PY bench/peers/ndvi_numpy.py "$IN" 3 4 "$W/out/ndvi.tif" TILED=YES BLOCKXSIZE=512 BLOCKYSIZE=512 COMPRESS=DEFLATE
} | tee "$OUT/indices_bench.txt"
