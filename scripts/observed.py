"""Shared by the evaluation scripts: whether a planted change was observed in a change map."""
from osgeo import gdal


class ChangeMap:
    """A farmwatch change_class.tif (no data 255), or None for 'everything observed'."""

    def __init__(self, path):
        self.ds = gdal.Open(path) if path else None
        if self.ds:
            self.band, self.gt = self.ds.GetRasterBand(1), self.ds.GetGeoTransform()

    def masked_near(self, geom):
        """Whether a no-data cell (cloud, shadow, mask buffer) lies within one cell of geom."""
        if self.ds is None:
            return False
        gt = self.gt
        x0, x1, y0, y1 = geom.Buffer(gt[1] * 1.5).GetEnvelope()
        c0, c1 = int((x0 - gt[0]) / gt[1]), int((x1 - gt[0]) / gt[1]) + 1
        r0, r1 = int((y1 - gt[3]) / gt[5]), int((y0 - gt[3]) / gt[5]) + 1
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, self.ds.RasterXSize), min(r1, self.ds.RasterYSize)
        if c1 <= c0 or r1 <= r0:
            return False
        return bool((self.band.ReadAsArray(c0, r0, c1 - c0, r1 - r0) == 255).any())
