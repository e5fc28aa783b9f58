#!/usr/bin/python3
"""Scores per-parcel encroachment (farmwatch indicators output) against a synth scene's truth:
for every parcel, the truth is the area of its intersection with the planted construction,
bare-soil and new-water changes. Prints, for parcels with at least MIN_MU of planted
encroachment, the relative error, and for parcels without any planted change (and without planted encroachment), the largest
encroachment found.
A parcel counts as observed when its planted changes have no cloud in the truth and, with
CHANGE_CLASS.tif given, no no-data cell (clouds, shadows and the mask buffer) within one cell.
usage: eval_encroach.py SCENE_DIR INDICATORS.gpkg [MIN_MU [CHANGE_CLASS.tif]]"""
import json
import os
import sys

from osgeo import ogr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from observed import ChangeMap  # noqa: E402

scene, ind_path = sys.argv[1], sys.argv[2]
min_mu = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
cls_path = sys.argv[4] if len(sys.argv) > 4 else None
mu = 10000.0 / 15.0
truth = json.load(open(f"{scene}/truth.json"))
parcels = {}
ds = ogr.Open(f"{scene}/parcels.gpkg")
for f in ds.GetLayer(0):
    parcels[f.GetField("parcel_id")] = f.GetGeometryRef().Clone()
want = {pid: 0.0 for pid in parcels}

change_map = ChangeMap(cls_path)
cloudy, touched = set(), set()
for c in truth["changes"]:
    touched.update(c["parcels"])
    if c["category"] not in ("construction", "bare_soil", "water_gain"):
        continue
    g = ogr.CreateGeometryFromWkt(c["wkt"])
    for pid in c["parcels"]:
        if pid in parcels:
            want[pid] += g.Intersection(parcels[pid]).GetArea()
            if c["cloud_fraction"] > 0 or change_map.masked_near(g):
                cloudy.add(pid)
got = {}
ids = ogr.Open(ind_path)
for f in ids.GetLayer(0):
    got[f.GetField("parcel_id")] = (f.GetField("encroach_area_m2") or 0.0, f.GetField("flags") or "")
errs, worst_clean, worst_untouched = [], 0.0, 0.0
for pid, w in want.items():
    g, flags = got.get(pid, (0.0, ""))
    if w >= min_mu * mu and pid not in cloudy:
        errs.append((abs(g - w) / w, pid, w, g))
    elif w == 0:
        worst_clean = max(worst_clean, g)
        if pid not in touched:
            worst_untouched = max(worst_untouched, g)
errs.sort(reverse=True)
within = sum(1 for e in errs if e[0] <= 0.10)
print(f"parcels with >= {min_mu} mu planted encroachment (cloud-free): {len(errs)}; within 10 %: {within}")
for e, pid, w, g in errs[:8]:
    print(f"  {pid}: truth {w:.0f} m2, found {g:.0f} m2, error {100 * e:.1f} %")
print(f"largest encroachment on parcels without any planted change: {worst_untouched:.0f} m2")
print(f"largest encroachment on parcels without planted encroachment: {worst_clean:.0f} m2")
