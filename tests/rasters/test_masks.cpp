#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "rasters/imagery.hpp"
#include "rasters/indices.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

using rasters::MaskOptions;
using rasters::MaskType;

constexpr int64_t kW = 37, kH = 23;  // the 10 m analysis grid

std::size_t at(int64_t col, int64_t row) {
  return test::px(col, row, kW);
}

// The mask of `window` (1 = valid), starting from all valid.
std::vector<uint8_t> mask_of(const MaskOptions& o, const Grid& grid, const Window& window) {
  rasters::MaskReader reader(o, grid);
  std::vector<uint8_t> valid(static_cast<std::size_t>(window.pixels()), 1);
  reader.apply(window, valid.data());
  return valid;
}

// The same, window by window over `tile` x `tile` windows, pasted into one full-grid mask.
std::vector<uint8_t> mask_by_tiles(const MaskOptions& o, const Grid& grid, int64_t tile) {
  rasters::MaskReader reader(o, grid);
  std::vector<uint8_t> all(static_cast<std::size_t>(grid.width() * grid.height()), 7);
  for (int64_t y = 0; y < grid.height(); y += tile) {
    for (int64_t x = 0; x < grid.width(); x += tile) {
      const Window w{x, y, std::min(tile, grid.width() - x), std::min(tile, grid.height() - y)};
      std::vector<uint8_t> part(static_cast<std::size_t>(w.pixels()), 1);
      reader.apply(w, part.data());
      for (int64_t r = 0; r < w.h; ++r) {
        for (int64_t c = 0; c < w.w; ++c) {
          all[test::px(x + c, y + r, grid.width())] = part[test::px(c, r, w.w)];
        }
      }
    }
  }
  return all;
}

int64_t count_masked(const std::vector<uint8_t>& valid) {
  return static_cast<int64_t>(std::count(valid.begin(), valid.end(), uint8_t{0}));
}

// Pixels where `valid` differs from `want_masked` (1 = masked), with the first few reported.
int64_t differences(const std::vector<uint8_t>& valid, const std::vector<uint8_t>& want_masked,
                    int64_t width, const std::string& what) {
  EXPECT_EQ(valid.size(), want_masked.size()) << what;
  int64_t bad = 0;
  for (std::size_t i = 0; i < valid.size() && i < want_masked.size(); ++i) {
    const bool masked = valid[i] == 0;
    if (valid[i] > 1 || masked != (want_masked[i] != 0)) {
      if (++bad <= 5) {
        ADD_FAILURE() << what << ": pixel (" << static_cast<int64_t>(i) % width << ", "
                      << static_cast<int64_t>(i) / width << ") is " << int{valid[i]}
                      << ", expected " << (want_masked[i] ? "masked" : "valid");
      }
    }
  }
  return bad;
}

// ESA's scene classification: 0 no data, 1 saturated or defective, 3 cloud shadow, 8 and 9 cloud
// (medium, high probability), 10 thin cirrus are invalid; 11 snow only when asked.
bool scl_invalid(int cls, bool snow_invalid) {
  return cls == 0 || cls == 1 || cls == 3 || cls == 8 || cls == 9 || cls == 10 ||
         (snow_invalid && cls == 11);
}

TEST(Masks, SclAt20mOnThe10mGrid) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  // Same origin, 20 m: each SCL pixel covers 2 x 2 analysis pixels (the last column and row
  // only 1 x 2, 2 x 1 or 1 x 1 since 37 and 23 are odd).
  const int64_t sw = (kW + 1) / 2, sh = (kH + 1) / 2;
  const Grid scl_grid = test::utm_grid(sw, sh, 20.0);
  std::vector<uint8_t> scl(static_cast<std::size_t>(sw * sh));
  for (int64_t r = 0; r < sh; ++r) {
    for (int64_t c = 0; c < sw; ++c)
      scl[test::px(c, r, sw)] = static_cast<uint8_t>((c + 3 * r) % 12);
  }
  const std::string path = d / "scl.tif";
  test::write_raster<uint8_t>(path, scl_grid, {scl});
  int64_t masked_without_snow = 0;
  for (bool snow : {false, true}) {
    SCOPED_TRACE(snow ? "snow invalid" : "snow valid");
    MaskOptions o;
    o.file = path;
    o.type = MaskType::kScl;
    o.snow_invalid = snow;
    std::vector<uint8_t> want(static_cast<std::size_t>(kW * kH));
    int64_t want_count = 0;
    for (int64_t r = 0; r < kH; ++r) {
      for (int64_t c = 0; c < kW; ++c) {
        const bool bad = scl_invalid(scl[test::px(c / 2, r / 2, sw)], snow);
        want[at(c, r)] = bad ? 1 : 0;
        want_count += bad ? 1 : 0;
      }
    }
    const auto valid = mask_of(o, grid, grid.full_window());
    EXPECT_EQ(count_masked(valid), want_count);
    EXPECT_EQ(differences(valid, want, kW, "scl"), 0);
    // A window inside the grid reads the same pixels.
    const Window w{5, 3, 20, 11};
    const auto sub = mask_of(o, grid, w);
    int64_t sub_bad = 0;
    for (int64_t r = 0; r < w.h; ++r) {
      for (int64_t c = 0; c < w.w; ++c) {
        sub_bad += sub[test::px(c, r, w.w)] != valid[at(w.x + c, w.y + r)] ? 1 : 0;
      }
    }
    EXPECT_EQ(sub_bad, 0);
    if (!snow) {
      masked_without_snow = want_count;
    } else {
      EXPECT_GT(want_count, masked_without_snow);
    }
  }
  // The mask is ANDed into what the caller already has.
  MaskOptions o;
  o.file = path;
  o.type = MaskType::kScl;
  rasters::MaskReader reader(o, grid);
  ASSERT_FALSE(scl_invalid(scl[test::px(2, 0, sw)], false));  // class 2: valid
  std::vector<uint8_t> valid(static_cast<std::size_t>(kW * kH), 1);
  valid[at(4, 0)] = 0;
  reader.apply(grid.full_window(), valid.data());
  EXPECT_EQ(valid[at(4, 0)], 0);
  EXPECT_EQ(valid[at(5, 1)], 1);  // same SCL pixel, not masked before
}

TEST(Masks, LandsatQaPixelBits) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH, 30.0);
  constexpr uint16_t kFill = 1u << 0, kDilated = 1u << 1, kCirrus = 1u << 2, kCloud = 1u << 3,
                     kShadow = 1u << 4, kSnow = 1u << 5, kWater = 1u << 7;
  constexpr uint16_t kClear = 21824;  // 0x5540: clear (bit 6) with low confidences: valid
  const std::vector<uint16_t> values = {kClear,
                                        kFill,
                                        static_cast<uint16_t>(kClear | kDilated),
                                        static_cast<uint16_t>(kClear | kCirrus),
                                        static_cast<uint16_t>(kClear | kCloud),
                                        static_cast<uint16_t>(kClear | kShadow),
                                        static_cast<uint16_t>(kClear | kSnow),
                                        static_cast<uint16_t>(kClear | kWater),
                                        static_cast<uint16_t>(kCloud | kShadow | kSnow),
                                        0};
  std::vector<uint16_t> qa(static_cast<std::size_t>(kW * kH));
  for (int64_t r = 0; r < kH; ++r) {
    for (int64_t c = 0; c < kW; ++c) {
      qa[at(c, r)] = values[static_cast<std::size_t>((c * 7 + r * 3) % 10)];
    }
  }
  const std::string path = d / "qa.tif";
  test::write_raster<uint16_t>(path, grid, {qa});
  for (bool snow : {false, true}) {
    SCOPED_TRACE(snow ? "snow invalid" : "snow valid");
    MaskOptions o;
    o.file = path;
    o.type = rasters::parse_mask_type("qa_pixel");
    o.snow_invalid = snow;
    std::vector<uint8_t> want(qa.size());
    int64_t want_count = 0;
    for (std::size_t i = 0; i < qa.size(); ++i) {
      const uint16_t v = qa[i];
      const bool bad =
          (v & (kFill | kDilated | kCirrus | kCloud | kShadow)) != 0 || (snow && (v & kSnow) != 0);
      want[i] = bad ? 1 : 0;
      want_count += bad ? 1 : 0;
    }
    const auto valid = mask_of(o, grid, grid.full_window());
    EXPECT_EQ(count_masked(valid), want_count);
    EXPECT_EQ(differences(valid, want, kW, "qa_pixel"), 0);
    EXPECT_GT(want_count, 0);
    EXPECT_LT(want_count, kW * kH);
  }
}

// 0 is invalid, anything else valid; outside the mask raster is invalid.
TEST(Masks, BinaryMask) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  auto value = [](int64_t c, int64_t r) -> uint8_t {
    if ((c * 5 + r) % 3 == 0) return 0;
    return (c + r) % 2 ? 1 : 255;
  };
  // On the analysis grid.
  {
    std::vector<uint8_t> m(static_cast<std::size_t>(kW * kH)), want(m.size());
    for (int64_t r = 0; r < kH; ++r) {
      for (int64_t c = 0; c < kW; ++c) {
        m[at(c, r)] = value(c, r);
        want[at(c, r)] = value(c, r) == 0 ? 1 : 0;
      }
    }
    const std::string path = d / "binary.tif";
    test::write_raster<uint8_t>(path, grid, {m});
    MaskOptions o;
    o.file = path;
    o.type = MaskType::kBinary;
    const auto valid = mask_of(o, grid, grid.full_window());
    EXPECT_EQ(count_masked(valid), static_cast<int64_t>(std::count(want.begin(), want.end(), 1)));
    EXPECT_EQ(differences(valid, want, kW, "binary"), 0);
  }
  // On the same lattice, starting 3 columns to the right and 2 past the right edge: the first
  // 3 columns of the analysis grid are outside the mask, hence masked.
  {
    const int64_t mw = kW - 3 + 2;
    const Grid mgrid = test::utm_grid(mw, kH, 10.0, test::kOriginX + 30.0);
    std::vector<uint8_t> m(static_cast<std::size_t>(mw * kH));
    for (int64_t r = 0; r < kH; ++r) {
      for (int64_t c = 0; c < mw; ++c) m[test::px(c, r, mw)] = value(c, r);
    }
    std::vector<uint8_t> want(static_cast<std::size_t>(kW * kH));
    for (int64_t r = 0; r < kH; ++r) {
      for (int64_t c = 0; c < kW; ++c) want[at(c, r)] = (c < 3 || value(c - 3, r) == 0) ? 1 : 0;
    }
    const std::string path = d / "binary_offset.tif";
    test::write_raster<uint8_t>(path, mgrid, {m});
    MaskOptions o;
    o.file = path;
    o.type = rasters::parse_mask_type("binary");
    const auto valid = mask_of(o, grid, grid.full_window());
    EXPECT_EQ(differences(valid, want, kW, "binary offset"), 0);
  }
}

// A pixel of a given SCL class.
struct Planted {
  int64_t col, row;
  int cls;
};

// An SCL raster on the analysis grid itself: vegetation (4) with the planted pixels set.
std::string write_scl_10m(const std::string& path, const std::vector<Planted>& planted) {
  std::vector<uint8_t> scl(static_cast<std::size_t>(kW * kH), 4);
  for (const Planted& p : planted) scl[at(p.col, p.row)] = static_cast<uint8_t>(p.cls);
  test::write_raster<uint8_t>(path, test::utm_grid(kW, kH), {scl});
  return path;
}

// Masked: within `n` pixels (a square) of a cloud or shadow pixel, or itself invalid.
std::vector<uint8_t> buffered(const std::vector<Planted>& planted, int64_t n) {
  std::vector<uint8_t> want(static_cast<std::size_t>(kW * kH), 0);
  for (const Planted& p : planted) {
    const bool cloud = p.cls == 3 || p.cls == 8 || p.cls == 9 || p.cls == 10;
    if (!cloud) {
      if (scl_invalid(p.cls, false)) want[at(p.col, p.row)] = 1;
      continue;
    }
    for (int64_t r = std::max<int64_t>(0, p.row - n); r <= std::min(kH - 1, p.row + n); ++r) {
      for (int64_t c = std::max<int64_t>(0, p.col - n); c <= std::min(kW - 1, p.col + n); ++c) {
        want[at(c, r)] = 1;
      }
    }
  }
  return want;
}

TEST(Masks, BufferAroundOneCloudIsASquare) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  const std::vector<Planted> planted = {{18, 11, 9}};
  MaskOptions o;
  o.file = write_scl_10m(d / "scl.tif", planted);
  o.type = MaskType::kScl;
  o.buffer = 2;
  const auto valid = mask_of(o, grid, grid.full_window());
  EXPECT_EQ(count_masked(valid), 25);  // 5 x 5
  for (int64_t r = 9; r <= 13; ++r) {
    for (int64_t c = 16; c <= 20; ++c) EXPECT_EQ(valid[at(c, r)], 0) << c << "," << r;
  }
  EXPECT_EQ(differences(valid, buffered(planted, 2), kW, "buffer 2"), 0);
  // Window by window (the halo reaches across windows) gives the same.
  EXPECT_EQ(differences(mask_by_tiles(o, grid, 8), buffered(planted, 2), kW, "buffer 2, 8 x 8"), 0);
  EXPECT_EQ(differences(mask_by_tiles(o, grid, 5), buffered(planted, 2), kW, "buffer 2, 5 x 5"), 0);
  o.buffer = 0;
  EXPECT_EQ(count_masked(mask_of(o, grid, grid.full_window())), 1);
}

TEST(Masks, BufferIsClippedAtTheEdges) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  const std::vector<Planted> planted = {{0, 11, 8},    // cloud on the left edge: 3 x 5
                                        {36, 22, 3},   // shadow in the bottom-right corner: 3 x 3
                                        {30, 3, 0},    // no data: masked, but not buffered
                                        {5, 2, 11},    // snow: valid by default, not buffered
                                        {12, 0, 10}};  // cirrus on the top edge: 5 x 3
  MaskOptions o;
  o.file = write_scl_10m(d / "scl.tif", planted);
  o.type = MaskType::kScl;
  o.buffer = 2;
  const auto valid = mask_of(o, grid, grid.full_window());
  EXPECT_EQ(count_masked(valid), 3 * 5 + 3 * 3 + 1 + 5 * 3);
  EXPECT_EQ(valid[at(5, 2)], 1);
  EXPECT_EQ(valid[at(29, 3)], 1);
  EXPECT_EQ(differences(valid, buffered(planted, 2), kW, "edges"), 0);
  EXPECT_EQ(differences(mask_by_tiles(o, grid, 7), buffered(planted, 2), kW, "edges, 7 x 7"), 0);
}

// The buffer counts pixels of the analysis grid, also when the SCL is coarser.
TEST(Masks, BufferOnA20mScl) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  const int64_t sw = (kW + 1) / 2, sh = (kH + 1) / 2;
  std::vector<uint8_t> scl(static_cast<std::size_t>(sw * sh), 5);
  scl[test::px(9, 5, sw)] = 9;  // covers analysis columns 18-19, rows 10-11
  const std::string path = d / "scl20.tif";
  test::write_raster<uint8_t>(path, test::utm_grid(sw, sh, 20.0), {scl});
  MaskOptions o;
  o.file = path;
  o.type = MaskType::kScl;
  o.buffer = 1;
  const auto valid = mask_of(o, grid, grid.full_window());
  EXPECT_EQ(count_masked(valid), 4 * 4);
  for (int64_t r = 9; r <= 12; ++r) {
    for (int64_t c = 17; c <= 20; ++c) EXPECT_EQ(valid[at(c, r)], 0) << c << "," << r;
  }
}

TEST(Masks, BadOptions) {
  test::TempDir d;
  const Grid grid = test::utm_grid(kW, kH);
  const std::string path = write_scl_10m(d / "scl.tif", {});
  MaskOptions o;
  o.file = path;
  o.type = MaskType::kScl;
  o.band = 2;
  try {
    rasters::MaskReader reader(o, grid);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_TRUE(test::contains(e.what(), path)) << e.what();
  }
  o.band = 1;
  o.buffer = -1;
  EXPECT_THROW(rasters::MaskReader reader(o, grid), Error);
  EXPECT_THROW(rasters::parse_mask_type("fmask"), Error);
  EXPECT_EQ(rasters::parse_mask_type("scl"), MaskType::kScl);
  EXPECT_STREQ(rasters::mask_type_name(MaskType::kQaPixel), "qa_pixel");
  // A mask elsewhere does not overlap the imagery.
  const std::string far = d / "far.tif";
  test::write_raster<uint8_t>(far, test::utm_grid(10, 10, 10.0, test::kOriginX + 200000.0),
                              {std::vector<uint8_t>(100, 4)});
  o.file = far;
  o.buffer = 0;
  try {
    rasters::MaskReader reader(o, grid);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_TRUE(test::contains(e.what(), far)) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Real Sentinel-2 data from ../shared/data.

std::string shared_file(const std::string& relative) {
  return test::shared_data() + "/" + relative;
}

// Coastal Tanzania, 20 m, reflectance x 1000; cloud-masked pixels are 0 in every band.
TEST(RealData, Sentinel2T37memNdviIsNodataExactlyWhereEveryBandIsZero) {
  const std::string path = shared_file("sentinel2_t37mem/S2_T37MEM_20160312_sref_10b_20m.tif");
  if (!test::have_shared_data() || !std::filesystem::exists(path)) {
    GTEST_SKIP() << "no shared data (" << path << ")";
  }
  rasters::ImageryOptions o;
  o.files = {path};
  o.sensor = "sentinel2";
  o.band_map = "blue=1,green=2,red=3,nir=7,swir1=9,swir2=10";
  const rasters::Imagery im = rasters::Imagery::open(o);
  const Grid grid = rasters::analysis_grid({&im});
  DatasetPtr in = open_raster(path);
  ASSERT_EQ(in->GetRasterCount(), 10);
  EXPECT_TRUE(grid.same_as(Grid::of(*in, path)));
  std::vector<std::vector<uint16_t>> bands;
  for (int b = 1; b <= 10; ++b) bands.push_back(test::read_band<uint16_t>(*in, b));
  test::TempDir out;
  rasters::IndexJob job;
  job.indices = {rasters::IndexId::kNdvi};
  job.out_dir = out.path();
  const rasters::IndexRunResult r = rasters::compute_indices(im, grid, job);
  DatasetPtr ds = open_raster(out / "ndvi.tif");
  int has_nodata = 0;
  EXPECT_EQ(ds->GetRasterBand(1)->GetNoDataValue(&has_nodata), -9999.0);
  EXPECT_TRUE(has_nodata);
  EXPECT_EQ(Grid::of(*ds).crs().epsg(), 32737);
  const auto got = test::read_band<float>(*ds);
  ASSERT_EQ(got.size(), bands[0].size());
  int64_t all_zero = 0, bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    bool zero = true;
    for (const auto& b : bands) zero = zero && b[i] == 0;
    all_zero += zero ? 1 : 0;
    const double red = bands[2][i], nir = bands[6][i];
    bool ok;
    if (zero) {
      ok = got[i] == -9999.0f;
    } else {
      ok = got[i] != -9999.0f && std::abs(got[i] - (nir - red) / (nir + red)) <= 1e-6;
    }
    if (!ok && ++bad <= 5) {
      ADD_FAILURE() << "pixel " << i << ": " << got[i] << ", red " << red << ", nir " << nir;
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(all_zero, 0);  // about 49 % of this date is cloud-masked
  EXPECT_EQ(r.valid, static_cast<int64_t>(got.size()) - all_zero);
  EXPECT_EQ(r.total, static_cast<int64_t>(got.size()));
}

// Aberystwyth: the NDVI the source project expects is (band 8 - band 3) / (band 8 + band 3).
TEST(RealData, Sentinel2AberNdviEqualsTheReference) {
  const std::string path = shared_file("sentinel2_aber/sen2_20210527_aber_subset.tif");
  const std::string ref_path = shared_file("sentinel2_aber/sen2_20210527_aber_subset_ndvi_ref.tif");
  if (!test::have_shared_data() || !std::filesystem::exists(path) ||
      !std::filesystem::exists(ref_path)) {
    GTEST_SKIP() << "no shared data (" << path << ")";
  }
  rasters::ImageryOptions o;
  o.files = {path};
  o.band_map = "red=3,nir=8";
  const rasters::Imagery im = rasters::Imagery::open(o);
  const Grid grid = rasters::analysis_grid({&im});
  test::TempDir out;
  rasters::IndexJob job;
  job.indices = {rasters::IndexId::kNdvi};
  job.out_dir = out.path();
  const rasters::IndexRunResult r = rasters::compute_indices(im, grid, job);
  EXPECT_EQ(r.valid, r.total);  // every pixel is valid here
  DatasetPtr ds = open_raster(out / "ndvi.tif");
  DatasetPtr ref = open_raster(ref_path);
  const Grid g = Grid::of(*ds), gref = Grid::of(*ref, ref_path);
  EXPECT_TRUE(g.same_as(gref)) << g.describe() << " vs " << gref.describe();
  const auto got = test::read_band<float>(*ds);
  const auto want = test::read_band<float>(*ref);
  ASSERT_EQ(got.size(), want.size());
  int64_t bad = 0;
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double diff = std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    worst = std::max(worst, diff);
    if (!(diff <= 1e-6) && ++bad <= 5) {
      ADD_FAILURE() << "pixel " << i << ": " << got[i] << ", reference " << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << "largest difference " << worst;
}

}  // namespace
}  // namespace fw
