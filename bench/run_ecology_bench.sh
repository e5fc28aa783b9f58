#!/usr/bin/env bash
# Issue 9 benchmark: FVC + RSEI for both dates of the 5490 x 5490 synth pair (farmwatch ecology,
# three-component RSEI, masks applied, no zones) beside computing NDVI alone for both dates
# (farmwatch indices, the same masks), FVC and RSEI as UInt16 x 1e-4 (the default) and as
# Float32; and, with a DEM, farmwatch's slope beside gdaldem slope.
# Target: ecology no more than 2x the NDVI pair. Prints a Markdown table of medians of 3 runs.
# usage: bash bench/run_ecology_bench.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_scene
cat > "$W/ndvi_pair.sh" <<PAIR
#!/usr/bin/env bash
set -e
for d in 1 2; do
  "$FW" --log-level warn indices --input "$S/date\$d.tif" --mask "$S/date\${d}_scl.tif" \
    --mask-type scl --index ndvi --out "$W/out/ndvi\$d"
done
PAIR
chmod +x "$W/ndvi_pair.sh"
# A DEM on the scene's grid: smooth hills (for the slope timing only).
DEM=$W/dem.tif
[ -f "$DEM" ] || /usr/bin/python3 - "$S/date1.tif" "$DEM" <<'PY'
import sys
import numpy as np
from osgeo import gdal
src = gdal.Open(sys.argv[1])
w, h = src.RasterXSize, src.RasterYSize
y, x = np.mgrid[0:h, 0:w].astype(np.float32)
z = 300 + 80 * np.sin(x / 400.0) * np.cos(y / 300.0) + 0.02 * x
d = gdal.GetDriverByName("GTiff").Create(sys.argv[2], w, h, 1, gdal.GDT_Float32,
                                         ["TILED=YES", "COMPRESS=DEFLATE"])
d.SetGeoTransform(src.GetGeoTransform()); d.SetProjection(src.GetProjection())
d.GetRasterBand(1).WriteArray(z); d = None
PY
{
  timeit "ndvi_both_dates" "$W/ndvi_pair.sh"
  timeit "fvc_rsei_both_dates" "$FW" --log-level warn ecology --before "$S/date1.tif" \
    --after "$S/date2.tif" --mask-before "$S/date1_scl.tif" --mask-after "$S/date2_scl.tif" \
    --mask-type scl --out "$W/out/eco"
  timeit "fvc_rsei_both_dates_float32" "$FW" --log-level warn ecology --before "$S/date1.tif" \
    --after "$S/date2.tif" --mask-before "$S/date1_scl.tif" --mask-after "$S/date2_scl.tif" \
    --mask-type scl --float32 --out "$W/out/eco"
  timeit "fvc_rsei_zones_slope" "$FW" --log-level warn ecology --before "$S/date1.tif" \
    --after "$S/date2.tif" --mask-before "$S/date1_scl.tif" --mask-after "$S/date2_scl.tif" \
    --mask-type scl --zones "$S/zones.geojson" --dem "$DEM" --out "$W/out/eco"
  timeit "gdaldem_slope" gdaldem slope -q -compute_edges -co TILED=YES -co COMPRESS=DEFLATE \
    "$DEM" "$W/out/slope.tif"
} | tee "$OUT/ecology_bench.txt" | awk 'BEGIN{print "| run | seconds | peak MiB |\n|---|---|---|"}
  {printf "| %s | %s | %.0f |\n", $1, $2, $3/1024}'
