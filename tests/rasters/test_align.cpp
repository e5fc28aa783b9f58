#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "engine/crs.hpp"
#include "engine/error.hpp"
#include "rasters/imagery.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

using rasters::Resampling;

constexpr int64_t kW = 37, kH = 23;  // the 10 m analysis grid

std::size_t at(int64_t col, int64_t row) {
  return test::px(col, row, kW);
}

// A one-band UInt16 raster of `value(col, row)` on `grid`, opened as generic imagery.
template <class F>
rasters::Imagery one_band(const std::string& path, const Grid& grid, F value,
                          const std::string& label, std::optional<double> nodata = std::nullopt) {
  std::vector<uint16_t> v(static_cast<std::size_t>(grid.width() * grid.height()));
  for (int64_t r = 0; r < grid.height(); ++r) {
    for (int64_t c = 0; c < grid.width(); ++c) {
      v[test::px(c, r, grid.width())] = static_cast<uint16_t>(value(c, r));
    }
  }
  test::write_raster<uint16_t>(path, grid, {v}, {}, nodata);
  rasters::ImageryOptions o;
  o.files = {path};
  o.sensor = "generic";
  o.label = label;
  return rasters::Imagery::open(o);
}

int64_t constant_value(int64_t, int64_t) {
  return 1000;
}

TEST(Align, IdenticalGridsGiveThatGrid) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  const rasters::Imagery a = one_band(d / "a.tif", grid, constant_value, "date 1");
  const rasters::Imagery b = one_band(d / "b.tif", grid, constant_value, "date 2");
  const Grid g = rasters::analysis_grid({&a, &b});
  EXPECT_TRUE(g.same_as(grid)) << g.describe();
  EXPECT_EQ(g.width(), kW);
  EXPECT_EQ(g.height(), kH);
  EXPECT_EQ(g.crs().epsg(), 32650);
  EXPECT_EQ(g.transform(), grid.transform());
  // Asking for the first date's own CRS and resolution changes nothing.
  rasters::GridSpec spec;
  spec.crs = "EPSG:32650";
  spec.resolution = 10;
  const Grid same = rasters::analysis_grid({&a, &b}, spec);
  EXPECT_TRUE(same.same_as(grid)) << same.describe();
}

TEST(Align, NonOverlappingDateIsNamed) {
  test::TempDir d;
  const rasters::Imagery a =
      one_band(d / "a.tif", test::utm_grid(kW, kH), constant_value, "date 1");
  const std::string far_path = d / "far_away.tif";
  const rasters::Imagery b = one_band(
      far_path, test::utm_grid(kW, kH, 10.0, test::kOriginX + 100000.0), constant_value, "date 2");
  try {
    rasters::analysis_grid({&a, &b});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    const std::string what = e.what();
    EXPECT_TRUE(test::contains(what, far_path)) << what;
    EXPECT_TRUE(test::contains(what, "date 2")) << what;
    EXPECT_TRUE(test::contains(what, "does not overlap")) << what;
  }
}

TEST(Align, GeographicGridCoversTheDate) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  const rasters::Imagery a = one_band(d / "a.tif", grid, constant_value, "date 1");
  rasters::GridSpec spec;
  spec.crs = "EPSG:4326";
  const Grid g = rasters::analysis_grid({&a}, spec);
  EXPECT_TRUE(g.crs().is_geographic());
  EXPECT_EQ(g.crs().epsg(), 4326);
  EXPECT_TRUE(g.transform().north_up());
  EXPECT_GT(g.dx(), 0.0);
  EXPECT_DOUBLE_EQ(g.dx(), g.dy());
  // Longitude and latitude of this scene: about 116 E, 30.7 N.
  const Extent ll = transform_extent(grid.extent(), grid.crs(), g.crs());
  EXPECT_GT(ll.xmin, 115.0);
  EXPECT_LT(ll.xmax, 117.0);
  EXPECT_GT(ll.ymin, 30.0);
  EXPECT_LT(ll.ymax, 31.5);
  const Extent e = g.extent();
  const double tol = 1e-6 * g.dx();
  EXPECT_LE(e.xmin, ll.xmin + tol);
  EXPECT_LE(e.ymin, ll.ymin + tol);
  EXPECT_GE(e.xmax, ll.xmax - tol);
  EXPECT_GE(e.ymax, ll.ymax - tol);
  // About as many pixels across as the date (the extent is snapped outward by at most a pixel).
  EXPECT_GE(g.width(), kW);
  EXPECT_LE(g.width(), kW + 2);
  // And the imagery can be read onto it.
  rasters::BandReader reader(a.bands()[0], g, Resampling::kNearest);
  EXPECT_TRUE(reader.warped());
  std::vector<float> v(static_cast<std::size_t>(g.width() * g.height()));
  reader.read_reflectance(g.full_window(), v.data());
  int64_t thousand = 0;
  for (float x : v) thousand += x == 1000.0f ? 1 : 0;
  EXPECT_GT(thousand, static_cast<int64_t>(v.size()) / 2);
}

// A band on the same lattice, offset by whole pixels: read by offset, NaN outside.
TEST(Align, OffsetBandIsShiftedWithNaNOutside) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  // Starts 4 columns left of and 3 rows below the analysis grid's corner; 30 x 15 pixels:
  // covers analysis columns -4..25 and rows 3..17.
  const int64_t dc = -4, dr = 3, bw = 30, bh = 15;
  const Grid band_grid =
      test::utm_grid(bw, bh, 10.0, test::kOriginX + 10.0 * dc, test::kOriginY - 10.0 * dr);
  auto value = [](int64_t c, int64_t r) -> int64_t {
    return c == 7 && r == 5 ? 0 : 100 + c + 1000 * r;
  };
  const rasters::Imagery im = one_band(d / "offset.tif", band_grid, value, "date 1", 0.0);
  const rasters::BandInfo& band = im.bands()[0];
  EXPECT_TRUE(grid.compatible_with(band.grid));
  EXPECT_FALSE(grid.same_as(band.grid));
  rasters::BandReader reader(band, grid, Resampling::kBilinear);
  EXPECT_FALSE(reader.warped());
  std::vector<float> v(static_cast<std::size_t>(kW * kH));
  reader.read_reflectance(grid.full_window(), v.data());
  int64_t bad = 0, inside = 0;
  for (int64_t r = 0; r < kH; ++r) {
    for (int64_t c = 0; c < kW; ++c) {
      const int64_t bc = c - dc, br = r - dr;  // in the band's raster
      const float got = v[at(c, r)];
      bool ok;
      if (bc < 0 || bc >= bw || br < 0 || br >= bh) {
        ok = std::isnan(got);
      } else if (value(bc, br) == 0) {
        ok = std::isnan(got);  // nodata
      } else {
        ok = got == static_cast<float>(value(bc, br));
        ++inside;
      }
      if (!ok && ++bad <= 5) {
        ADD_FAILURE() << "pixel (" << c << ", " << r << ") = " << got;
      }
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(inside, 26 * 15 - 1);  // analysis columns 0..25, rows 3..17, one nodata
  // A window of its own reads the same values.
  const Window w{20, 10, 10, 8};
  std::vector<float> sub(static_cast<std::size_t>(w.pixels()));
  reader.read_reflectance(w, sub.data());
  for (int64_t r = 0; r < w.h; ++r) {
    for (int64_t c = 0; c < w.w; ++c) {
      const float a = sub[test::px(c, r, w.w)], b = v[at(w.x + c, w.y + r)];
      EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << c << "," << r;
    }
  }
}

// A 20 m band on the 10 m lattice, read with nearest neighbour: each 20 m value lands on its
// 2 x 2 block of 10 m pixels (by replication, no warper), NaN outside the band. The band starts
// 3 columns left of and 1 row above the analysis grid, and ends inside it.
TEST(Align, TwentyMetreBandOnTheLatticeIsReplicated) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  const int64_t sw = 8, sh = 6;  // covers analysis columns -3..12 and rows -1..10
  auto value = [](int64_t c, int64_t r) -> int64_t { return 1 + c + 100 * r; };
  const rasters::Imagery im = one_band(
      d / "b20.tif", test::utm_grid(sw, sh, 20.0, test::kOriginX - 30, test::kOriginY + 10), value,
      "date 1");
  rasters::BandReader reader(im.bands()[0], grid, Resampling::kNearest);
  EXPECT_FALSE(reader.warped());
  std::vector<float> v(static_cast<std::size_t>(kW * kH));
  reader.read_reflectance(grid.full_window(), v.data());
  int64_t bad = 0, inside = 0;
  for (int64_t r = 0; r < kH; ++r) {
    for (int64_t c = 0; c < kW; ++c) {
      const int64_t bc = (c + 3) / 2, br = (r + 1) / 2;
      const float got = v[at(c, r)];
      bool ok;
      if (bc < sw && br < sh) {
        ok = got == static_cast<float>(value(bc, br));
        ++inside;
      } else {
        ok = std::isnan(got);
      }
      if (!ok && ++bad <= 5) {
        ADD_FAILURE() << "pixel (" << c << ", " << r << ") = " << got;
      }
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(inside, 13 * 11);
  // Windows (odd offsets included) read the same values as the whole grid.
  for (const Window& w : {Window{9, 4, 16, 13}, Window{1, 0, 5, 3}, Window{12, 10, 25, 13}}) {
    std::vector<float> sub(static_cast<std::size_t>(w.pixels()));
    reader.read_reflectance(w, sub.data());
    int64_t differ = 0;
    for (int64_t r = 0; r < w.h; ++r) {
      for (int64_t c = 0; c < w.w; ++c) {
        const float a = sub[test::px(c, r, w.w)], b = v[at(w.x + c, w.y + r)];
        differ += (a == b || (std::isnan(a) && std::isnan(b))) ? 0 : 1;
      }
    }
    EXPECT_EQ(differ, 0) << w.x << "," << w.y << " " << w.w << "x" << w.h;
  }
}

// A 20 m band off the 10 m lattice (shifted by 2.5 m) goes through GDAL's warper; with nearest
// neighbour every 10 m pixel centre falls in the 20 m pixel (col / 2, row / 2).
TEST(Align, TwentyMetreBandThroughTheWarper) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  const int64_t sw = (kW + 1) / 2, sh = (kH + 1) / 2;
  auto value = [](int64_t c, int64_t r) -> int64_t { return 1 + c + 100 * r; };
  const rasters::Imagery im = one_band(
      d / "b20.tif", test::utm_grid(sw, sh, 20.0, test::kOriginX + 2.5, test::kOriginY - 2.5),
      value, "date 1");
  rasters::BandReader reader(im.bands()[0], grid, Resampling::kNearest);
  EXPECT_TRUE(reader.warped());
  std::vector<float> v(static_cast<std::size_t>(kW * kH));
  reader.read_reflectance(grid.full_window(), v.data());
  int64_t bad = 0;
  for (int64_t r = 1; r < kH - 1; ++r) {
    for (int64_t c = 1; c < kW - 1; ++c) {
      const float want = static_cast<float>(value(c / 2, r / 2));
      if (v[at(c, r)] != want && ++bad <= 5) {
        ADD_FAILURE() << "pixel (" << c << ", " << r << ") = " << v[at(c, r)] << ", expected "
                      << want;
      }
    }
  }
  EXPECT_EQ(bad, 0);
  // Windows read the same values as the whole grid.
  const Window w{9, 4, 16, 13};
  std::vector<float> sub(static_cast<std::size_t>(w.pixels()));
  reader.read_reflectance(w, sub.data());
  int64_t differ = 0;
  for (int64_t r = 0; r < w.h; ++r) {
    for (int64_t c = 0; c < w.w; ++c) {
      differ += sub[test::px(c, r, w.w)] != v[at(w.x + c, w.y + r)] ? 1 : 0;
    }
  }
  EXPECT_EQ(differ, 0);
}

// Outside the band's raster a warped read is NaN too (BandReader's contract), for a band with a
// nodata value and for one without.
TEST(Align, WarpedReadIsNaNOutsideTheBand) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  for (const bool with_nodata : {true, false}) {
    SCOPED_TRACE(with_nodata ? "band with nodata 0" : "band without nodata");
    // 20 m, 5 pixels wide, off the lattice by 2.5 m: covers the centres of analysis columns
    // 0..9 only.
    const rasters::Imagery im =
        one_band(d / (with_nodata ? "left_nd.tif" : "left.tif"),
                 test::utm_grid(5, (kH + 1) / 2, 20.0, test::kOriginX + 2.5, test::kOriginY - 2.5),
                 constant_value, "date 1", with_nodata ? std::optional<double>(0.0) : std::nullopt);
    rasters::BandReader reader(im.bands()[0], grid, Resampling::kNearest);
    ASSERT_TRUE(reader.warped());
    std::vector<float> v(static_cast<std::size_t>(kW * kH));
    reader.read_reflectance(grid.full_window(), v.data());
    int64_t inside_bad = 0, outside_bad = 0;
    for (int64_t r = 0; r < kH; ++r) {
      for (int64_t c = 0; c < kW; ++c) {
        if (c < 9) {
          inside_bad += v[at(c, r)] == 1000.0f ? 0 : 1;
        } else if (c >= 11) {
          outside_bad += std::isnan(v[at(c, r)]) ? 0 : 1;
        }
      }
    }
    EXPECT_EQ(inside_bad, 0);
    EXPECT_EQ(outside_bad, 0) << "pixels outside the band should be NaN, e.g. " << v[at(20, 10)];
  }
}

// A second date in the next UTM zone is reprojected onto the first date's grid.
TEST(Align, ReprojectedSecondDateIsReadable) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  const rasters::Imagery a = one_band(d / "a.tif", grid, constant_value, "date 1");
  // The analysis extent in UTM zone 51N, 200 m larger on each side, on a 10 m lattice.
  const Crs utm51 = Crs::from_epsg(32651);
  const Extent e = transform_extent(grid.extent(), grid.crs(), utm51);
  const double x0 = std::floor((e.xmin - 200) / 10) * 10, y1 = std::ceil((e.ymax + 200) / 10) * 10;
  const int64_t w = static_cast<int64_t>(std::ceil((e.xmax + 200 - x0) / 10));
  const int64_t h = static_cast<int64_t>(std::ceil((y1 - (e.ymin - 200)) / 10));
  const Grid g51 = test::utm_grid(w, h, 10.0, x0, y1, 32651);
  auto value = [](int64_t, int64_t) -> int64_t { return 1234; };
  const std::string b_path = d / "zone51.tif";
  const rasters::Imagery b = one_band(b_path, g51, value, "date 2");
  EXPECT_EQ(b.grid().crs().epsg(), 32651);
  Grid g;
  ASSERT_NO_THROW(g = rasters::analysis_grid({&a, &b}));
  EXPECT_TRUE(g.same_as(grid));
  for (Resampling rs : {Resampling::kNearest, Resampling::kBilinear, Resampling::kAverage}) {
    rasters::BandReader reader(b.bands()[0], g, rs);
    EXPECT_TRUE(reader.warped());
    std::vector<float> v(static_cast<std::size_t>(kW * kH));
    ASSERT_NO_THROW(reader.read_reflectance(g.full_window(), v.data()));
    int64_t finite = 0, wrong = 0;
    for (float x : v) {
      if (std::isfinite(x)) {
        ++finite;
        wrong += std::abs(x - 1234.0f) <= 1e-3f ? 0 : 1;
      }
    }
    EXPECT_GT(finite, kW * kH * 9 / 10) << static_cast<int>(rs);
    EXPECT_EQ(wrong, 0) << static_cast<int>(rs);
  }
}

}  // namespace
}  // namespace fw
