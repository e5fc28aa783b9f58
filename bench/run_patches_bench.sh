#!/usr/bin/env bash
# Issue 6 benchmark: change patches of the 5490 x 5490 synth change map (minimum mapping unit
# 400 m2 = 4 cells, 8-connected): farmwatch patches (sieve, polygonize, attributes, parcel and
# zone overlays, priority; no chips) on 1 and 2 threads beside gdal_sieve.py + gdal_polygonize.py
# (8-connected, GeoJSON) on the same raster. farmwatch runs twice: on the change map alone (the
# raster the GDAL tools read; attributes from it and the parcels and zones) and with every
# attribute raster beside it (intensity, magnitude and the sub-pixel cover: three more rasters to
# decode, one of them 120 MB of Float32); then with evidence chips. Prints "label seconds
# peakKiB" (median of 3 runs) and the raw polygon count GDAL writes.
# usage: bash bench/run_patches_bench.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_scene
C=$W/change/change_class.tif
gdal_chain() {
  rm -f "$W/sieved.tif" "$W/gdal_patches.geojson"
  gdal_sieve.py -q -st 4 -8 "$C" "$W/sieved.tif" && gdal_polygonize.py -q -8 "$W/sieved.tif" -f GeoJSON "$W/gdal_patches.geojson"
}
export -f gdal_chain
export C W
{
timeit gdal_sieve_only bash -c 'rm -f "$W/sieved.tif"; gdal_sieve.py -q -st 4 -8 "$C" "$W/sieved.tif"'
timeit gdal_sieve_plus_polygonize bash -c gdal_chain
echo "gdal_raw_polygons $(ogrinfo -so -al "$W/gdal_patches.geojson" 2>/dev/null | grep -o "Feature Count: [0-9]*")"
for t in 1 2; do
  timeit "farmwatch_patches_change_map_${t}thread" "$FW" --threads $t --log-level warn patches \
    --change-class "$C" --intensity none --magnitude none --cover none \
    --parcels "$S/parcels.gpkg" --zones "$S/zones.geojson" --out "$W/patches_map$t"
  timeit "farmwatch_patches_all_rasters_${t}thread" "$FW" --threads $t --log-level warn patches --change-class "$C" \
    --parcels "$S/parcels.gpkg" --zones "$S/zones.geojson" --out "$W/patches$t"
done
timeit farmwatch_patches_with_chips_2threads "$FW" --log-level warn patches --change-class "$C" \
  --parcels "$S/parcels.gpkg" --zones "$S/zones.geojson" --before "$S/date1.tif" --after "$S/date2.tif" \
  --out "$W/patches_chips"
echo "farmwatch_patches_change_map $(ogrinfo -so "$W/patches_map2/patches.gpkg" patches 2>/dev/null | grep -o 'Feature Count: [0-9]*')"
echo "farmwatch_patches_all_rasters $(ogrinfo -so "$W/patches2/patches.gpkg" patches 2>/dev/null | grep -o 'Feature Count: [0-9]*')"
cmp -s "$W/patches1/patches.csv" "$W/patches2/patches.csv" && echo "patches_csv_1_vs_2_threads identical" || echo "patches_csv_1_vs_2_threads DIFFER"
} | tee "$OUT/patches_bench.txt"
