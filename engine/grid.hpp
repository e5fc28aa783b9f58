// The grid model: geotransforms, extents, pixel windows, grids and their compatibility.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/crs.hpp"

class GDALDataset;

namespace fw {

// An axis-aligned rectangle in world coordinates.
struct Extent {
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;

  bool empty() const { return !(xmax > xmin && ymax > ymin); }
  double width() const { return xmax - xmin; }
  double height() const { return ymax - ymin; }
  double area() const { return empty() ? 0.0 : width() * height(); }
  Extent intersection(const Extent& o) const;
  Extent united(const Extent& o) const;
  bool intersects(const Extent& o) const { return !intersection(o).empty(); }
  bool contains(double x, double y) const {
    return x >= xmin && x <= xmax && y >= ymin && y <= ymax;
  }
  bool operator==(const Extent&) const = default;
};

// A rectangle of pixels: column/row offset and size.
struct Window {
  int64_t x = 0, y = 0, w = 0, h = 0;

  bool empty() const { return w <= 0 || h <= 0; }
  int64_t pixels() const { return empty() ? 0 : w * h; }
  int64_t x_end() const { return x + w; }
  int64_t y_end() const { return y + h; }
  Window intersection(const Window& o) const;
  bool contains(int64_t col, int64_t row) const {
    return col >= x && col < x + w && row >= y && row < y + h;
  }
  bool operator==(const Window&) const = default;
};

// GDAL's affine geotransform: x = c[0] + col*c[1] + row*c[2]; y = c[3] + col*c[4] + row*c[5].
struct GeoTransform {
  std::array<double, 6> c{0, 1, 0, 0, 0, -1};

  // From GDAL's six coefficients. Throws fw::Error (input) for rotated or sheared transforms
  // unless allow_rotated, and for a zero pixel size.
  static GeoTransform from_gdal(const double* gt, bool allow_rotated = false);
  static GeoTransform north_up(double x_origin, double y_origin, double pixel_w, double pixel_h);

  bool north_up() const { return c[2] == 0.0 && c[4] == 0.0; }
  double pixel_width() const { return c[1]; }
  double pixel_height() const { return -c[5]; }  // positive for north-up
  double pixel_area() const { return std::abs(c[1] * c[5] - c[2] * c[4]); }

  // Pixel coordinates (col, row, fractional; the pixel (0,0) spans [0,1) x [0,1)) to world.
  void pixel_to_world(double col, double row, double& x, double& y) const;
  // World to fractional pixel coordinates (inverse of pixel_to_world).
  void world_to_pixel(double x, double y, double& col, double& row) const;

  bool operator==(const GeoTransform&) const = default;
};

// A raster grid: geotransform, size and CRS.
class Grid {
 public:
  Grid() = default;
  Grid(GeoTransform gt, int64_t width, int64_t height, Crs crs = {});
  // The grid of an open dataset; throws for datasets without a geotransform or rotated ones.
  static Grid of(GDALDataset& ds, const std::string& path_for_errors = {});

  const GeoTransform& transform() const { return gt_; }
  int64_t width() const { return width_; }
  int64_t height() const { return height_; }
  const Crs& crs() const { return crs_; }
  double dx() const { return gt_.pixel_width(); }
  double dy() const { return gt_.pixel_height(); }
  Window full_window() const { return {0, 0, width_, height_}; }

  Extent extent() const;
  Extent extent_of(const Window& w) const;
  // The smallest window holding every pixel that touches the extent, clipped to the grid.
  Window window_of(const Extent& e) const;
  // A grid covering only `w` (which may extend outside this grid).
  Grid subgrid(const Window& w) const;
  // Same pixel size, same CRS and origins aligned to a whole number of pixels, within `tol`
  // (a fraction of a pixel).
  bool compatible_with(const Grid& other, double tol = 1e-6) const;
  // Same as compatible_with and the same size and origin: pixels correspond one to one.
  bool same_as(const Grid& other, double tol = 1e-6) const;
  // The offset, in whole pixels, of `other`'s origin on this grid. Requires compatible grids.
  void offset_of(const Grid& other, int64_t& dcol, int64_t& drow) const;

  std::string describe() const;

 private:
  GeoTransform gt_;
  int64_t width_ = 0, height_ = 0;
  Crs crs_;
};

enum class GridUnion { kIntersection, kUnion };

// A common grid for compatible grids: their intersection (or union) on the first grid's
// lattice. Throws fw::Error (input) if the grids are not compatible or do not overlap.
Grid common_grid(const std::vector<Grid>& grids, GridUnion mode = GridUnion::kIntersection,
                 double tol = 1e-6);

}  // namespace fw
