#!/usr/bin/python3
"""Scores change patches (farmwatch patches output) against a synth scene's truth: for every
planted change of at least MMU m2 without clouds, the patches of its category that intersect
it (issue 6 wants exactly one, with an area within 10 %), and the patches that touch no planted
change of their category (false patches).
With CHANGE_CLASS.tif given, a change with a no-data cell (clouds, shadows, the mask buffer)
within one cell counts as not observed.
usage: eval_patches.py SCENE_DIR PATCHES.gpkg [MMU_M2 [CHANGE_CLASS.tif]]"""
import json
import sys

from osgeo import ogr

scene, path = sys.argv[1], sys.argv[2]
mmu = float(sys.argv[3]) if len(sys.argv) > 3 else 400.0
cls_path = sys.argv[4] if len(sys.argv) > 4 else None
if cls_path:
    from osgeo import gdal
    ds_cls = gdal.Open(cls_path)
    band, gt = ds_cls.GetRasterBand(1), ds_cls.GetGeoTransform()


def masked_near(g0):
    if cls_path is None:
        return False
    g = g0.Buffer(gt[1] * 1.5)
    x0, x1, y0, y1 = g.GetEnvelope()
    c0, c1 = int((x0 - gt[0]) / gt[1]), int((x1 - gt[0]) / gt[1]) + 1
    r0, r1 = int((y1 - gt[3]) / gt[5]), int((y0 - gt[3]) / gt[5]) + 1
    c0, r0 = max(c0, 0), max(r0, 0)
    block = band.ReadAsArray(c0, r0, min(c1, ds_cls.RasterXSize) - c0, min(r1, ds_cls.RasterYSize) - r0)
    return bool((block == 255).any())

truth = json.load(open(f"{scene}/truth.json"))
patches = []
ds = ogr.Open(path)
for f in ds.GetLayer(0):
    patches.append((f.GetField("patch_id"), f.GetField("category"), f.GetField("area_m2"),
                    f.GetField("pixel_area_m2"), f.GetGeometryRef().Clone()))
changes = [(c, ogr.CreateGeometryFromWkt(c["wkt"])) for c in truth["changes"]]
n = ok_one = ok_area = 0
bad = []
used = set()
for c, g in changes:
    hits = [p for p in patches if p[1] == c["category"] and p[4].Intersects(g)]
    for p in hits:
        used.add(p[0])
    if c["area_m2"] < mmu or c["cloud_fraction"] > 0 or masked_near(g):
        continue
    n += 1
    if len(hits) == 1:
        ok_one += 1
        err = abs(hits[0][2] - c["area_m2"]) / c["area_m2"]
        if err <= 0.10:
            ok_area += 1
        else:
            bad.append((err, c["id"], c["category"], c["area_m2"], hits[0][2], hits[0][3]))
    else:
        bad.append((9.0, c["id"], c["category"], c["area_m2"], len(hits), 0))
false = [p for p in patches if p[0] not in used]
small = [p for p in patches if p[3] < mmu - 1e-6]
print(f"planted changes >= {mmu:.0f} m2 cloud-free: {n}; exactly one patch: {ok_one}; area within 10 %: {ok_area}")
for b in sorted(bad, reverse=True)[:10]:
    print("  ", b)
print(f"patches: {len(patches)}; without a planted change of their category: {len(false)}; below the unit: {len(small)}")
for p in false[:10]:
    print("   false", p[:4])
