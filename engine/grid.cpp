#include "engine/grid.hpp"

#include <gdal_priv.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/error.hpp"

namespace fw {

Extent Extent::intersection(const Extent& o) const {
  return {std::max(xmin, o.xmin), std::max(ymin, o.ymin), std::min(xmax, o.xmax),
          std::min(ymax, o.ymax)};
}

Extent Extent::united(const Extent& o) const {
  if (empty()) return o;
  if (o.empty()) return *this;
  return {std::min(xmin, o.xmin), std::min(ymin, o.ymin), std::max(xmax, o.xmax),
          std::max(ymax, o.ymax)};
}

Window Window::intersection(const Window& o) const {
  const int64_t x0 = std::max(x, o.x), y0 = std::max(y, o.y);
  const int64_t x1 = std::min(x_end(), o.x_end()), y1 = std::min(y_end(), o.y_end());
  if (x1 <= x0 || y1 <= y0) return {x0, y0, 0, 0};
  return {x0, y0, x1 - x0, y1 - y0};
}

GeoTransform GeoTransform::from_gdal(const double* gt, bool allow_rotated) {
  GeoTransform t;
  std::copy(gt, gt + 6, t.c.begin());
  if (!allow_rotated && !t.north_up()) {
    throw_input("rotated or sheared geotransform (" + std::to_string(gt[2]) + ", " +
                std::to_string(gt[4]) +
                ") is not supported; warp the raster to a north-up grid first (gdalwarp)");
  }
  if (t.pixel_area() == 0.0 || !std::isfinite(t.pixel_area())) {
    throw_input("geotransform has a zero or invalid pixel size");
  }
  return t;
}

GeoTransform GeoTransform::north_up(double x0, double y0, double pw, double ph) {
  GeoTransform t;
  t.c = {x0, pw, 0.0, y0, 0.0, -ph};
  return t;
}

void GeoTransform::pixel_to_world(double col, double row, double& x, double& y) const {
  x = c[0] + col * c[1] + row * c[2];
  y = c[3] + col * c[4] + row * c[5];
}

void GeoTransform::world_to_pixel(double x, double y, double& col, double& row) const {
  const double det = c[1] * c[5] - c[2] * c[4];
  const double dx = x - c[0], dy = y - c[3];
  col = (dx * c[5] - dy * c[2]) / det;
  row = (dy * c[1] - dx * c[4]) / det;
}

Grid::Grid(GeoTransform gt, int64_t width, int64_t height, Crs crs)
    : gt_(gt), width_(width), height_(height), crs_(std::move(crs)) {}

Grid Grid::of(GDALDataset& ds, const std::string& path) {
  double gt[6];
  if (ds.GetGeoTransform(gt) != CE_None) {
    throw_input("raster has no geotransform (it is not georeferenced)", {.file = path});
  }
  try {
    return Grid(GeoTransform::from_gdal(gt), ds.GetRasterXSize(), ds.GetRasterYSize(),
                Crs::from_ogr(ds.GetSpatialRef()));
  } catch (const Error& e) {
    throw e.with({.file = path});
  }
}

Extent Grid::extent() const {
  return extent_of(full_window());
}

Extent Grid::extent_of(const Window& w) const {
  double x0, y0, x1, y1;
  gt_.pixel_to_world(static_cast<double>(w.x), static_cast<double>(w.y), x0, y0);
  gt_.pixel_to_world(static_cast<double>(w.x_end()), static_cast<double>(w.y_end()), x1, y1);
  return {std::min(x0, x1), std::min(y0, y1), std::max(x0, x1), std::max(y0, y1)};
}

Window Grid::window_of(const Extent& e) const {
  double c0, r0, c1, r1;
  gt_.world_to_pixel(e.xmin, e.ymax, c0, r0);
  gt_.world_to_pixel(e.xmax, e.ymin, c1, r1);
  if (c0 > c1) std::swap(c0, c1);
  if (r0 > r1) std::swap(r0, r1);
  const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(c0)));
  const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(r0)));
  const int64_t x1 = std::min<int64_t>(width_, static_cast<int64_t>(std::ceil(c1)));
  const int64_t y1 = std::min<int64_t>(height_, static_cast<int64_t>(std::ceil(r1)));
  if (x1 <= x0 || y1 <= y0) return {x0, y0, 0, 0};
  return {x0, y0, x1 - x0, y1 - y0};
}

Grid Grid::subgrid(const Window& w) const {
  GeoTransform t = gt_;
  gt_.pixel_to_world(static_cast<double>(w.x), static_cast<double>(w.y), t.c[0], t.c[3]);
  return Grid(t, w.w, w.h, crs_);
}

bool Grid::compatible_with(const Grid& o, double tol) const {
  if (!crs_.same_as(o.crs_)) return false;
  for (int i : {1, 2, 4, 5}) {
    const double ref = std::max(std::abs(gt_.c[1]), std::abs(gt_.c[5]));
    if (std::abs(gt_.c[i] - o.gt_.c[i]) > tol * ref) return false;
  }
  double col, row;
  gt_.world_to_pixel(o.gt_.c[0], o.gt_.c[3], col, row);
  return std::abs(col - std::round(col)) <= tol && std::abs(row - std::round(row)) <= tol;
}

bool Grid::same_as(const Grid& o, double tol) const {
  if (width_ != o.width_ || height_ != o.height_ || !compatible_with(o, tol)) return false;
  int64_t dc, dr;
  offset_of(o, dc, dr);
  return dc == 0 && dr == 0;
}

void Grid::offset_of(const Grid& o, int64_t& dcol, int64_t& drow) const {
  double col, row;
  gt_.world_to_pixel(o.gt_.c[0], o.gt_.c[3], col, row);
  dcol = static_cast<int64_t>(std::llround(col));
  drow = static_cast<int64_t>(std::llround(row));
}

std::string Grid::describe() const {
  std::ostringstream s;
  s.precision(12);
  s << width_ << "x" << height_ << " pixels of " << dx() << " x " << dy() << " at (" << gt_.c[0]
    << ", " << gt_.c[3] << ")";
  if (!crs_.empty()) s << " in " << crs_.authority();
  return s.str();
}

Grid common_grid(const std::vector<Grid>& grids, GridUnion mode, double tol) {
  if (grids.empty()) throw_internal("common_grid of no grids");
  const Grid& ref = grids.front();
  // Work in pixel coordinates of the first grid.
  int64_t x0 = 0, y0 = 0, x1 = ref.width(), y1 = ref.height();
  for (std::size_t i = 1; i < grids.size(); ++i) {
    const Grid& g = grids[i];
    if (!ref.compatible_with(g, tol)) {
      throw_input("grids are not compatible: " + ref.describe() + " and " + g.describe() +
                  " (they need the same CRS, pixel size and pixel alignment; warp one of them)");
    }
    int64_t dc, dr;
    ref.offset_of(g, dc, dr);
    if (mode == GridUnion::kIntersection) {
      x0 = std::max(x0, dc), y0 = std::max(y0, dr);
      x1 = std::min(x1, dc + g.width()), y1 = std::min(y1, dr + g.height());
    } else {
      x0 = std::min(x0, dc), y0 = std::min(y0, dr);
      x1 = std::max(x1, dc + g.width()), y1 = std::max(y1, dr + g.height());
    }
  }
  if (x1 <= x0 || y1 <= y0) throw_input("the grids do not overlap");
  return ref.subgrid({x0, y0, x1 - x0, y1 - y0});
}

}  // namespace fw
