#!/usr/bin/python3
"""Scores change patches (farmwatch patches output) against a synth scene's truth: for every
planted change of at least MMU m2 without clouds, the patches of its category that intersect
it (issue 6 wants exactly one, with an area within 10 %), and the patches that touch no planted
change of their category (false patches).
With CHANGE_CLASS.tif given, a change with a no-data cell (clouds, shadows, the mask buffer)
within one cell counts as not observed.
usage: eval_patches.py SCENE_DIR PATCHES.gpkg [MMU_M2 [CHANGE_CLASS.tif]]"""
import json
import os
import sys

from osgeo import ogr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from observed import ChangeMap  # noqa: E402

scene, path = sys.argv[1], sys.argv[2]
mmu = float(sys.argv[3]) if len(sys.argv) > 3 else 400.0
cls_path = sys.argv[4] if len(sys.argv) > 4 else None
change_map = ChangeMap(cls_path)
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
    if c["area_m2"] < mmu or c["cloud_fraction"] > 0 or change_map.masked_near(g):
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
small = [p for p in patches if p[3] < mmu - 1e-6 and p[2] < mmu - 1e-6]
print(f"planted changes >= {mmu:.0f} m2 cloud-free: {n}; exactly one patch: {ok_one}; area within 10 %: {ok_area}")
for b in sorted(bad, reverse=True)[:10]:
    print("  ", b)
print(f"patches: {len(patches)}; without a planted change of their category: {len(false)}; below the unit: {len(small)}")
for p in false[:10]:
    print("   false", p[:4])
