#include <gtest/gtest.h>

#include <gdal_utils.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/raster_io.hpp"
#include "pipelines/synth.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

namespace fs = std::filesystem;

const std::string kBin = FW_BINARY;
const std::string kCogValidator =
    "/usr/share/doc/python3-gdal/examples/validate_cloud_optimized_geotiff.py";
const std::string kPython = "/usr/bin/python3";

void make_scene(const std::string& dir, int64_t size, int parcels, uint64_t seed) {
  synth::Options o;
  o.out = dir;
  o.width = size;
  o.height = size;
  o.parcels = parcels;
  o.seed = seed;
  synth::generate(o);
}

// ESA SCL classes farmwatch masks by default: no data, defective, shadow, clouds, cirrus.
bool scl_invalid(int cls) {
  return cls == 0 || cls == 1 || cls == 3 || cls == 8 || cls == 9 || cls == 10;
}

// Runs `farmwatch indices` on the scene's date 1 with its SCL mask and checks every output:
// a valid COG (when GDAL's validator is installed), date 1's grid, nodata -9999, overviews on
// large rasters, and NDVI equal to (B8 - B4) / (B8 + B4) where the SCL is valid.
void run_and_check(const std::string& scene, bool expect_overviews) {
  test::TempDir out;
  std::string text;
  const std::string date1 = scene + "/date1.tif", scl = scene + "/date1_scl.tif";
  ASSERT_EQ(test::run(kBin + " indices --input " + date1 + " --mask " + scl +
                          " --index ndvi,ndbi,mndwi --out " + out.path(),
                      &text),
            0)
      << text;
  DatasetPtr in = open_raster(date1);
  const Grid grid = Grid::of(*in, date1);
  const bool validator = fs::exists(kCogValidator) && fs::exists(kPython);
  for (const char* index_name : {"ndvi", "ndbi", "mndwi"}) {
    const std::string name = index_name;
    SCOPED_TRACE(name);
    const std::string path = out / (name + ".tif");
    ASSERT_TRUE(fs::exists(path)) << text;
    if (validator) {
      std::string report;
      EXPECT_EQ(test::run(kPython + " " + kCogValidator + " " + path, &report), 0) << report;
      EXPECT_TRUE(test::contains(report, "is a valid cloud optimized GeoTIFF")) << report;
    }
    DatasetPtr ds = open_raster(path);
    const Grid g = Grid::of(*ds, path);
    EXPECT_EQ(g.crs().epsg(), 32650);
    EXPECT_EQ(g.width(), grid.width());
    EXPECT_EQ(g.height(), grid.height());
    for (std::size_t k = 0; k < 6; ++k) {
      EXPECT_DOUBLE_EQ(g.transform().c[k], grid.transform().c[k]) << "coefficient " << k;
    }
    GDALRasterBand* band = ds->GetRasterBand(1);
    int has_nodata = 0;
    const double nodata = band->GetNoDataValue(&has_nodata);
    EXPECT_TRUE(has_nodata);
    EXPECT_EQ(nodata, -9999.0);
    EXPECT_EQ(band->GetRasterDataType(), GDT_Float32);
    EXPECT_EQ(std::string(band->GetDescription()), name);
    if (expect_overviews) {
      EXPECT_GE(band->GetOverviewCount(), 1);
    }
    const auto v = test::read_band<float>(*ds);
    int64_t valid = 0, out_of_range = 0;
    for (float x : v) {
      if (x == -9999.0f) continue;
      ++valid;
      out_of_range += (x >= -1.0f && x <= 1.0f) ? 0 : 1;
    }
    EXPECT_GT(valid, 0);
    EXPECT_EQ(out_of_range, 0);
  }
  // NDVI pixel by pixel, against the DNs and the 20 m SCL (each SCL pixel covers 2 x 2).
  DatasetPtr scl_ds = open_raster(scl);
  const auto classes = test::read_band<uint8_t>(*scl_ds);
  const int64_t scl_w = scl_ds->GetRasterXSize();
  const auto red = test::read_band<uint16_t>(*in, 3), nir = test::read_band<uint16_t>(*in, 4);
  DatasetPtr nd = open_raster(out / "ndvi.tif");
  const auto ndvi = test::read_band<float>(*nd);
  ASSERT_EQ(ndvi.size(), red.size());
  int64_t bad = 0, masked = 0;
  for (int64_t r = 0; r < grid.height(); ++r) {
    for (int64_t c = 0; c < grid.width(); ++c) {
      const std::size_t i = test::px(c, r, grid.width());
      const bool invalid = scl_invalid(classes[test::px(c / 2, r / 2, scl_w)]) || red[i] == 0 ||
                           nir[i] == 0 || red[i] == 65535 || nir[i] == 65535;
      masked += invalid ? 1 : 0;
      const double n = static_cast<double>(nir[i]), rd = static_cast<double>(red[i]);
      const double want = (n - rd) / (n + rd);
      const bool ok = invalid ? ndvi[i] == -9999.0f : std::abs(ndvi[i] - want) <= 1e-6;
      if (!ok && ++bad <= 5) {
        ADD_FAILURE() << "ndvi (" << c << ", " << r << ") = " << ndvi[i] << ", expected "
                      << (invalid ? -9999.0 : want);
      }
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_LT(masked, grid.width() * grid.height());
  // Nothing but the three outputs (and no temporaries) in the folder.
  for (const auto& entry : test::dir_entries(out.path())) {
    EXPECT_FALSE(test::contains(entry, ".part-")) << entry;
  }
}

TEST(CliIndices, WritesValidCogsOnTheInputGrid) {
  test::TempDir scene;
  make_scene(scene.path(), 300, 30, 3);
  run_and_check(scene.path(), false);
}

TEST(CliIndices, LargeRastersHaveOverviews) {
  test::TempDir scene;
  make_scene(scene.path(), 600, 30, 4);
  run_and_check(scene.path(), true);
}

// Bad inputs: the right exit code, a message naming what is wrong, and nothing written.
class CliIndicesBadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scene_ = new test::TempDir();
    make_scene(scene_->path(), 300, 30, 5);
  }
  static void TearDownTestSuite() {
    delete scene_;
    scene_ = nullptr;
  }
  static std::string scene(const std::string& name) { return *scene_ / name; }

  // Runs `farmwatch indices ARGS --index ndvi,ndbi,mndwi --out DIR`; expects `code`, each of
  // `needles` in the output, and an empty DIR (no .tif, no hidden .part file).
  static void expect_failure(const std::string& args, int code,
                             const std::vector<std::string>& needles) {
    test::TempDir out;
    std::string text;
    const int rc = test::run(
        kBin + " indices " + args + " --index ndvi,ndbi,mndwi --out " + out.path(), &text);
    EXPECT_EQ(rc, code) << text;
    for (const auto& needle : needles) {
      EXPECT_TRUE(test::contains(text, needle)) << "'" << needle << "' not in:\n" << text;
    }
    const auto left = test::dir_entries(out.path());
    EXPECT_TRUE(left.empty()) << "left in the output folder: " << test::join(left);
  }

  static test::TempDir* scene_;
};

test::TempDir* CliIndicesBadInput::scene_ = nullptr;

TEST_F(CliIndicesBadInput, MissingInputFile) {
  const std::string missing = scene("no_such_date.tif");
  expect_failure("--input " + missing, 3, {missing});
}

TEST_F(CliIndicesBadInput, TruncatedGeoTiff) {
  const std::string truncated = scene("truncated.tif");
  ASSERT_TRUE(fs::copy_file(scene("date1.tif"), truncated, fs::copy_options::overwrite_existing));
  const auto size = fs::file_size(truncated);
  fs::resize_file(truncated, size * 2 / 5);
  expect_failure("--input " + truncated, 3, {truncated});
}

TEST_F(CliIndicesBadInput, BandMapBeyondTheBands) {
  const std::string date1 = scene("date1.tif");
  expect_failure("--input " + date1 + " --bands red=3,nir=9", 3, {date1, "band 9", "6 band(s)"});
}

TEST_F(CliIndicesBadInput, UnknownSensorIsAUsageError) {
  expect_failure("--input " + scene("date1.tif") + " --sensor spot7", 2, {"spot7", "sentinel2"});
}

TEST_F(CliIndicesBadInput, AlignToARasterElsewhere) {
  // A small raster 200 km east of the scene, in the same CRS.
  const std::string far = scene("far_away.tif");
  const Grid grid = test::utm_grid(20, 20, 10.0, test::kOriginX + 200000.0);
  test::write_raster<uint8_t>(far, grid, {std::vector<uint8_t>(400, 1)});
  const std::string date1 = scene("date1.tif");
  expect_failure("--input " + date1 + " --align-to " + far, 3, {"does not overlap", date1});
}

}  // namespace
}  // namespace fw

namespace fw {
namespace {

// A Sentinel-2 granule as single-band files (10 m B04, B08; 20 m B11; 20 m SCL), named as ESA
// names them: band names come from the file names, B11 is resampled onto the 10 m grid.
TEST(CliIndices, SingleBandGranuleFilesWithA20mBand) {
  test::TempDir d;
  make_scene(d.path(), 256, 12, 4);
  const std::string in = d / "date1.tif";
  auto translate = [&](const std::string& out, std::vector<std::string> args) {
    CPLStringList a;
    for (const auto& s : args) a.AddString(s.c_str());
    GDALTranslateOptions* o = GDALTranslateOptionsNew(a.List(), nullptr);
    DatasetPtr src = open_raster(in);
    GDALDatasetH h = GDALTranslate(out.c_str(), GDALDataset::ToHandle(src.get()), o, nullptr);
    GDALTranslateOptionsFree(o);
    ASSERT_NE(h, nullptr);
    GDALClose(h);
  };
  const std::string pre = d / "T50RKU_20240518T030521_";
  translate(pre + "B04_10m.tif", {"-b", "3"});
  translate(pre + "B08_10m.tif", {"-b", "4"});
  translate(pre + "B11_20m.tif", {"-b", "5", "-tr", "20", "20", "-r", "average"});
  std::string out;
  ASSERT_EQ(test::run(kBin + " indices --input " + pre + "B04_10m.tif " + pre + "B08_10m.tif " +
                          pre + "B11_20m.tif --mask " + d / "date1_scl.tif" +
                          " --index ndvi,ndbi --out " + d / "out",
                      &out),
            0)
      << out;
  EXPECT_NE(out.find("sensor sentinel2"), std::string::npos) << out;
  DatasetPtr ndbi = open_raster(d / "out/ndbi.tif");
  EXPECT_EQ(ndbi->GetRasterXSize(), 256);
  EXPECT_DOUBLE_EQ(Grid::of(*ndbi).dx(), 10.0);
  // NDBI from the 20 m SWIR: away from field edges it follows the 10 m truth closely; compare
  // with NDBI computed at 10 m from date1.tif, over valid pixels.
  DatasetPtr full = open_raster(in);
  std::vector<uint16_t> nir, swir;
  read_window(*full, 4, {0, 0, 256, 256}, nir);
  read_window(*full, 5, {0, 0, 256, 256}, swir);
  std::vector<float> got;
  read_window(*ndbi, 1, {0, 0, 256, 256}, got);
  double err = 0;
  int n = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] == -9999.0f) continue;
    const double truth = (double(swir[i]) - nir[i]) / (double(swir[i]) + nir[i]);
    err += std::abs(got[i] - truth);
    ++n;
  }
  ASSERT_GT(n, 30000);
  EXPECT_LT(err / n, 0.05);  // mean absolute difference from resampling a 20 m band
}

}  // namespace
}  // namespace fw
