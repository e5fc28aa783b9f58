#!/usr/bin/env bash
# Issue 4 benchmark, on a synth pair (6 UInt16 bands per date, tiled 256, DEFLATE, 20 m SCL):
# - IR-MAD: farmwatch change --method irmad (iterated to convergence) beside OTB's
#   otbcli_MultivariateAlterationDetector (one MAD pass, 6-band Float32 output);
# - the full categorised change (classes, intensity, magnitude; COG, DEFLATE) beside the
#   single-rule change maps peers make: dNDVI below a threshold with both cloud masks, by a
#   windowed NumPy script, otbcli_BandMath and gdal_calc.py (Byte, tiled, DEFLATE);
# - the floor: decoding both dates (every band, 2 threads).
# Prints "label seconds peakKiB" (median of 3 runs).
# usage: bash bench/run_change_bench.sh [SIZE]
set -uo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-5490}
BUILD=${BUILD:-build}
FW=./$BUILD/cli/farmwatch
OUT=bench/out
S=$OUT/scene-$SIZE
W=$OUT/work
mkdir -p "$W"
[ -f "$S/date1.tif" ] || "$FW" --log-level warn synth --out "$S" --size "$SIZE" --parcels 20000 --seed 1 >/dev/null
PY=/usr/bin/python3
source bench/lib.sh
# The masks on the 10 m grid (nearest neighbour) for the tools that need equal sizes.
for d in 1 2; do
  gdal_translate -q -of VRT -outsize "$SIZE" "$SIZE" -r nearest "$S/date${d}_scl.tif" "$W/scl${d}_10m.vrt"
done
CO="TILED=YES BLOCKXSIZE=512 BLOCKYSIZE=512 COMPRESS=DEFLATE ZLEVEL=1 PREDICTOR=2"
OTBCO="?&gdal:co:TILED=YES&gdal:co:BLOCKXSIZE=512&gdal:co:BLOCKYSIZE=512&gdal:co:COMPRESS=DEFLATE&gdal:co:ZLEVEL=1"
FWARGS=(--before "$S/date1.tif" --after "$S/date2.tif" --mask-before "$S/date1_scl.tif"
        --mask-after "$S/date2_scl.tif" --mask-type scl)
BAD="(M==0)|(M==1)|(M==3)|(M==8)|(M==9)|(M==10)"
{
timeit "farmwatch_change_diff" "$FW" --log-level warn change "${FWARGS[@]}" --out "$W/out"
timeit "farmwatch_change_diff_1thread" "$FW" --threads 1 --log-level warn change "${FWARGS[@]}" --out "$W/out"
timeit "farmwatch_change_cva" "$FW" --log-level warn change "${FWARGS[@]}" --method cva --out "$W/out"
timeit "farmwatch_change_irmad" "$FW" --log-level warn change "${FWARGS[@]}" --method irmad --out "$W/out"
timeit "farmwatch_change_irmad_mad_variates" "$FW" --log-level warn change "${FWARGS[@]}" --method irmad --mad-variates --out "$W/out"
timeit "numpy_windowed_dndvi" $PY bench/peers/dndvi_numpy.py "$S/date1.tif" "$S/date2.tif" \
  "$S/date1_scl.tif" "$S/date2_scl.tif" 3 4 -0.2 "$W/out/dndvi.tif" $CO
if command -v otbcli_BandMath >/dev/null; then
  timeit "otb_BandMath_dndvi" otbcli_BandMath -il "$S/date1.tif" "$S/date2.tif" "$W/scl1_10m.vrt" "$W/scl2_10m.vrt" \
    -exp "(im3b1==0||im3b1==1||im3b1==3||im3b1==8||im3b1==9||im3b1==10||im4b1==0||im4b1==1||im4b1==3||im4b1==8||im4b1==9||im4b1==10) ? 255 : (((im2b4-im2b3)/(im2b4+im2b3)-(im1b4-im1b3)/(im1b4+im1b3)) < -0.2 ? 1 : 0)" \
    -out "$W/out/dndvi.tif$OTBCO" uint8
  timeit "otb_MultivariateAlterationDetector" otbcli_MultivariateAlterationDetector \
    -in1 "$S/date1.tif" -in2 "$S/date2.tif" -out "$W/out/mad.tif$OTBCO" float
fi
timeit "gdal_calc_dndvi" gdal_calc.py --quiet -A "$S/date1.tif" --A_band=3 -B "$S/date1.tif" --B_band=4 \
  -C "$S/date2.tif" --C_band=3 -D "$S/date2.tif" --D_band=4 -M "$W/scl1_10m.vrt" -N "$W/scl2_10m.vrt" \
  --calc="where(($BAD)|(N==0)|(N==1)|(N==3)|(N==8)|(N==9)|(N==10), 255, ((D.astype(float32)-C)/(D.astype(float32)+C)-(B.astype(float32)-A)/(B.astype(float32)+A)) < -0.2)" \
  --type=Byte --NoDataValue=255 $(for c in $CO; do printf -- '--co %s ' "$c"; done) --outfile="$W/out/dndvi.tif"
timeit "floor_decode_both_dates" bash -c "GDAL_NUM_THREADS=2 gdalinfo -checksum $S/date1.tif >/dev/null 2>&1; GDAL_NUM_THREADS=2 gdalinfo -checksum $S/date2.tif >/dev/null 2>&1"
} | tee "$OUT/change_bench.txt"
