#include <gtest/gtest.h>

#include "engine/atomic_file.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "engine/error.hpp"
#include "engine/scheduler.hpp"
#include "rasters/imagery.hpp"
#include "rasters/indices.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

using rasters::IndexId;
using rasters::Role;

constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kTol = 1e-6;

// ---------------------------------------------------------------------------------------------
// Kernels on small arrays, against values written out from each index's formula.

// Reflectance per role for a few pixels; roles left empty are passed as null pointers, so a
// kernel reading a role it does not need would crash.
struct Pixels {
  std::vector<float> blue, green, red, nir, swir1, swir2;
};

std::vector<float> compute(IndexId id, const Pixels& p) {
  rasters::RoleSpans spans{};
  std::size_t n = 0;
  auto set = [&](Role role, const std::vector<float>& v) {
    if (v.empty()) return;
    if (n == 0) n = v.size();
    EXPECT_EQ(v.size(), n) << rasters::role_name(role);
    spans[static_cast<std::size_t>(role)] = v.data();
  };
  set(Role::kBlue, p.blue);
  set(Role::kGreen, p.green);
  set(Role::kRed, p.red);
  set(Role::kNir, p.nir);
  set(Role::kSwir1, p.swir1);
  set(Role::kSwir2, p.swir2);
  std::vector<float> out(n, 12345.0f);
  rasters::compute_index(id, spans, n, out.data());
  return out;
}

void expect_values(const std::vector<float>& got, const std::vector<double>& want,
                   const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " pixel " << i << " = " << got[i];
    } else {
      EXPECT_NEAR(got[i], want[i], kTol) << what << " pixel " << i;
    }
  }
}

TEST(IndexKernels, Ndvi) {
  Pixels p;
  p.red = {0.1f, 0.3f, 0.05f, 0.2f, 0.0f, kNaNf, 0.2f, 0.25f};
  p.nir = {0.5f, 0.2f, 0.45f, 0.2f, 0.0f, 0.3f, kNaNf, -0.25f};
  const auto got = compute(IndexId::kNdvi, p);
  expect_values(
      got,
      {(0.5 - 0.1) / (0.5 + 0.1), (0.2 - 0.3) / (0.2 + 0.3), (0.45 - 0.05) / (0.45 + 0.05), 0.0,
       kNaN,   // 0 / 0
       kNaN,   // NaN red
       kNaN,   // NaN nir
       kNaN},  // -0.25 + 0.25 = 0
      "ndvi");
  EXPECT_EQ(got[3], 0.0f);  // red = nir: exactly 0
}

TEST(IndexKernels, Evi) {
  Pixels p;
  p.nir = {0.5f, 0.3f, 0.2f, 0.5f, 0.875f, 0.5f, kNaNf, 0.5f};
  p.red = {0.1f, 0.1f, 0.3f, 0.0f, 0.0f, 0.0625f, 0.1f, 0.1f};
  p.blue = {0.05f, 0.04f, 0.1f, 0.2f, 0.25f, 0.25f, 0.05f, kNaNf};
  expect_values(compute(IndexId::kEvi, p),
                {2.5 * (0.5 - 0.1) / (0.5 + 6 * 0.1 - 7.5 * 0.05 + 1),
                 2.5 * (0.3 - 0.1) / (0.3 + 6 * 0.1 - 7.5 * 0.04 + 1),
                 2.5 * (0.2 - 0.3) / (0.2 + 6 * 0.3 - 7.5 * 0.1 + 1),
                 kNaN,   // 0.5 + 0 - 1.5 + 1 = 0
                 kNaN,   // 0.875 + 0 - 1.875 + 1 = 0
                 kNaN,   // 0.5 + 0.375 - 1.875 + 1 = 0
                 kNaN,   // NaN nir
                 kNaN},  // NaN blue
                "evi");
}

TEST(IndexKernels, Savi) {
  Pixels p;
  p.nir = {0.5f, 0.1f, 0.0f, -0.25f, kNaNf};
  p.red = {0.1f, 0.3f, 0.0f, -0.25f, 0.1f};
  expect_values(compute(IndexId::kSavi, p),
                {1.5 * (0.5 - 0.1) / (0.5 + 0.1 + 0.5), 1.5 * (0.1 - 0.3) / (0.1 + 0.3 + 0.5),
                 1.5 * (0.0 - 0.0) / (0.0 + 0.0 + 0.5),
                 kNaN,   // -0.25 - 0.25 + 0.5 = 0
                 kNaN},  // NaN nir
                "savi");
}

TEST(IndexKernels, Msavi2) {
  Pixels p;
  p.nir = {0.5f, 0.3f, 0.5f, 0.5f, kNaNf, 0.4f};
  p.red = {0.1f, 0.1f, 0.0f, -0.1f, 0.1f, kNaNf};
  auto msavi2 = [](double n, double r) {
    return (2 * n + 1 - std::sqrt((2 * n + 1) * (2 * n + 1) - 8 * (n - r))) / 2;
  };
  const auto got = compute(IndexId::kMsavi2, p);
  expect_values(got,
                {(2.0 - std::sqrt(4.0 - 8 * 0.4)) / 2, msavi2(0.3, 0.1),
                 1.0,    // discriminant 4 - 8 * 0.5 = 0
                 kNaN,   // discriminant 4 - 8 * 0.6 < 0
                 kNaN,   // NaN nir
                 kNaN},  // NaN red
                "msavi2");
  EXPECT_NEAR(got[0], msavi2(0.5, 0.1), kTol);
}

TEST(IndexKernels, NormalisedDifferences) {
  {
    Pixels p;
    p.green = {0.1f, 0.3f, 0.0f, kNaNf};
    p.nir = {0.4f, 0.1f, 0.0f, 0.1f};
    expect_values(compute(IndexId::kNdwi, p),
                  {(0.1 - 0.4) / (0.1 + 0.4), (0.3 - 0.1) / (0.3 + 0.1), kNaN, kNaN}, "ndwi");
  }
  {
    Pixels p;
    p.green = {0.1f, 0.04f, 0.0f, 0.1f};
    p.swir1 = {0.05f, 0.2f, 0.0f, kNaNf};
    expect_values(compute(IndexId::kMndwi, p),
                  {(0.1 - 0.05) / (0.1 + 0.05), (0.04 - 0.2) / (0.04 + 0.2), kNaN, kNaN}, "mndwi");
  }
  {
    Pixels p;
    p.swir1 = {0.3f, 0.15f, 0.0f, kNaNf};
    p.nir = {0.2f, 0.45f, 0.0f, 0.2f};
    expect_values(compute(IndexId::kNdbi, p),
                  {(0.3 - 0.2) / (0.3 + 0.2), (0.15 - 0.45) / (0.15 + 0.45), kNaN, kNaN}, "ndbi");
  }
  {
    Pixels p;
    p.swir1 = {0.35f, 0.2f, 0.0f, 0.1f, 0.3f};
    p.red = {0.25f, 0.05f, 0.0f, -0.1f, 0.2f};
    p.nir = {0.3f, 0.45f, 0.0f, 0.05f, 0.4f};
    p.blue = {0.05f, 0.03f, 0.0f, -0.05f, kNaNf};
    expect_values(compute(IndexId::kBsi, p),
                  {((0.35 + 0.25) - (0.3 + 0.05)) / ((0.35 + 0.25) + (0.3 + 0.05)),
                   ((0.2 + 0.05) - (0.45 + 0.03)) / ((0.2 + 0.05) + (0.45 + 0.03)),
                   kNaN,   // 0 / 0
                   kNaN,   // (0.1 - 0.1) + (0.05 - 0.05) = 0
                   kNaN},  // NaN blue
                  "bsi");
  }
  {
    Pixels p;
    p.nir = {0.4f, 0.1f, 0.0f, 0.4f};
    p.swir2 = {0.1f, 0.3f, 0.0f, kNaNf};
    expect_values(compute(IndexId::kNbr, p),
                  {(0.4 - 0.1) / (0.4 + 0.1), (0.1 - 0.3) / (0.1 + 0.3), kNaN, kNaN}, "nbr");
  }
}

// Over every combination of awkward inputs (zeros, denormals, huge values, infinities, NaN):
// no index ever gives an infinity, and a NaN in any needed band gives NaN.
TEST(IndexKernels, NeverInfiniteAndNaNPropagates) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> values = {0.0f, 1e-38f, -1e-30f, -0.2f, 0.3f, 3e38f, -3e38f, inf, kNaNf};
  const std::size_t k = values.size();
  std::size_t n = 1;
  for (int r = 0; r < 6; ++r) n *= k;
  std::vector<std::vector<float>> planes(6, std::vector<float>(n));
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t rest = i;
    for (std::size_t r = 0; r < 6; ++r) {
      planes[r][i] = values[rest % k];
      rest /= k;
    }
  }
  rasters::RoleSpans spans{};
  for (std::size_t r = 0; r < 6; ++r) spans[r] = planes[r].data();
  std::vector<float> out(n);
  for (const auto& info : rasters::all_indices()) {
    rasters::compute_index(info.id, spans, n, out.data());
    std::size_t infinite = 0, nan_missed = 0, nan_total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      infinite += std::isinf(out[i]) ? 1 : 0;
      bool nan_input = false;
      for (Role role : info.needs)
        nan_input |= std::isnan(planes[static_cast<std::size_t>(role)][i]);
      if (nan_input) {
        nan_missed += std::isnan(out[i]) ? 0 : 1;
      }
      nan_total += std::isnan(out[i]) ? 1 : 0;
    }
    EXPECT_EQ(infinite, 0u) << info.name;
    EXPECT_EQ(nan_missed, 0u) << info.name;
    EXPECT_LT(nan_total, n) << info.name << ": some combinations have a finite value";
  }
}

TEST(IndexKernels, ParseIndices) {
  const auto ids = rasters::parse_index_list("ndvi,NDBI,ndvi");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], IndexId::kNdvi);
  EXPECT_EQ(ids[1], IndexId::kNdbi);
  EXPECT_EQ(rasters::parse_index("MSAVI2"), IndexId::kMsavi2);
  try {
    rasters::parse_index("foo");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_TRUE(test::contains(e.what(), "foo")) << e.what();
    EXPECT_TRUE(test::contains(e.what(), "ndvi")) << e.what();
    EXPECT_TRUE(test::contains(e.what(), "nbr")) << e.what();
  }
  EXPECT_THROW(rasters::parse_index_list(""), Error);
  EXPECT_THROW(rasters::parse_index_list("ndvi,foo"), Error);
  ASSERT_EQ(rasters::all_indices().size(), 9u);
  for (const auto& info : rasters::all_indices()) {
    EXPECT_EQ(rasters::parse_index(info.name), info.id) << info.name;
    EXPECT_STREQ(rasters::index_info(info.id).name, info.name);
  }
  EXPECT_EQ(rasters::index_info(IndexId::kNdvi).needs.size(), 2u);
  EXPECT_EQ(rasters::index_info(IndexId::kBsi).needs.size(), 4u);
}

// ---------------------------------------------------------------------------------------------
// compute_indices end to end on GeoTIFFs written here.

constexpr int64_t kW = 37, kH = 23;  // not multiples of any block size
constexpr double kFloatNodata = -9999.0;
constexpr double kInt16Nodata = -32768.0;

// Bands of the Sentinel-2-like test file, in file order.
enum Band : std::size_t { kB2, kB3, kB4, kB8, kB11, kB12, kBandCount };
const std::vector<std::string> kS2Names = {"B2", "B3", "B4", "B8", "B11", "B12"};

using Planes = std::vector<std::vector<uint16_t>>;

std::size_t at(int64_t col, int64_t row) {
  return test::px(col, row, kW);
}

// A Sentinel-2-like scene: DNs (reflectance x 10000) per band, in realistic ranges, with planted
// special pixels.
struct S2Scene {
  int64_t w = 0, h = 0;
  Planes dn;
  int64_t planted_invalid = 0;  // pixels made nodata or saturated in a band ndvi/evi/ndbi need

  std::size_t at(int64_t col, int64_t row) const { return test::px(col, row, w); }
};

S2Scene s2_scene(int64_t w, int64_t h) {
  S2Scene s;
  s.w = w;
  s.h = h;
  s.dn.assign(kBandCount, std::vector<uint16_t>(static_cast<std::size_t>(w * h)));
  const int64_t lo[kBandCount] = {200, 300, 200, 1500, 1000, 500};
  const int64_t span[kBandCount] = {600, 900, 1300, 3500, 2500, 2000};
  for (std::size_t b = 0; b < kBandCount; ++b) {
    for (int64_t r = 0; r < h; ++r) {
      for (int64_t c = 0; c < w; ++c) {
        const int64_t v = (c * 7919 + r * 104729 + static_cast<int64_t>(b + 1) * 1299709) % 9973;
        s.dn[b][s.at(c, r)] = static_cast<uint16_t>(lo[b] + v * span[b] / 9973);
      }
    }
  }
  s.dn[kB4][s.at(3, 2)] = 0;          // red is nodata: every output is nodata there
  s.dn[kB11][s.at(10, 5)] = 0;        // swir1 is nodata (needed by ndbi): every output too
  s.dn[kB8][s.at(20, 7)] = 65535;     // nir saturated
  s.dn[kB2][s.at(w - 1, h - 1)] = 0;  // blue nodata in the last pixel
  s.planted_invalid = 4;
  s.dn[kB3][s.at(5, 20)] = 0;       // green is not needed by ndvi, evi, ndbi: still valid
  s.dn[kB12][s.at(6, 20)] = 65535;  // nor is swir2
  s.dn[kB4][s.at(15, 11)] = 2000;   // red = nir: NDVI exactly 0
  s.dn[kB8][s.at(15, 11)] = 2000;
  if (w > 520 && h > 520) {
    // On both sides of the output tiles' edges (512).
    s.dn[kB8][s.at(511, 100)] = 0;
    s.dn[kB4][s.at(512, 100)] = 65535;
    s.dn[kB11][s.at(300, 511)] = 0;
    s.dn[kB2][s.at(300, 512)] = 0;
    s.planted_invalid += 4;
  }
  return s;
}

// Writes the scene as a 6-band UInt16 GeoTIFF with Sentinel-2 band descriptions (no nodata
// value in the file: the sensor's DN 0 applies).
std::string write_s2(const std::string& path, const S2Scene& s, int tile) {
  test::write_raster(path, test::utm_grid(s.w, s.h), s.dn, kS2Names, std::nullopt, tile);
  return path;
}

// NDVI, EVI and NDBI in double precision from the DNs (reflectance = DN / 10000; DN 0 is nodata,
// 65535 saturated); NaN where the output must be nodata.
struct Expected {
  std::vector<double> ndvi, evi, ndbi;
  int64_t valid = 0;
};

Expected expected_from(const Planes& dn) {
  Expected e;
  for (std::size_t i = 0; i < dn[0].size(); ++i) {
    bool ok = true;
    // The bands ndvi, evi and ndbi need together: a pixel is valid only when all of them are.
    for (std::size_t b : {kB2, kB4, kB8, kB11}) ok = ok && dn[b][i] != 0 && dn[b][i] != 65535;
    if (!ok) {
      e.ndvi.push_back(kNaN);
      e.evi.push_back(kNaN);
      e.ndbi.push_back(kNaN);
      continue;
    }
    ++e.valid;
    const double B = dn[kB2][i] / 10000.0, R = dn[kB4][i] / 10000.0, N = dn[kB8][i] / 10000.0,
                 S1 = dn[kB11][i] / 10000.0;
    e.ndvi.push_back(N + R != 0 ? (N - R) / (N + R) : kNaN);
    const double d = N + 6 * R - 7.5 * B + 1;
    e.evi.push_back(d != 0 ? 2.5 * (N - R) / d : kNaN);
    e.ndbi.push_back(S1 + N != 0 ? (S1 - N) / (S1 + N) : kNaN);
  }
  return e;
}

// Compares every pixel (value * scale) with the expected values, NaN meaning nodata; reports the
// first few differences and returns their number.
template <class T>
int64_t mismatches(const std::vector<T>& got, const std::vector<double>& want, double nodata,
                   double scale, double tol, const std::string& what, int64_t width = kW) {
  EXPECT_EQ(got.size(), want.size()) << what;
  int64_t bad = 0;
  for (std::size_t i = 0; i < want.size() && i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    const bool ok =
        std::isnan(want[i]) ? g == nodata : (g != nodata && std::abs(g * scale - want[i]) <= tol);
    if (!ok && ++bad <= 5) {
      const int64_t col = static_cast<int64_t>(i) % width, row = static_cast<int64_t>(i) / width;
      if (std::isnan(want[i])) {
        ADD_FAILURE() << what << ": pixel (" << col << ", " << row << ") is " << g
                      << ", expected nodata";
      } else {
        ADD_FAILURE() << what << ": pixel (" << col << ", " << row << ") is " << g << " x " << scale
                      << ", expected " << want[i];
      }
    }
  }
  return bad;
}

// Opens an index output and checks its georeferencing, band description and nodata.
DatasetPtr open_output(const std::string& path, const Grid& grid, const std::string& name,
                       double nodata, GDALDataType type) {
  DatasetPtr ds = open_raster(path);
  const Grid g = Grid::of(*ds, path);
  EXPECT_EQ(g.crs().epsg(), 32650) << path;
  EXPECT_EQ(g.width(), grid.width()) << path;
  EXPECT_EQ(g.height(), grid.height()) << path;
  for (std::size_t k = 0; k < 6; ++k) {
    EXPECT_DOUBLE_EQ(g.transform().c[k], grid.transform().c[k]) << path << " coefficient " << k;
  }
  EXPECT_EQ(ds->GetRasterCount(), 1) << path;
  GDALRasterBand* band = ds->GetRasterBand(1);
  EXPECT_EQ(band->GetRasterDataType(), type) << path;
  int has_nodata = 0;
  const double nd = band->GetNoDataValue(&has_nodata);
  EXPECT_TRUE(has_nodata) << path;
  EXPECT_EQ(nd, nodata) << path;
  EXPECT_EQ(std::string(band->GetDescription()), name) << path;
  return ds;
}

void expect_no_temporaries(const std::string& dir) {
  for (const auto& name : test::dir_entries(dir)) {
    EXPECT_FALSE(test::contains(name, ".part-")) << dir << "/" << name;
  }
}

// Runs ndvi, evi and ndbi (Float32, or Int16 x 10000) on the scene's file and compares every
// pixel of every output with the values computed here.
void run_and_compare(const S2Scene& s, const std::string& input, bool int16,
                     const SchedulerOptions& so) {
  rasters::ImageryOptions o;
  o.files = {input};
  o.label = "date 1";
  const rasters::Imagery im = rasters::Imagery::open(o);
  EXPECT_EQ(im.sensor().id, "sentinel2");  // from the band descriptions
  EXPECT_DOUBLE_EQ(im.band(Role::kRed).scale, 1e-4);
  const Grid input_grid = test::utm_grid(s.w, s.h);
  const Grid grid = rasters::analysis_grid({&im});
  EXPECT_TRUE(grid.same_as(input_grid));
  const Expected want = expected_from(s.dn);
  // The planted pixels are what they should be.
  EXPECT_TRUE(std::isnan(want.ndvi[s.at(3, 2)]));
  EXPECT_TRUE(std::isnan(want.ndvi[s.at(10, 5)]));
  EXPECT_TRUE(std::isnan(want.ndbi[s.at(20, 7)]));
  EXPECT_TRUE(std::isnan(want.evi[s.at(s.w - 1, s.h - 1)]));
  EXPECT_FALSE(std::isnan(want.ndvi[s.at(5, 20)]));
  EXPECT_FALSE(std::isnan(want.ndvi[s.at(6, 20)]));
  EXPECT_EQ(want.ndvi[s.at(15, 11)], 0.0);
  EXPECT_EQ(want.valid, s.w * s.h - s.planted_invalid);

  test::TempDir out;
  rasters::IndexJob job;
  job.indices = rasters::parse_index_list("ndvi,evi,ndbi");
  job.out_dir = out.path();
  job.int16 = int16;
  const rasters::IndexRunResult r = rasters::compute_indices(im, grid, job, so);
  EXPECT_EQ(r.valid, want.valid);
  EXPECT_EQ(r.total, s.w * s.h);
  ASSERT_EQ(r.files.size(), 3u);
  EXPECT_EQ(r.files[0], out / "ndvi.tif");
  EXPECT_EQ(r.files[1], out / "evi.tif");
  EXPECT_EQ(r.files[2], out / "ndbi.tif");
  const std::vector<std::pair<std::string, const std::vector<double>*>> outputs = {
      {"ndvi", &want.ndvi}, {"evi", &want.evi}, {"ndbi", &want.ndbi}};
  for (const auto& [name, values] : outputs) {
    const std::string path = out / (name + ".tif");
    if (int16) {
      DatasetPtr ds = open_output(path, input_grid, name, kInt16Nodata, GDT_Int16);
      int has_scale = 0;
      EXPECT_DOUBLE_EQ(ds->GetRasterBand(1)->GetScale(&has_scale), 1e-4) << name;
      const auto got = test::read_band<int16_t>(*ds);
      // round(v * 10000): within half a unit of v * 10000, v being exact to 1e-6.
      EXPECT_EQ(mismatches(got, *values, kInt16Nodata, 1e-4, 0.5e-4 + kTol, name, s.w), 0);
      if (name == "ndvi") {
        ASSERT_EQ(got.size(), static_cast<std::size_t>(s.w * s.h));
        EXPECT_EQ(got[s.at(15, 11)], 0);
      }
    } else {
      DatasetPtr ds = open_output(path, input_grid, name, kFloatNodata, GDT_Float32);
      const auto got = test::read_band<float>(*ds);
      EXPECT_EQ(mismatches(got, *values, kFloatNodata, 1.0, kTol, name, s.w), 0);
      if (name == "ndvi") {
        ASSERT_EQ(got.size(), static_cast<std::size_t>(s.w * s.h));
        EXPECT_EQ(got[s.at(15, 11)], 0.0f);
      }
      // Overviews once the raster is larger than one 512 x 512 tile, halving each time.
      GDALRasterBand* band = ds->GetRasterBand(1);
      if (std::max(s.w, s.h) > 512) {
        EXPECT_GE(band->GetOverviewCount(), 1) << name;
      }
      for (int k = 0; k < band->GetOverviewCount(); ++k) {
        const int64_t f = int64_t{2} << k;
        EXPECT_EQ(band->GetOverview(k)->GetXSize(), (s.w + f - 1) / f) << name << " overview " << k;
        EXPECT_EQ(band->GetOverview(k)->GetYSize(), (s.h + f - 1) / f) << name << " overview " << k;
      }
    }
  }
  expect_no_temporaries(out.path());
}

TEST(IndicesEndToEnd, Float32MatchesIndependentComputation) {
  test::TempDir d;
  const S2Scene s = s2_scene(kW, kH);
  run_and_compare(s, write_s2(d / "s2.tif", s, 16), false, {});
}

TEST(IndicesEndToEnd, Int16IsScaledBy10000) {
  test::TempDir d;
  const S2Scene s = s2_scene(kW, kH);
  run_and_compare(s, write_s2(d / "s2.tif", s, 16), true, {});
}

// Larger than one output tile in both directions, with a tiny memory budget: many windows,
// ragged right and bottom tiles, overviews, two threads.
TEST(IndicesEndToEnd, ManyWindowsAndTilesMatch) {
  test::TempDir d;
  const S2Scene s = s2_scene(1030, 533);
  const std::string input = write_s2(d / "s2.tif", s, 256);
  SchedulerOptions so;
  so.threads = 2;
  so.memory_mib = 0.01;  // one 512 x 512 window at a time
  run_and_compare(s, input, false, so);
  run_and_compare(s, input, true, so);
}

// The same inputs give byte-identical files for 1, 2 and 8 threads (tiles, overviews and
// statistics are merged in window order).
TEST(IndicesEndToEnd, ByteIdenticalForAnyThreadCount) {
  test::TempDir d;
  const S2Scene s = s2_scene(1100, 700);
  const std::string input = write_s2(d / "s2.tif", s, 256);
  rasters::ImageryOptions o;
  o.files = {input};
  const rasters::Imagery im = rasters::Imagery::open(o);
  const Grid grid = rasters::analysis_grid({&im});
  std::vector<std::string> contents;
  for (int threads : {1, 2, 8}) {
    rasters::IndexJob job;
    job.indices = rasters::parse_index_list("ndvi,bsi");
    job.out_dir = d / ("t" + std::to_string(threads));
    SchedulerOptions so;
    so.threads = threads;
    so.memory_mib = 0.05;
    rasters::compute_indices(im, grid, job, so);
    contents.push_back(read_file(job.out_dir + "/ndvi.tif") + read_file(job.out_dir + "/bsi.tif"));
  }
  EXPECT_GT(contents[0].size(), 100000u);
  EXPECT_TRUE(contents[0] == contents[1]);
  EXPECT_TRUE(contents[0] == contents[2]);
}

// A generic raster: no sensor nodata, so DN 0 is a value; red = nir = 0 gives 0 / 0, nodata.
TEST(IndicesGeneric, ZeroDenominatorIsNodata) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  Planes dn(2, std::vector<uint16_t>(static_cast<std::size_t>(kW * kH)));
  for (int64_t r = 0; r < kH; ++r) {
    for (int64_t c = 0; c < kW; ++c) {
      dn[0][at(c, r)] = static_cast<uint16_t>(500 + (c * 13 + r * 7) % 900);
      dn[1][at(c, r)] = static_cast<uint16_t>(2000 + (c * 31 + r * 17) % 3000);
    }
  }
  dn[0][at(4, 4)] = 0;
  dn[1][at(4, 4)] = 0;  // 0 / 0
  dn[0][at(8, 9)] = 0;  // red 0: NDVI 1
  const std::string path = d / "generic.tif";
  test::write_raster(path, grid, dn);
  rasters::ImageryOptions o;
  o.files = {path};
  o.band_map = "red=1,nir=2";
  const rasters::Imagery im = rasters::Imagery::open(o);
  EXPECT_EQ(im.sensor().id, "generic");
  test::TempDir out;
  rasters::IndexJob job;
  job.indices = {IndexId::kNdvi};
  job.out_dir = out.path();
  const rasters::IndexRunResult r =
      rasters::compute_indices(im, rasters::analysis_grid({&im}), job);
  EXPECT_EQ(r.valid, kW * kH);  // every band value is valid; only the index is undefined
  std::vector<double> want;
  for (std::size_t i = 0; i < dn[0].size(); ++i) {
    const double R = dn[0][i], N = dn[1][i];
    want.push_back(N + R != 0 ? (N - R) / (N + R) : kNaN);
  }
  EXPECT_TRUE(std::isnan(want[at(4, 4)]));
  EXPECT_EQ(want[at(8, 9)], 1.0);
  DatasetPtr ds = open_output(out / "ndvi.tif", grid, "ndvi", kFloatNodata, GDT_Float32);
  const auto got = test::read_band<float>(*ds);
  EXPECT_EQ(mismatches(got, want, kFloatNodata, 1.0, kTol, "ndvi"), 0);
}

// A generic 2-band raster (no band descriptions) mapped to red and nir, 37 x 23.
std::string write_two_band(const std::string& path) {
  Planes dn(2, std::vector<uint16_t>(static_cast<std::size_t>(kW * kH), 1000));
  test::write_raster(path, test::utm_grid(kW, kH), dn);
  return path;
}

TEST(IndicesErrors, MissingBandNamesTheRoleAndListsTheBands) {
  test::TempDir d, out;
  const std::string path = write_two_band(d / "two.tif");
  rasters::ImageryOptions o;
  o.files = {path};
  o.band_map = "red=1,nir=2";
  const rasters::Imagery im = rasters::Imagery::open(o);
  rasters::IndexJob job;
  job.indices = {IndexId::kNdbi};
  job.out_dir = out.path();
  try {
    rasters::compute_indices(im, rasters::analysis_grid({&im}), job);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    const std::string what = e.what();
    EXPECT_TRUE(test::contains(what, "swir1")) << what;
    EXPECT_TRUE(test::contains(what, "ndbi")) << what;
    EXPECT_TRUE(test::contains(what, "band 1")) << what;
    EXPECT_TRUE(test::contains(what, "band 2")) << what;
    EXPECT_TRUE(test::contains(what, path)) << what;
  }
  EXPECT_TRUE(test::dir_entries(out.path()).empty()) << test::join(test::dir_entries(out.path()));
}

TEST(IndicesErrors, BandMapBeyondTheBandsIsAnInputError) {
  test::TempDir d, out;
  const std::string path = write_two_band(d / "two.tif");
  struct Case {
    const char* map;
    const char* entry;
    const char* names;
  };
  // Entries are checked in order: the first one out of range is reported.
  const Case cases[] = {{"red=3,nir=8", "'red=3'", "names band 3"},
                        {"red=1,nir=8", "'nir=8'", "names band 8"}};
  for (const Case& c : cases) {
    rasters::ImageryOptions o;
    o.files = {path};
    o.band_map = c.map;
    try {
      const rasters::Imagery im = rasters::Imagery::open(o);
      rasters::IndexJob job;
      job.indices = {IndexId::kNdvi};
      job.out_dir = out.path();
      rasters::compute_indices(im, rasters::analysis_grid({&im}), job);
      ADD_FAILURE() << "no error for " << c.map;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kInput) << c.map;
      const std::string what = e.what();
      EXPECT_TRUE(test::contains(what, c.entry)) << what;
      EXPECT_TRUE(test::contains(what, c.names)) << what;
      // "... but <file> have 2 band(s): band 1, band 2" (roles already mapped are shown too)
      EXPECT_TRUE(test::contains(what, "2 band(s)")) << what;
      EXPECT_TRUE(test::contains(what, "band 1")) << what;
      EXPECT_TRUE(test::contains(what, "band 2")) << what;
      EXPECT_TRUE(test::contains(what, path)) << what;
    }
    EXPECT_TRUE(test::dir_entries(out.path()).empty()) << test::join(test::dir_entries(out.path()));
  }
}

TEST(IndicesErrors, AllMaskedInputIsNoDataAndWritesNothing) {
  test::TempDir d, out;
  const std::string path = d / "empty.tif";
  const Planes dn(kBandCount, std::vector<uint16_t>(static_cast<std::size_t>(kW * kH), 0));
  test::write_raster(path, test::utm_grid(kW, kH), dn, kS2Names);
  rasters::ImageryOptions o;
  o.files = {path};
  const rasters::Imagery im = rasters::Imagery::open(o);
  ASSERT_EQ(im.sensor().id, "sentinel2");
  rasters::IndexJob job;
  job.indices = {IndexId::kNdvi, IndexId::kNdbi};
  job.out_dir = out.path();
  try {
    rasters::compute_indices(im, rasters::analysis_grid({&im}), job);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kNoData) << e.what();
    EXPECT_TRUE(test::contains(e.what(), path)) << e.what();
  }
  // No output and no temporary (".ndvi.tif.part-...") left behind.
  EXPECT_TRUE(test::dir_entries(out.path()).empty()) << test::join(test::dir_entries(out.path()));
}

}  // namespace
}  // namespace fw
