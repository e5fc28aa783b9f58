// Slope from a DEM: analytic surfaces (inclined planes, a cone), DEMs in another CRS or
// resolution, a geographic analysis grid, GDAL's own gdaldem (Horn) on a rough surface, thread-
// and window-independence, per-parcel steep shares across a kink, nodata and bad input.
#include <gdal_utils.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include "engine/crs.hpp"
#include "engine/error.hpp"
#include "rasters/terrain.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"
#include "vectors/zonal.hpp"

namespace fw {
namespace {

constexpr float kNodata = -9999.0f;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double degrees(double gradient) {
  return std::atan(gradient) * 180.0 / std::numbers::pi;
}

// z(x, y) in world coordinates of `grid`, at every pixel centre, row-major.
using Surface = std::function<double(double x, double y)>;
std::vector<float> sample(const Grid& grid, const Surface& z) {
  std::vector<float> v(static_cast<std::size_t>(grid.width() * grid.height()));
  for (int64_t r = 0; r < grid.height(); ++r) {
    for (int64_t c = 0; c < grid.width(); ++c) {
      double x, y;
      grid.transform().pixel_to_world(static_cast<double>(c) + 0.5, static_cast<double>(r) + 0.5, x,
                                      y);
      v[test::px(c, r, grid.width())] = static_cast<float>(z(x, y));
    }
  }
  return v;
}

// A Float32 DEM of `z` on `grid`.
void write_dem(const std::string& path, const Grid& grid, const Surface& z,
               std::optional<double> nodata = std::nullopt) {
  test::write_raster<float>(path, grid, {sample(grid, z)}, {}, nodata);
}

rasters::SlopeResult slope(const std::string& dem, const Grid& grid, const std::string& out,
                           const SchedulerOptions& so = {}, double z_factor = 1.0) {
  rasters::SlopeOptions o;
  o.dem = dem;
  o.z_factor = z_factor;
  o.out = out;
  return rasters::compute_slope(o, grid, so);
}

std::vector<float> read_slope(const std::string& path) {
  DatasetPtr ds = open_raster(path);
  return test::read_band<float>(*ds);
}

// The largest |slope - want| over the pixels off the raster's edges, every one of them with a
// slope (a nodata pixel there fails the test).
double worst_inside(const std::vector<float>& s, const Grid& g, double want) {
  double worst = 0;
  int64_t checked = 0;
  for (int64_t r = 1; r + 1 < g.height(); ++r) {
    for (int64_t c = 1; c + 1 < g.width(); ++c) {
      const float v = s[test::px(c, r, g.width())];
      EXPECT_NE(v, kNodata) << c << "," << r;
      if (v == kNodata) return std::numeric_limits<double>::infinity();
      worst = std::max(worst, std::abs(v - want));
      ++checked;
    }
  }
  EXPECT_EQ(checked, (g.width() - 2) * (g.height() - 2));
  return worst;
}

// Horn's slope (degrees) at (c, r) of `z` (w x h, row-major, NaN = nodata) with pixel sizes dx,
// dy, by the rules terrain.hpp states, written out independently: a neighbour outside the raster
// takes the nearest inside cell, a NaN neighbour the centre's value; a NaN centre gives NaN.
template <class T>
double reference_slope(const std::vector<T>& z, int64_t w, int64_t h, int64_t c, int64_t r,
                       double dx, double dy) {
  const double e = static_cast<double>(z[test::px(c, r, w)]);
  if (std::isnan(e)) return kNaN;
  double n[3][3];
  for (int i = -1; i <= 1; ++i) {
    for (int j = -1; j <= 1; ++j) {
      const int64_t rr = std::clamp<int64_t>(r + i, 0, h - 1);
      const int64_t cc = std::clamp<int64_t>(c + j, 0, w - 1);
      const double v = static_cast<double>(z[test::px(cc, rr, w)]);
      n[i + 1][j + 1] = std::isnan(v) ? e : v;
    }
  }
  const double gx =
      ((n[0][2] + 2 * n[1][2] + n[2][2]) - (n[0][0] + 2 * n[1][0] + n[2][0])) / (8 * dx);
  const double gy =
      ((n[2][0] + 2 * n[2][1] + n[2][2]) - (n[0][0] + 2 * n[0][1] + n[0][2])) / (8 * dy);
  return degrees(std::hypot(gx, gy));
}

bool on_edge(int64_t c, int64_t r, const Grid& g) {
  return c == 0 || r == 0 || c == g.width() - 1 || r == g.height() - 1;
}

// Whether every pixel within `k` of (c, r) is inside the grid and has a slope.
bool valid_around(const std::vector<float>& s, const Grid& g, int64_t c, int64_t r, int k) {
  for (int64_t rr = r - k; rr <= r + k; ++rr) {
    for (int64_t cc = c - k; cc <= c + k; ++cc) {
      if (cc < 0 || rr < 0 || cc >= g.width() || rr >= g.height()) return false;
      if (s[test::px(cc, rr, g.width())] == kNodata) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------

TEST(Terrain, InclinedPlaneHasItsAnalyticSlope) {
  test::TempDir d;
  const Grid g = test::utm_grid(300, 200);  // 10 m
  const double x0 = test::kOriginX, y0 = test::kOriginY - 2000.0;
  const Surface plane = [&](double x, double y) { return 0.2 * (x - x0) + 0.1 * (y - y0); };
  write_dem(d / "dem.tif", g, plane);
  const rasters::SlopeResult res = slope(d / "dem.tif", g, d / "slope.tif");
  const std::vector<float> s = read_slope(d / "slope.tif");
  const double inside = degrees(std::hypot(0.2, 0.1));  // 12.6044
  // On the edges the missing neighbours are the nearest inside cells: the gradient across the
  // edge is halved (0.2 -> 0.1 on the west and east columns, 0.1 -> 0.05 on the north and south
  // rows).
  const double we = degrees(std::hypot(0.1, 0.1)), ns = degrees(std::hypot(0.2, 0.05));
  const double corner = degrees(std::hypot(0.1, 0.05));
  double worst = 0, worst_edge = 0;
  for (int64_t r = 0; r < g.height(); ++r) {
    for (int64_t c = 0; c < g.width(); ++c) {
      const bool col_edge = c == 0 || c == g.width() - 1;
      const bool row_edge = r == 0 || r == g.height() - 1;
      const double want = col_edge && row_edge ? corner : col_edge ? we : row_edge ? ns : inside;
      double& w = col_edge || row_edge ? worst_edge : worst;
      w = std::max(w, std::abs(s[test::px(c, r, g.width())] - want));
    }
  }
  EXPECT_LT(worst, 1e-4) << "expected " << inside;
  EXPECT_LT(worst_edge, 1e-4);
  std::printf("plane: max |slope - %.6f| = %.3g deg (edges %.3g)\n", inside, worst, worst_edge);
  // The summary: every pixel valid, the corners the gentlest, the inside the steepest; the mean
  // is the raster's.
  EXPECT_EQ(res.file, d / "slope.tif");
  EXPECT_EQ(res.valid, g.width() * g.height());
  EXPECT_NEAR(res.min, corner, 1e-4);
  EXPECT_NEAR(res.max, inside, 1e-4);
  double sum = 0;
  for (float v : s) sum += v;
  EXPECT_NEAR(res.mean, sum / static_cast<double>(s.size()), 1e-9);
  // The file: Float32, nodata -9999, described.
  DatasetPtr ds = open_raster(d / "slope.tif");
  GDALRasterBand* b = ds->GetRasterBand(1);
  EXPECT_EQ(b->GetRasterDataType(), GDT_Float32);
  int has = 0;
  EXPECT_EQ(b->GetNoDataValue(&has), -9999.0);
  EXPECT_TRUE(has);
  EXPECT_STREQ(b->GetDescription(), "slope");
  for (const char* key : {"UNITS", "METHOD", "SOURCE"}) {
    ASSERT_NE(ds->GetMetadataItem(key), nullptr) << key;
  }
  EXPECT_STREQ(ds->GetMetadataItem("UNITS"), "degrees");
  EXPECT_STREQ(ds->GetMetadataItem("METHOD"), "Horn 1981");
  EXPECT_EQ(std::string(ds->GetMetadataItem("SOURCE")), d / "dem.tif");
  EXPECT_TRUE(Grid::of(*ds).same_as(g));

  // The same plane in feet, with z_factor 0.3048: the same slope (to Float32 rounding of the
  // elevations in feet, which are not whole multiples of a power of two here: ~6e-5 deg).
  write_dem(d / "feet.tif", g, [&](double x, double y) { return plane(x, y) / 0.3048; });
  slope(d / "feet.tif", g, d / "slope_feet.tif", {}, 0.3048);
  const std::vector<float> sf = read_slope(d / "slope_feet.tif");
  double worst_feet = 0;
  for (int64_t r = 1; r + 1 < g.height(); ++r) {
    for (int64_t c = 1; c + 1 < g.width(); ++c) {
      worst_feet = std::max(worst_feet, std::abs(sf[test::px(c, r, g.width())] - inside));
    }
  }
  EXPECT_LT(worst_feet, 1e-3);
  std::printf("plane in feet: max error %.3g deg\n", worst_feet);
}

// Pixels 10 m wide and 25 m tall, a gradient pointing neither along a row nor along a column,
// and a DEM stored as Int32 centimetres with the band's scale (0.01) and offset (50 m).
TEST(Terrain, PlaneOnNonSquarePixelsWithScaledDem) {
  test::TempDir d;
  const double x0 = test::kOriginX, y0 = test::kOriginY;
  const Grid g(GeoTransform::north_up(x0, y0, 10.0, 25.0), 240, 130, Crs::from_epsg(32650));
  const double gx = -0.35, gy = 0.6;
  // At pixel centres x - x0 = 5 + 10 c and y0 - y = 12.5 + 25 r: whole centimetres.
  const Surface plane = [&](double x, double y) { return 400.0 + gx * (x - x0) + gy * (y - y0); };
  const std::vector<float> z = sample(g, plane);
  std::vector<int32_t> cm(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) {
    cm[i] = static_cast<int32_t>(std::lround((static_cast<double>(z[i]) - 50.0) * 100.0));
  }
  test::write_raster<int32_t>(d / "dem.tif", g, {cm});
  {
    DatasetPtr ds = open_raster(d / "dem.tif", true);
    ds->GetRasterBand(1)->SetScale(0.01);
    ds->GetRasterBand(1)->SetOffset(50.0);
    close_dataset(ds, d / "dem.tif");
  }
  slope(d / "dem.tif", g, d / "slope.tif");
  const std::vector<float> s = read_slope(d / "slope.tif");
  const double want = degrees(std::hypot(gx, gy));  // 34.78
  double worst = 0;
  for (int64_t r = 1; r + 1 < g.height(); ++r) {
    for (int64_t c = 1; c + 1 < g.width(); ++c) {
      worst = std::max(worst, std::abs(s[test::px(c, r, g.width())] - want));
    }
  }
  EXPECT_LT(worst, 1e-4) << "expected " << want;
  std::printf("non-square pixels: max |slope - %.6f| = %.3g deg\n", want, worst);
}

// A cone z = h - k r. Horn's 3 x 3 differences are exact on planes only: on the cone their
// truncation error falls off as 1/r^2 (about 3.8 deg / r^2, r in pixels, for k = 0.3), so the
// analytic slope atan(k) holds to 0.1 deg from r > 7 pixels; closer in, the result must still be
// Horn's formula applied to the exact cone, which is checked everywhere.
TEST(Terrain, ConeHasSlopeAtanKAwayFromTheApex) {
  test::TempDir d;
  const int64_t n = 161;
  const Grid g = test::utm_grid(n, n);
  double cx, cy;  // the apex: the centre of the middle pixel
  g.transform().pixel_to_world(80.5, 80.5, cx, cy);
  const double k = 0.3;
  const Surface cone = [&](double x, double y) { return 500.0 - k * std::hypot(x - cx, y - cy); };
  write_dem(d / "dem.tif", g, cone);
  slope(d / "dem.tif", g, d / "slope.tif");
  const std::vector<float> s = read_slope(d / "slope.tif");
  std::vector<double> exact(s.size());  // the cone in double, not through the file
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      exact[test::px(c, r, n)] =
          cone(cx + 10.0 * static_cast<double>(c - 80), cy - 10.0 * static_cast<double>(r - 80));
    }
  }
  const double want = degrees(k);  // 16.6992
  double worst_far = 0, worst_horn = 0;
  int64_t far = 0;
  for (int64_t r = 2; r < n - 2; ++r) {
    for (int64_t c = 2; c < n - 2; ++c) {
      const double v = s[test::px(c, r, n)];
      worst_horn = std::max(worst_horn, std::abs(v - reference_slope(exact, n, n, c, r, 10, 10)));
      if (std::hypot(static_cast<double>(c - 80), static_cast<double>(r - 80)) > 7.0) {
        worst_far = std::max(worst_far, std::abs(v - want));
        ++far;
      }
    }
  }
  EXPECT_GT(far, 20000);
  EXPECT_LT(worst_far, 0.1) << "expected " << want;
  EXPECT_LT(worst_horn, 1e-3);
  EXPECT_LT(s[test::px(80, 80, n)], 1e-3);  // the apex: symmetric differences cancel
  std::printf(
      "cone: max |slope - %.6f| = %.3g deg for r > 7 px; max |slope - Horn(exact)| = %.3g\n", want,
      worst_far, worst_horn);
}

// ---------------------------------------------------------------------------------------------
// DEMs on other grids are warped bilinearly onto the analysis grid. Bilinear interpolation
// from a finer analysis grid reproduces a plane exactly, so inside the DEM's coverage the slope
// stays the plane's and only Float32 rounding is left (measured: under 0.001 deg). The tolerance
// is 0.01 deg: a wide margin over that, and still 10x tighter than the 0.1 deg or more that a
// resampling bug (a half-pixel shift, a wrong pixel size) costs at the slopes used (13-16 deg).

TEST(Terrain, CoarserShiftedDemInTheSameCrs) {
  test::TempDir d;
  const Grid g = test::utm_grid(300, 200);  // 10 m
  // 30 m pixels, the origin 97 m west and 73 m north of the grid's, covering it with margin.
  const Grid dem = test::utm_grid(110, 75, 30.0, test::kOriginX - 97.0, test::kOriginY + 73.0);
  const double x0 = test::kOriginX, y0 = test::kOriginY;
  write_dem(d / "dem.tif", dem,
            [&](double x, double y) { return 300.0 + 0.15 * (x - x0) - 0.25 * (y - y0); });
  slope(d / "dem.tif", g, d / "slope.tif");
  const std::vector<float> s = read_slope(d / "slope.tif");
  const double want = degrees(std::hypot(0.15, 0.25));  // 16.26
  const double worst = worst_inside(s, g, want);
  EXPECT_LT(worst, 0.01) << "expected " << want;
  std::printf("30 m shifted DEM: max |slope - %.6f| = %.3g deg\n", want, worst);
}

// A DEM in geographic coordinates (0.0002 deg, about 19 x 21 m) over the UTM grid, holding the
// plane z = 0.2 E - 0.12 N of the UTM coordinates at each of its pixel centres. Over 20 m the
// UTM <-> geographic map is affine to ~1e-7 relative, so bilinear interpolation still
// reproduces the plane.
TEST(Terrain, GeographicDemOnAUtmGrid) {
  test::TempDir d;
  const Grid g = test::utm_grid(300, 200);
  const Crs utm = Crs::from_epsg(32650), wgs84 = Crs::from_epsg(4326);
  const Extent ll = transform_extent(g.extent(), utm, wgs84);
  const double res = 0.0002, margin = 0.002;
  const double lon0 = ll.xmin - margin, lat0 = ll.ymax + margin;
  const Grid dem(GeoTransform::north_up(lon0, lat0, res, res),
                 static_cast<int64_t>(std::ceil((ll.width() + 2 * margin) / res)),
                 static_cast<int64_t>(std::ceil((ll.height() + 2 * margin) / res)), wgs84);
  std::vector<double> xs, ys;
  for (int64_t r = 0; r < dem.height(); ++r) {
    for (int64_t c = 0; c < dem.width(); ++c) {
      double x, y;
      dem.transform().pixel_to_world(static_cast<double>(c) + 0.5, static_cast<double>(r) + 0.5, x,
                                     y);
      xs.push_back(x);
      ys.push_back(y);
    }
  }
  CoordTransform(wgs84, utm).transform(xs.data(), ys.data(), xs.size());
  const double x0 = test::kOriginX, y0 = test::kOriginY;
  std::vector<float> z(xs.size());
  for (std::size_t i = 0; i < z.size(); ++i) {
    z[i] = static_cast<float>(500.0 + 0.2 * (xs[i] - x0) - 0.12 * (ys[i] - y0));
  }
  test::write_raster<float>(d / "dem.tif", dem, {z});
  slope(d / "dem.tif", g, d / "slope.tif");
  const std::vector<float> s = read_slope(d / "slope.tif");
  const double want = degrees(std::hypot(0.2, 0.12));  // 13.19
  const double worst = worst_inside(s, g, want);
  EXPECT_LT(worst, 0.01) << "expected " << want;
  std::printf("EPSG:4326 DEM on UTM grid: max |slope - %.6f| = %.3g deg\n", want, worst);
}

// A geographic analysis grid (0.0001 deg: 9.6 m x 11.1 m at 30.7 N) over a UTM DEM of the plane
// z = 0.3 E + 0.05 N: horizontal distances are the degrees converted on the ellipsoid at each
// row's latitude. Two effects, both measured, keep the result off the grid-plane's slope:
// - ground and UTM grid distances differ by the point scale factor (0.9997 at 116 E in zone
//   50): the ground gradient is 0.03% smaller, -0.0045 deg (measured mean: -0.0043 deg);
// - the analysis pixels are taller (11.1 m) than the DEM's (10 m), so GDAL's warper widens its
//   bilinear kernel along y, and the widened kernel's discrete weights are not exactly centred:
//   a column-periodic error of up to +-0.01 deg (measured extremes -0.0137, +0.0114 deg).
// Hence 0.02 deg, while treating a degree as the same length east and north (no cos(lat))
// would be off by about 2 deg.
TEST(Terrain, GeographicAnalysisGridConvertsDegreesToMetres) {
  test::TempDir d;
  const Grid dem = test::utm_grid(400, 300);
  const double x0 = test::kOriginX, y0 = test::kOriginY;
  write_dem(d / "dem.tif", dem,
            [&](double x, double y) { return 100.0 + 0.3 * (x - x0) + 0.05 * (y - y0); });
  const Extent inner{dem.extent().xmin + 400, dem.extent().ymin + 400, dem.extent().xmax - 400,
                     dem.extent().ymax - 400};
  const Crs wgs84 = Crs::from_epsg(4326);
  const Extent ll = transform_extent(inner, dem.crs(), wgs84);
  const double res = 0.0001;
  const Grid g(GeoTransform::north_up(ll.xmin, ll.ymax, res, res),
               static_cast<int64_t>(ll.width() / res), static_cast<int64_t>(ll.height() / res),
               wgs84);
  ASSERT_GT(g.width(), 250);
  ASSERT_GT(g.height(), 150);
  slope(d / "dem.tif", g, d / "slope.tif");
  const std::vector<float> s = read_slope(d / "slope.tif");
  const double want = degrees(std::hypot(0.3, 0.05));  // 16.93
  const double worst = worst_inside(s, g, want);
  EXPECT_LT(worst, 0.02) << "expected " << want;
  std::printf("geographic analysis grid: max |slope - %.6f| = %.3g deg\n", want, worst);
}

// ---------------------------------------------------------------------------------------------

// GDAL's own Horn slope (gdaldem slope -compute_edges) on a rough surface with nodata holes:
// away from the raster's edges (where gdaldem extrapolates the missing row or column while we
// repeat the nearest one) the two agree, next to nodata cells included.
TEST(Terrain, AgreesWithGdaldemInside) {
  test::TempDir d;
  const Grid g = test::utm_grid(257, 190, 5.0);
  std::vector<float> z = sample(g, [](double x, double y) {
    return 300.0 + 40.0 * std::sin(x / 70.0) * std::cos(y / 45.0) + 3.0 * std::sin(x * y / 1e7);
  });
  uint32_t state = 12345;  // small deterministic noise: a rough surface
  for (float& v : z) {
    state = state * 1664525u + 1013904223u;
    v += static_cast<float>(state >> 8) / static_cast<float>(1u << 24) * 2.0f;
  }
  const float nd = -32768.0f;
  for (int64_t r = 20; r < 180; r += 37) {
    for (int64_t c = 15; c < 250; c += 29) z[test::px(c, r, g.width())] = nd;
  }
  for (int64_t r = 100; r < 104; ++r) {
    for (int64_t c = 60; c < 66; ++c) z[test::px(c, r, g.width())] = nd;
  }
  test::write_raster<float>(d / "dem.tif", g, {z}, {}, nd);
  slope(d / "dem.tif", g, d / "slope.tif");
  const std::vector<float> s = read_slope(d / "slope.tif");

  DatasetPtr src = open_raster(d / "dem.tif");
  CPLStringList args;
  for (const char* a : {"-of", "GTiff", "-compute_edges", "-alg", "Horn"}) args.AddString(a);
  GDALDEMProcessingOptions* opts = GDALDEMProcessingOptionsNew(args.List(), nullptr);
  ASSERT_NE(opts, nullptr);
  const std::string ref_path = d / "gdaldem.tif";
  GDALDatasetH out = GDALDEMProcessing(ref_path.c_str(), GDALDataset::ToHandle(src.get()), "slope",
                                       nullptr, opts, nullptr);
  GDALDEMProcessingOptionsFree(opts);
  ASSERT_NE(out, nullptr);
  GDALClose(out);
  DatasetPtr ref_ds = open_raster(ref_path);
  int has = 0;
  const float ref_nd = static_cast<float>(ref_ds->GetRasterBand(1)->GetNoDataValue(&has));
  ASSERT_TRUE(has);
  const std::vector<float> ref = test::read_band<float>(*ref_ds);
  double worst = 0, max_slope = 0;
  int64_t compared = 0, holes = 0;
  for (int64_t r = 1; r + 1 < g.height(); ++r) {
    for (int64_t c = 1; c + 1 < g.width(); ++c) {
      const std::size_t i = test::px(c, r, g.width());
      if (z[i] == nd) {
        EXPECT_EQ(s[i], kNodata) << c << "," << r;
        EXPECT_EQ(ref[i], ref_nd) << c << "," << r;
        ++holes;
        continue;
      }
      ASSERT_NE(ref[i], ref_nd) << c << "," << r;
      ASSERT_NE(s[i], kNodata) << c << "," << r;
      worst = std::max(worst, static_cast<double>(std::abs(s[i] - ref[i])));
      max_slope = std::max(max_slope, static_cast<double>(s[i]));
      ++compared;
    }
  }
  EXPECT_EQ(holes, 5 * 9 + 24);
  EXPECT_GT(max_slope, 30.0);  // a rough surface indeed
  EXPECT_LT(worst, 1e-3);
  std::printf("gdaldem: %lld pixels, max |ours - gdaldem| = %.3g deg (slopes up to %.1f deg)\n",
              static_cast<long long>(compared), worst, max_slope);
}

// ---------------------------------------------------------------------------------------------

// A grid of 1300 x 1100 pixels: with a 1 MiB budget the windows are single 512 x 512 tiles
// (boundaries at columns and rows 512 and 1024), with the default budget full-width strips. The
// raster has the same bits for 1 or 2 threads and either layout, and the pixels on both sides of
// every window boundary are Horn's slope of the DEM's values.
TEST(Terrain, SameBitsForAnyThreadsAndWindows) {
  test::TempDir d;
  const Grid g = test::utm_grid(1300, 1100);
  const double x0 = test::kOriginX, y0 = test::kOriginY;
  write_dem(d / "dem.tif", g, [&](double x, double y) {
    return 600.0 + 80.0 * std::sin((x - x0) / 700.0) * std::cos((y - y0) / 450.0) + 0.05 * (x - x0);
  });
  const std::vector<float> dem = [&] {
    DatasetPtr ds = open_raster(d / "dem.tif");
    return test::read_band<float>(*ds);
  }();
  struct Config {
    int threads;
    double mib;
  };
  const std::vector<Config> configs = {{1, 1}, {2, 1}, {2, 0}, {1, 0}, {2, 3}};
  std::vector<std::vector<float>> outs;
  std::vector<rasters::SlopeResult> results;
  for (const Config& cfg : configs) {
    const std::string out = d / ("slope_" + std::to_string(outs.size()) + ".tif");
    results.push_back(
        slope(d / "dem.tif", g, out, {.threads = cfg.threads, .memory_mib = cfg.mib}));
    outs.push_back(read_slope(out));
  }
  for (std::size_t k = 1; k < outs.size(); ++k) {
    ASSERT_EQ(outs[k].size(), outs[0].size());
    EXPECT_EQ(std::memcmp(outs[k].data(), outs[0].data(), outs[0].size() * sizeof(float)), 0)
        << "config " << k;
    EXPECT_EQ(results[k].valid, results[0].valid);
    EXPECT_EQ(results[k].min, results[0].min);
    EXPECT_EQ(results[k].max, results[0].max);
    EXPECT_NEAR(results[k].mean, results[0].mean, 1e-12 * results[0].mean);
  }
  // Same windows, other thread count: the reduction has the same bits too.
  EXPECT_EQ(results[1].mean, results[0].mean);
  EXPECT_EQ(results[2].mean, results[3].mean);
  // Both sides of the window boundaries (512 and 1024 with 512 x 512 windows), all along them.
  const int64_t W = g.width(), H = g.height();
  double worst = 0;
  int64_t checked = 0;
  for (int64_t r = 0; r < H; ++r) {
    for (int64_t c = 0; c < W; ++c) {
      const bool near_col = std::abs(c - 512) <= 1 || std::abs(c - 511) <= 1 ||
                            std::abs(c - 1024) <= 1 || std::abs(c - 1023) <= 1;
      const bool near_row = std::abs(r - 512) <= 1 || std::abs(r - 511) <= 1 ||
                            std::abs(r - 1024) <= 1 || std::abs(r - 1023) <= 1;
      if (!near_col && !near_row) continue;
      const double want = reference_slope(dem, W, H, c, r, 10.0, 10.0);
      worst = std::max(worst, std::abs(outs[0][test::px(c, r, W)] - want));
      ++checked;
    }
  }
  EXPECT_EQ(checked, 8 * 1100 + 8 * 1300 - 8 * 8);  // columns and rows 510-513, 1022-1025
  EXPECT_LT(worst, 1e-4);
  std::printf("window boundaries: %lld pixels, max |slope - Horn reference| = %.3g deg\n",
              static_cast<long long>(checked), worst);
}

// ---------------------------------------------------------------------------------------------

// West of a kink at a pixel edge the terrain rises at 10 deg, east of it at 30 deg. Horn's
// window straddles the kink for the column on each side only: the west one gets the gradient
// 0.75 tan 10 + 0.25 tan 30 (15.46 deg), the east one 0.25 tan 10 + 0.75 tan 30 (25.51 deg).
// So on a parcel across the kink, above25 is exactly the parcel's share east of the kink,
// above15 that plus one column's share, and the mean the strips' slopes weighted by area.
TEST(Terrain, SteepSharesOfAParcelAcrossAKink) {
  test::TempDir d;
  const Grid g = test::utm_grid(200, 150);
  const double x0 = test::kOriginX, y0 = test::kOriginY;
  const double xk = x0 + 1000.0;  // the edge between columns 99 and 100
  const double t10 = std::tan(10.0 * std::numbers::pi / 180.0);
  const double t30 = std::tan(30.0 * std::numbers::pi / 180.0);
  write_dem(d / "dem.tif", g, [&](double x, double) {
    return x < xk ? 100.0 + t10 * (x - x0) : 100.0 + t10 * (xk - x0) + t30 * (x - xk);
  });
  slope(d / "dem.tif", g, d / "slope.tif");
  const std::vector<float> s = read_slope(d / "slope.tif");
  const double west_col = degrees(0.75 * t10 + 0.25 * t30);
  const double east_col = degrees(0.25 * t10 + 0.75 * t30);
  for (int64_t r = 1; r + 1 < g.height(); ++r) {
    EXPECT_NEAR(s[test::px(98, r, g.width())], 10.0, 1e-4);
    EXPECT_NEAR(s[test::px(99, r, g.width())], west_col, 1e-4);
    EXPECT_NEAR(s[test::px(100, r, g.width())], east_col, 1e-4);
    EXPECT_NEAR(s[test::px(101, r, g.width())], 30.0, 1e-4);
  }
  // The parcel: 433.7 m west and 266.2 m east of the kink, rows 35.55 to 102.22 (partial cells
  // on every side), written as GeoJSON in the grid's CRS.
  const double west = 433.7, east = 266.2;
  const double px0 = xk - west, px1 = xk + east, py1 = y0 - 355.5, py0 = y0 - 1022.2;
  char coords[512];
  std::snprintf(coords, sizeof coords,
                "[[%.3f,%.3f],[%.3f,%.3f],[%.3f,%.3f],[%.3f,%.3f],[%.3f,%.3f]]", px0, py0, px1, py0,
                px1, py1, px0, py1, px0, py0);
  {
    std::ofstream f(d / "parcels.geojson");
    f << R"({"type":"FeatureCollection",)"
      << R"("crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::32650"}},)"
      << R"("features":[{"type":"Feature","properties":{"parcel_id":"P1"},)"
      << R"("geometry":{"type":"Polygon","coordinates":[)" << coords << "]}}]}";
  }
  vectors::ParcelOptions po;
  po.file = d / "parcels.geojson";
  const vectors::ParcelSet set = vectors::load_parcels(po, g);
  ASSERT_EQ(set.parcels.size(), 1u);
  EXPECT_NEAR(set.parcels[0].area_m2, (west + east) * (py1 - py0), 1e-6);
  vectors::ZonalOptions zo;
  zo.stats = {"mean", "above15", "above25"};
  const vectors::ZonalTable t = vectors::zonal_stats(set, {{d / "slope.tif", 1, "slope", {}}}, zo);
  std::map<std::string, double> row;
  for (std::size_t c = 0; c < t.columns.size(); ++c) row[t.columns[c]] = t.rows[0][c];
  ASSERT_EQ(row.count("slope_above25"), 1u) << test::join(t.columns);
  const double width = west + east;
  const double east_share = east / width, column_share = 10.0 / width;
  // The raster's own shares and mean, the cells weighted by their overlap with the rectangle.
  double covered = 0, over15 = 0, over25 = 0, weighted = 0;
  for (int64_t r = 0; r < g.height(); ++r) {
    for (int64_t c = 0; c < g.width(); ++c) {
      const Extent cell = g.extent_of({c, r, 1, 1});
      const double wgt = std::max(0.0, std::min(px1, cell.xmax) - std::max(px0, cell.xmin)) *
                         std::max(0.0, std::min(py1, cell.ymax) - std::max(py0, cell.ymin));
      const double v = s[test::px(c, r, g.width())];
      covered += wgt;
      over15 += v > 15.0 ? wgt : 0.0;
      over25 += v > 25.0 ? wgt : 0.0;
      weighted += v * wgt;
    }
  }
  EXPECT_NEAR(covered, set.parcels[0].area_m2, 1e-6);
  EXPECT_NEAR(over25 / covered, east_share, 1e-12);
  EXPECT_NEAR(over15 / covered, east_share + column_share, 1e-12);
  EXPECT_NEAR(row["slope_above25"], east_share, 1e-9);
  EXPECT_NEAR(row["slope_above15"], east_share + column_share, 1e-9);
  // The mean: strips of equal height, so weights are widths.
  const double mean =
      ((west - 10.0) * 10.0 + 10.0 * west_col + 10.0 * east_col + (east - 10.0) * 30.0) / width;
  EXPECT_NEAR(weighted / covered, mean, 1e-4);
  EXPECT_NEAR(row["slope_mean"], mean, 1e-4);
  // ... and within a column's share of 5.5 deg of the mean of the two slopes by area.
  const double by_area = (west * 10.0 + east * 30.0) / width;
  EXPECT_NEAR(row["slope_mean"], by_area, column_share * 5.5);
  std::printf(
      "kink: above25 %.9f (raster %.9f, east share %.9f), above15 %.9f (raster %.9f, "
      "expected %.9f), mean %.6f (raster %.6f, strips %.6f, by area %.6f)\n",
      row["slope_above25"], over25 / covered, east_share, row["slope_above15"], over15 / covered,
      east_share + column_share, row["slope_mean"], weighted / covered, mean, by_area);
}

// ---------------------------------------------------------------------------------------------

// Nodata cells of the DEM, and the part of the grid the DEM does not cover, are nodata; their
// neighbours still get a slope (the missing neighbour takes the centre's value).
TEST(Terrain, NodataCellsAndUncoveredPixels) {
  test::TempDir d;
  const Grid g = test::utm_grid(120, 90);
  // The DEM: same lattice, starting 10 columns east of the grid (columns 0-9 uncovered).
  const Grid dem_grid = test::utm_grid(130, 90, 10.0, test::kOriginX + 100.0);
  const double x0 = test::kOriginX, y0 = test::kOriginY;
  std::vector<float> z =
      sample(dem_grid, [&](double x, double y) { return 0.2 * (x - x0) - 0.1 * (y - y0); });
  const float nd = -32768.0f;
  auto dem_px = [&](int64_t c, int64_t r) { return test::px(c - 10, r, dem_grid.width()); };
  z[dem_px(50, 40)] = nd;  // an isolated hole
  for (int64_t r = 60; r < 63; ++r) {
    for (int64_t c = 80; c < 83; ++c) z[dem_px(c, r)] = nd;  // a 3 x 3 hole
  }
  z[dem_px(30, 0)] = nd;  // on the grid's edge
  test::write_raster<float>(d / "dem.tif", dem_grid, {z}, {}, nd);
  const rasters::SlopeResult res = slope(d / "dem.tif", g, d / "slope.tif");
  const std::vector<float> s = read_slope(d / "slope.tif");
  // The DEM on the analysis grid, NaN for nodata and outside: the reference's input.
  std::vector<double> on_grid(s.size(), kNaN);
  for (int64_t r = 0; r < g.height(); ++r) {
    for (int64_t c = 10; c < g.width(); ++c) {
      const float v = z[dem_px(c, r)];
      on_grid[test::px(c, r, g.width())] = v == nd ? kNaN : v;
    }
  }
  const double plane = degrees(std::hypot(0.2, 0.1));
  int64_t nodata = 0, next_to_hole = 0;
  double worst = 0, worst_plane = 0;
  for (int64_t r = 0; r < g.height(); ++r) {
    for (int64_t c = 0; c < g.width(); ++c) {
      const float v = s[test::px(c, r, g.width())];
      const double want = reference_slope(on_grid, g.width(), g.height(), c, r, 10, 10);
      if (std::isnan(want)) {
        EXPECT_EQ(v, kNodata) << c << "," << r;
        ++nodata;
        continue;
      }
      ASSERT_NE(v, kNodata) << c << "," << r;
      worst = std::max(worst, std::abs(v - want));
      if (!on_edge(c, r, g) && valid_around(s, g, c, r, 1)) {
        worst_plane = std::max(worst_plane, std::abs(v - plane));
      } else if (!on_edge(c, r, g)) {
        ++next_to_hole;
        EXPECT_GT(v, 0.0f);
        EXPECT_LT(v, 90.0f);
      }
    }
  }
  EXPECT_EQ(nodata, 10 * 90 + 1 + 9 + 1);
  EXPECT_EQ(res.valid, g.width() * g.height() - nodata);
  EXPECT_GT(next_to_hole, 8 + 16 + 88);
  EXPECT_LT(worst, 1e-4);
  EXPECT_LT(worst_plane, 1e-4);
  std::printf(
      "nodata: %lld nodata pixels, %lld next to them; max |slope - reference| = %.3g, "
      "max |slope - plane| elsewhere = %.3g deg\n",
      static_cast<long long>(nodata), static_cast<long long>(next_to_hole), worst, worst_plane);
}

TEST(Terrain, AllNodataIsNoData) {
  test::TempDir d;
  const Grid g = test::utm_grid(40, 30);
  test::write_raster<float>(d / "dem.tif", g, {std::vector<float>(40 * 30, -1.0f)}, {}, -1.0);
  try {
    slope(d / "dem.tif", g, d / "slope.tif");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kNoData);
    EXPECT_TRUE(test::contains(e.what(), d / "dem.tif")) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(d / "slope.tif"));
}

TEST(Terrain, BadInputIsNamed) {
  test::TempDir d;
  const Grid g = test::utm_grid(40, 30);
  auto expect_error = [&](const std::string& dem, ExitCode code, const std::string& part,
                          int band = 1, double z_factor = 1.0) {
    rasters::SlopeOptions o;
    o.dem = dem;
    o.band = band;
    o.z_factor = z_factor;
    o.out = d / "slope.tif";
    try {
      rasters::compute_slope(o, g);
      ADD_FAILURE() << "no error for " << dem;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_TRUE(test::contains(e.what(), dem)) << e.what();
      EXPECT_TRUE(test::contains(e.what(), part)) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(d / "slope.tif"));
  };
  // 100 km east: no overlap.
  const std::string far = d / "far_dem.tif";
  write_dem(far, test::utm_grid(40, 30, 10.0, test::kOriginX + 100000.0),
            [](double, double) { return 1.0; });
  expect_error(far, ExitCode::kInput, "does not overlap");
  // Not a raster, and no file at all.
  const std::string junk = d / "junk.tif";
  std::ofstream(junk) << "not a raster\n";
  expect_error(junk, ExitCode::kInput, "");
  expect_error(d / "missing.tif", ExitCode::kInput, "");
  // A band the file does not have.
  write_dem(d / "dem.tif", g, [](double x, double) { return x * 0.1; });
  expect_error(d / "dem.tif", ExitCode::kInput, "band 2", 2);
  // A z factor that is not a positive number.
  expect_error(d / "dem.tif", ExitCode::kUsage, "z factor", 1, 0.0);
}

}  // namespace
}  // namespace fw
