#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/error.hpp"
#include "engine/raster_io.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

TEST(Error, MessageCarriesContext) {
  const Error e(ExitCode::kInput, "bad value",
                {.file = "a.yaml", .stage = "change", .line = 12, .column = 3});
  EXPECT_STREQ(e.what(), "[change] a.yaml:12:3: bad value");
  const Error f =
      Error(ExitCode::kInput, "read failed", {.band = 4}).with({.file = "x.tif", .band = 1});
  EXPECT_STREQ(f.what(), "x.tif, band 4: read failed");
  EXPECT_EQ(f.code(), ExitCode::kInput);
  EXPECT_STREQ(exit_code_name(ExitCode::kLocked), "locked");
  EXPECT_EQ(static_cast<int>(ExitCode::kCancelled), 5);
}

TEST(Error, MissingFileNamesTheFile) {
  try {
    open_raster("/nonexistent/scene.tif");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/scene.tif"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("no such file"), std::string::npos);
  }
}

TEST(Error, NotARasterIsAnInputError) {
  test::TempDir dir;
  std::ofstream(dir / "notes.tif") << "this is not a tiff";
  try {
    open_raster(dir / "notes.tif");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(std::string(e.what()).find("notes.tif"), std::string::npos);
  }
}

TEST(Error, TruncatedGeoTiffFailsOnRead) {
  test::TempDir dir;
  const std::string path = dir / "t.tif";
  const Grid grid(GeoTransform::north_up(0, 0, 10, 10), 512, 512);
  {
    DatasetPtr ds = create_gtiff(path, grid, 1, GDT_UInt16);
    std::vector<uint16_t> v(512 * 512);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint16_t>(mix64(i));
    write_window(*ds, 1, grid.full_window(), v);
    close_dataset(ds, path);
  }
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size / 2);
  try {
    DatasetPtr ds = open_raster(path);
    std::vector<uint16_t> buf;
    read_window(*ds, 1, grid.full_window(), buf);
    FAIL() << "read a truncated file without error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(std::string(e.what()).find("t.tif"), std::string::npos);
  }
}

TEST(Error, MissingBandNamesTheBand) {
  test::TempDir dir;
  const std::string path = dir / "one.tif";
  {
    DatasetPtr ds = create_gtiff(path, Grid(GeoTransform::north_up(0, 0, 1, 1), 8, 8), 1, GDT_Byte);
    close_dataset(ds, path);
  }
  DatasetPtr ds = open_raster(path);
  std::vector<uint8_t> buf;
  try {
    read_window(*ds, 3, {0, 0, 8, 8}, buf);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("band 3 does not exist (the raster has 1)"),
              std::string::npos);
  }
}

TEST(RasterIo, WindowsOutsideTheRasterAreFilled) {
  test::TempDir dir;
  const std::string path = dir / "e.tif";
  {
    DatasetPtr ds =
        create_gtiff(path, Grid(GeoTransform::north_up(0, 0, 1, 1), 10, 10), 1, GDT_Int16);
    std::vector<int16_t> v(100);
    for (int i = 0; i < 100; ++i) v[static_cast<std::size_t>(i)] = static_cast<int16_t>(i);
    write_window(*ds, 1, {0, 0, 10, 10}, v);
    close_dataset(ds, path);
  }
  DatasetPtr ds = open_raster(path);
  std::vector<int16_t> buf;
  read_window(*ds, 1, {8, -1, 4, 3}, buf, -9);
  // Row -1 is outside; rows 0 and 1 hold 8, 9 and 18, 19 then fill.
  const std::vector<int16_t> expect = {-9, -9, -9, -9, 8, 9, -9, -9, 18, 19, -9, -9};
  EXPECT_EQ(buf, expect);
}

}  // namespace
}  // namespace fw
