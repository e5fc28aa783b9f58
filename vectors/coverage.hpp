// Coverage of raster cells by polygons.
//
// Exact mode: the share of each cell's area inside the polygon, computed analytically by cell
// traversal: every edge is walked through the cells it crosses, depositing in each the signed
// area between the edge and the cell's right side, and its vertical extent ("cover") in the cell
// to its right; a running sum along each row then gives, for every cell, the exact area of the
// polygon inside it (Green's theorem, summed edge by edge; no supersampling, no rasterisation).
// Holes subtract, parts add. Rows are independent, so a polygon is evaluated over any window
// (a raster block, the raster, or its own bounding box) with the same results.
//
// Center mode: a cell counts (fraction 1) when its centre is inside (even-odd rule over all
// rings, as GDAL's rasterizer and rasterstats do). All-touched mode: a cell counts when the
// polygon's interior overlaps it, or its boundary passes through it.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "engine/grid.hpp"

class OGRGeometry;

namespace fw::vectors {

enum class CoverageMode { kExact, kCenter, kAllTouched };
CoverageMode parse_coverage_mode(const std::string& s);  // exact, center, all_touched
const char* coverage_mode_name(CoverageMode m);

// A polygon or multipolygon in pixel coordinates of a grid (x = column, y = row, y down; the
// cell (c, r) spans [c, c+1) x [r, r+1)). Rings are closed implicitly.
struct PixelPolygon {
  struct Ring {
    std::vector<std::array<double, 2>> pts;
    bool hole = false;
  };
  std::vector<Ring> rings;
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;  // bounding box

  // From an OGR Polygon or MultiPolygon (other types: empty) on a north-up transform.
  static PixelPolygon from_ogr(const OGRGeometry& g, const GeoTransform& gt);
  bool empty() const { return rings.empty(); }
  // Area in pixel units (holes subtracted).
  double area() const;
  // The cells its bounding box touches, clipped to `clip`.
  Window window(const Window& clip) const;
};

// Fractions over `win` (row-major, win.pixels() values); cells outside the polygon are 0.
// `scratch` is reused between calls to avoid allocations.
void coverage(const PixelPolygon& p, const Window& win, CoverageMode mode, std::vector<double>& out,
              std::vector<double>& scratch);

}  // namespace fw::vectors
