#!/usr/bin/python3
"""Scores a change_class.tif against a synth scene's truth.json: per-category pixel precision,
recall and F1 (pixel centres inside each planted polygon), and the share of unchanged pixels
flagged as change. Pixels that are no_data in the map are left out, and so are the mixed pixels
on a planted polygon's edge (touched by it, centre outside): they are partly changed, so
neither label is wrong there (the usual "don't care" band of change-map accuracy assessment).
usage: eval_change.py SCENE_DIR CHANGE_CLASS.tif"""
import json
import sys

import numpy as np
from osgeo import gdal, ogr

scene, cls_path = sys.argv[1], sys.argv[2]
truth = json.load(open(f"{scene}/truth.json"))
ds = gdal.Open(cls_path)
cls = ds.ReadAsArray()
gt = ds.GetGeoTransform()
h, w = cls.shape
names = ["no_change", "construction", "bare_soil", "water_gain", "water_loss", "vegetation_loss",
         "vegetation_gain"]
truth_map = np.zeros((h, w), np.uint8)
edge = np.zeros((h, w), bool)
for c in truth["changes"]:
    g = ogr.CreateGeometryFromWkt(c["wkt"])
    x0, x1, y0, y1 = g.GetEnvelope()
    c0, c1 = int((x0 - gt[0]) / gt[1]) - 1, int((x1 - gt[0]) / gt[1]) + 2
    r0, r1 = int((y1 - gt[3]) / gt[5]) - 1, int((y0 - gt[3]) / gt[5]) + 2
    for r in range(max(r0, 0), min(r1, h)):
        for col in range(max(c0, 0), min(c1, w)):
            p = ogr.Geometry(ogr.wkbPoint)
            p.AddPoint_2D(gt[0] + (col + 0.5) * gt[1], gt[3] + (r + 0.5) * gt[5])
            if g.Contains(p):
                truth_map[r, col] = names.index(c["category"])
            else:
                x0p, y0p = gt[0] + col * gt[1], gt[3] + r * gt[5]
                sq = ogr.CreateGeometryFromWkt(
                    f"POLYGON(({x0p} {y0p},{x0p + gt[1]} {y0p},{x0p + gt[1]} {y0p + gt[5]},"
                    f"{x0p} {y0p + gt[5]},{x0p} {y0p}))")
                if g.Intersects(sq):
                    edge[r, col] = True
valid = (cls != 255) & ~(edge & (truth_map == 0))
print(f"valid {valid.sum()} of {cls.size}")
for k in range(1, 7):
    tp = ((cls == k) & (truth_map == k) & valid).sum()
    fp = ((cls == k) & (truth_map != k) & valid).sum()
    fn = ((cls != k) & (truth_map == k) & valid).sum()
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    f1 = 2 * p * r / max(p + r, 1e-12)
    print(f"{names[k]:16s} tp {tp:6d} fp {fp:6d} fn {fn:6d}  precision {p:.3f} recall {r:.3f} F1 {f1:.3f}")
unchanged = (truth_map == 0) & valid
print(f"unchanged flagged: {((cls != 0) & unchanged).sum() / max(unchanged.sum(), 1) * 100:.3f} %")
# Confusion of the planted pixels
conf = np.zeros((7, 7), int)
for t in range(7):
    for p_ in range(7):
        conf[t, p_] = ((truth_map == t) & (cls == p_) & valid).sum()
print("confusion (rows truth, cols map):")
for t in range(7):
    print(f"{names[t]:16s}", " ".join(f"{v:7d}" for v in conf[t]))
