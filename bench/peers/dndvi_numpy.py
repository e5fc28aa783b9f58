#!/usr/bin/python3
"""A windowed NumPy peer: the single-rule change map (dNDVI below a threshold) with both dates'
Sentinel-2 SCL cloud masks, block by block, with GDAL's Python bindings. Byte output: 1 change,
0 no change, 255 masked.
usage: dndvi_numpy.py D1.tif D2.tif SCL1.tif SCL2.tif RED NIR THRESHOLD OUT.tif [creation options]"""
import sys

import numpy as np
from osgeo import gdal

gdal.UseExceptions()
d1, d2, m1, m2 = (gdal.Open(p) for p in sys.argv[1:5])
red_b, nir_b, thr, dst = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
co = sys.argv[9:]
w, h = d1.RasterXSize, d1.RasterYSize
out = gdal.GetDriverByName("GTiff").Create(dst, w, h, 1, gdal.GDT_Byte, co)
out.SetGeoTransform(d1.GetGeoTransform())
out.SetProjection(d1.GetProjection())
ob = out.GetRasterBand(1)
ob.SetNoDataValue(255)
bad = np.array([0, 1, 3, 8, 9, 10])  # SCL: no data, defective, shadow, cloud, cirrus
step = 512


def ndvi(ds, y, rows):
    r = ds.GetRasterBand(red_b).ReadAsArray(0, y, w, rows).astype(np.float32)
    n = ds.GetRasterBand(nir_b).ReadAsArray(0, y, w, rows).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (n - r) / (n + r)


def mask(ds, y, rows):
    # The mask may be coarser (Sentinel-2 SCL at 20 m): nearest neighbour onto the 10 m rows.
    f = w // ds.RasterXSize
    return ds.ReadAsArray(0, y // f, ds.RasterXSize, -(-rows // f), buf_xsize=w,
                          buf_ysize=rows)


for y in range(0, h, step):
    rows = min(step, h - y)
    d = ndvi(d2, y, rows) - ndvi(d1, y, rows)
    masked = np.isin(mask(m1, y, rows), bad) | np.isin(mask(m2, y, rows), bad)
    v = (d < thr).astype(np.uint8)
    v[masked | ~np.isfinite(d)] = 255
    ob.WriteArray(v, 0, y)
out = None
