#!/usr/bin/python3
"""A windowed NumPy peer: NDVI of one date, block by block, with GDAL's Python bindings.
usage: ndvi_numpy.py IN.tif RED_BAND NIR_BAND OUT.tif [creation options...]"""
import sys

import numpy as np
from osgeo import gdal

gdal.UseExceptions()
src, red_b, nir_b, dst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
co = sys.argv[5:]
ds = gdal.Open(src)
red, nir = ds.GetRasterBand(red_b), ds.GetRasterBand(nir_b)
w, h = ds.RasterXSize, ds.RasterYSize
out = gdal.GetDriverByName("GTiff").Create(dst, w, h, 1, gdal.GDT_Float32, co)
out.SetGeoTransform(ds.GetGeoTransform())
out.SetProjection(ds.GetProjection())
ob = out.GetRasterBand(1)
ob.SetNoDataValue(-9999)
step = 512
for y in range(0, h, step):
    rows = min(step, h - y)
    r = red.ReadAsArray(0, y, w, rows).astype(np.float32)
    n = nir.ReadAsArray(0, y, w, rows).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (n - r) / (n + r)
    v[~np.isfinite(v) | (r == 0) | (n == 0)] = -9999
    ob.WriteArray(v, 0, y)
out = None
