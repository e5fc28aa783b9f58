#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"
#include "rasters/imagery.hpp"
#include "rasters/sensor.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

using rasters::Role;

TEST(Sensor, NormalizeBandName) {
  EXPECT_EQ(rasters::normalize_band_name("B04"), "B4");
  EXPECT_EQ(rasters::normalize_band_name("b8a"), "B8A");
  EXPECT_EQ(rasters::normalize_band_name("B8A"), "B8A");
  EXPECT_EQ(rasters::normalize_band_name("SR_B4"), "SR_B4");
  EXPECT_EQ(rasters::normalize_band_name("SR_B04"), "SR_B4");
  EXPECT_EQ(rasters::normalize_band_name("B12"), "B12");
  EXPECT_EQ(rasters::normalize_band_name("B1"), "B1");
  // Generic descriptions carry no name.
  EXPECT_EQ(rasters::normalize_band_name("Band 4"), "");
  EXPECT_EQ(rasters::normalize_band_name(""), "");
  EXPECT_EQ(rasters::normalize_band_name("red"), "");
}

TEST(Sensor, BandNameFromFilename) {
  EXPECT_EQ(rasters::band_name_from_filename("T50RKU_20240518T030521_B04_10m.jp2"), "B4");
  EXPECT_EQ(rasters::band_name_from_filename("/data/s2/T50RKU_20240518T030521_B8A_20m.jp2"), "B8A");
  EXPECT_EQ(rasters::band_name_from_filename("T50RKU_20240518T030521_B12.tif"), "B12");
  EXPECT_EQ(rasters::band_name_from_filename("LC09_L2SP_123032_20240101_20240102_02_T1_SR_B5.TIF"),
            "SR_B5");
  EXPECT_EQ(
      rasters::band_name_from_filename("/x/LC08_L2SP_123032_20240101_20240102_02_T1_SR_B4.tif"),
      "SR_B4");
  EXPECT_EQ(rasters::band_name_from_filename("foo.tif"), "");
  EXPECT_EQ(rasters::band_name_from_filename("/data/B04/scene.tif"), "");
}

TEST(Sensor, ParseBandMap) {
  const auto m = rasters::parse_band_map("red=3,nir=8");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].first, "red");
  EXPECT_EQ(m[0].second, "3");
  EXPECT_EQ(m[1].first, "nir");
  EXPECT_EQ(m[1].second, "8");
  const auto named = rasters::parse_band_map("nir=B8A");
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].second, "B8A");
  EXPECT_TRUE(rasters::parse_band_map("").empty());
  for (const char* bad : {"red3", "red=", "=3", "red=3,nir"}) {
    try {
      rasters::parse_band_map(bad);
      ADD_FAILURE() << "no error for '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage) << bad;
      EXPECT_TRUE(test::contains(e.what(), "red=3,nir=8")) << e.what();  // shows an example
    }
  }
}

TEST(Sensor, Presets) {
  const rasters::SensorPreset& l8 = rasters::sensor_preset("landsat89");
  EXPECT_DOUBLE_EQ(l8.scale, 0.0000275);
  EXPECT_DOUBLE_EQ(l8.offset, -0.2);
  EXPECT_EQ(l8.roles[static_cast<std::size_t>(Role::kNir)], "SR_B5");
  const rasters::SensorPreset& s2 = rasters::sensor_preset("sentinel2");
  EXPECT_DOUBLE_EQ(s2.scale, 1e-4);
  EXPECT_DOUBLE_EQ(s2.offset, 0.0);
  ASSERT_TRUE(s2.nodata.has_value());
  EXPECT_EQ(*s2.nodata, 0.0);
  ASSERT_TRUE(s2.saturated.has_value());
  EXPECT_EQ(*s2.saturated, 65535.0);
  EXPECT_EQ(s2.roles[static_cast<std::size_t>(Role::kRed)], "B4");
  EXPECT_EQ(s2.roles[static_cast<std::size_t>(Role::kSwir1)], "B11");
  EXPECT_TRUE(rasters::sensor_preset("gf1wfv").gain_from_user);
  const auto ids = rasters::sensor_ids();
  for (const char* id : {"sentinel2", "landsat89", "gf1wfv", "gf6wfv", "gf2pms", "generic"}) {
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << id;
  }
}

TEST(Sensor, UnknownPresetListsTheKnownOnes) {
  try {
    rasters::sensor_preset("nosuch");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    const std::string what = e.what();
    EXPECT_TRUE(test::contains(what, "nosuch")) << what;
    EXPECT_TRUE(test::contains(what, "sentinel2")) << what;
    EXPECT_TRUE(test::contains(what, "landsat89")) << what;
  }
}

TEST(Sensor, ParseRole) {
  EXPECT_EQ(rasters::parse_role("red"), Role::kRed);
  EXPECT_EQ(rasters::parse_role("NIR"), Role::kNir);
  EXPECT_EQ(rasters::parse_role("Blue"), Role::kBlue);
  EXPECT_EQ(rasters::parse_role("green"), Role::kGreen);
  EXPECT_EQ(rasters::parse_role("swir1"), Role::kSwir1);
  EXPECT_EQ(rasters::parse_role("swir"), Role::kSwir1);
  EXPECT_EQ(rasters::parse_role("swir16"), Role::kSwir1);
  EXPECT_EQ(rasters::parse_role("swir2"), Role::kSwir2);
  EXPECT_EQ(rasters::parse_role("swir22"), Role::kSwir2);
  EXPECT_EQ(rasters::parse_role("thermal"), Role::kThermal);
  EXPECT_EQ(rasters::parse_role("tir"), Role::kThermal);
  EXPECT_FALSE(rasters::parse_role("B4").has_value());
  EXPECT_FALSE(rasters::parse_role("").has_value());
  for (int r = 0; r < rasters::kRoleCount; ++r) {
    const Role role = static_cast<Role>(r);
    EXPECT_EQ(rasters::parse_role(rasters::role_name(role)), role) << rasters::role_name(role);
  }
}

// Landsat band files are recognised by their names: sensor, roles and reflectance scaling.
TEST(Sensor, LandsatBandFilesAreDetected) {
  test::TempDir d;
  const Grid grid = test::utm_grid(5, 4, 30.0);
  const std::size_t n = static_cast<std::size_t>(grid.full_window().pixels());
  std::vector<uint16_t> red(n, 10000), nir(n, 20000);
  red[0] = 0;  // nodata
  const std::string stem = "LC09_L2SP_123032_20240101_20240102_02_T1_";
  const std::string red_path = d / (stem + "SR_B4.TIF"), nir_path = d / (stem + "SR_B5.TIF");
  test::write_raster<uint16_t>(red_path, grid, {red});
  test::write_raster<uint16_t>(nir_path, grid, {nir});
  rasters::ImageryOptions o;
  o.files = {red_path, nir_path};
  const rasters::Imagery im = rasters::Imagery::open(o);
  EXPECT_EQ(im.sensor().id, "landsat89");
  ASSERT_TRUE(im.has(Role::kRed));
  ASSERT_TRUE(im.has(Role::kNir));
  EXPECT_FALSE(im.has(Role::kSwir1));
  EXPECT_EQ(im.band(Role::kRed).name, "SR_B4");
  EXPECT_EQ(im.band(Role::kRed).file, red_path);
  EXPECT_EQ(im.band(Role::kNir).name, "SR_B5");
  EXPECT_EQ(im.band(Role::kNir).stack_index, 2);
  EXPECT_DOUBLE_EQ(im.band(Role::kRed).scale, 0.0000275);
  EXPECT_DOUBLE_EQ(im.band(Role::kRed).offset, -0.2);
  EXPECT_TRUE(test::contains(im.describe_bands(), "'SR_B4' (red)")) << im.describe_bands();
  EXPECT_TRUE(im.grid().same_as(grid));

  rasters::BandReader reader(im.band(Role::kRed), im.grid(), rasters::Resampling::kNearest);
  EXPECT_FALSE(reader.warped());
  std::vector<float> refl(n);
  reader.read_reflectance(grid.full_window(), refl.data());
  EXPECT_TRUE(std::isnan(refl[0]));
  for (std::size_t i = 1; i < n; ++i) EXPECT_NEAR(refl[i], 10000 * 0.0000275 - 0.2, 1e-6) << i;
}

}  // namespace
}  // namespace fw
