// The direct tile reader against GDAL's RasterIO: every type, predictor, interleave, tile size,
// classic TIFF and BigTIFF, windows across tile edges and outside the raster, type conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "engine/raster_io.hpp"
#include "engine/scheduler.hpp"
#include "engine/tiff_tiles.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

struct Layout {
  GDALDataType type;
  int bands;
  const char* compress;
  const char* predictor;
  const char* interleave;
  const char* bigtiff;
  int tile;
};

// A width x height raster of `l`'s layout with values that are smooth plus noise (so that the
// predictors have something to do), negative and NaN where the type allows.
std::string make(const test::TempDir& dir, const std::string& name, const Layout& l, int width,
                 int height, uint32_t seed) {
  const std::string path = dir / name;
  GdalOptions o;
  o.set("TILED", "YES").set("BLOCKXSIZE", std::to_string(l.tile));
  o.set("BLOCKYSIZE", std::to_string(l.tile)).set("COMPRESS", l.compress);
  o.set("PREDICTOR", l.predictor).set("INTERLEAVE", l.interleave).set("BIGTIFF", l.bigtiff);
  DatasetPtr ds(driver("GTiff").Create(path.c_str(), width, height, l.bands, l.type, o.get()));
  EXPECT_TRUE(ds);
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<double> v(static_cast<std::size_t>(width) * height);
  for (int b = 1; b <= l.bands; ++b) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        double z = 100 * std::sin(0.05 * x + b) * std::cos(0.03 * y) + 20 * noise(rng);
        if (l.type == GDT_Byte || l.type == GDT_UInt16 || l.type == GDT_UInt32)
          z = std::abs(z) * 1.2;
        if (l.type == GDT_Float32 || l.type == GDT_Float64) {
          z *= 0.0123;
          if ((x * 7 + y * 13 + b) % 97 == 0) z = std::nan("");
        }
        v[static_cast<std::size_t>(y) * width + x] = z;
      }
    }
    EXPECT_EQ(ds->GetRasterBand(b)->RasterIO(GF_Write, 0, 0, width, height, v.data(), width, height,
                                             GDT_Float64, 0, 0, nullptr),
              CE_None);
  }
  return path;
}

// Equal bytes, so that NaN compares equal to NaN.
void expect_same_bytes(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                       const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0) << what;
}

void compare_reads(const std::string& path, const Layout& l, int width, int height) {
  DatasetPool pool(path);
  DatasetPtr ds = open_raster(path);
  ASSERT_TRUE(TiffTiles::open(path, *ds)) << path << ": the direct reader should take it";
  std::mt19937 rng(7);
  const int ts = GDALGetDataTypeSizeBytes(l.type);
  std::vector<Window> windows = {{0, 0, width, height},
                                 {0, 0, l.tile, l.tile},
                                 {l.tile - 3, l.tile - 5, 9, 11},
                                 {-4, -2, width + 9, 7},
                                 {width - 5, height - 4, 12, 10}};
  for (int k = 0; k < 20; ++k) {
    std::uniform_int_distribution<int64_t> px(-10, width - 1), py(-10, height - 1),
        sz(1, 3 * l.tile);
    windows.push_back({px(rng), py(rng), sz(rng), sz(rng)});
  }
  for (int b = 1; b <= l.bands; ++b) {
    for (const Window& w : windows) {
      const auto n = static_cast<std::size_t>(w.pixels());
      std::vector<uint8_t> direct(n * ts), gdal(n * ts);
      pool.read(b, w, l.type, direct.data(), 3.0);
      read_window(*ds, b, w, l.type, gdal.data(), 3.0);
      expect_same_bytes(direct, gdal,
                        path + " band " + std::to_string(b) + " window " + std::to_string(w.x) +
                            "," + std::to_string(w.y) + " " + std::to_string(w.w) + "x" +
                            std::to_string(w.h));
      // And converted, as the zonal statistics read (Float64).
      std::vector<uint8_t> d64(n * 8), g64(n * 8);
      pool.read(b, w, GDT_Float64, d64.data(), -1.0);
      read_window(*ds, b, w, GDT_Float64, g64.data(), -1.0);
      expect_same_bytes(d64, g64, path + " as Float64");
    }
  }
}

TEST(TiffTiles, EqualsGdalForEveryLayout) {
  test::TempDir dir;
  const std::vector<Layout> layouts = {
      {GDT_Byte, 1, "DEFLATE", "2", "BAND", "NO", 256},
      {GDT_Byte, 6, "DEFLATE", "2", "PIXEL", "NO", 128},
      {GDT_Byte, 3, "DEFLATE", "1", "BAND", "YES", 64},
      {GDT_UInt16, 1, "DEFLATE", "2", "BAND", "NO", 256},
      {GDT_UInt16, 4, "DEFLATE", "2", "PIXEL", "YES", 128},
      {GDT_Int16, 2, "NONE", "1", "BAND", "NO", 64},
      {GDT_Int16, 5, "DEFLATE", "2", "PIXEL", "NO", 32},
      {GDT_UInt32, 1, "DEFLATE", "2", "BAND", "NO", 128},
      {GDT_Int32, 2, "DEFLATE", "2", "PIXEL", "NO", 64},
      {GDT_Float32, 1, "DEFLATE", "3", "BAND", "NO", 512},
      {GDT_Float32, 1, "DEFLATE", "3", "BAND", "YES", 256},
      {GDT_Float32, 3, "DEFLATE", "3", "PIXEL", "NO", 128},
      {GDT_Float32, 2, "NONE", "1", "PIXEL", "NO", 64},
      {GDT_Float64, 1, "DEFLATE", "3", "BAND", "NO", 128},
      {GDT_Float64, 2, "DEFLATE", "1", "PIXEL", "YES", 64},
  };
  int k = 0;
  for (const Layout& l : layouts) {
    // Sizes that are not multiples of the tile: partial edge tiles.
    const int width = 3 * l.tile + 37, height = 2 * l.tile + 11;
    const std::string path = make(dir, "r" + std::to_string(k) + ".tif", l, width, height, 11 + k);
    compare_reads(path, l, width, height);
    ++k;
  }
}

TEST(TiffTiles, CloudOptimizedGeoTiffsAreReadDirectly) {
  test::TempDir dir;
  const Layout l{GDT_Float32, 1, "DEFLATE", "3", "BAND", "NO", 256};
  const std::string src = make(dir, "src.tif", l, 700, 600, 3);
  DatasetPtr s = open_raster(src);
  GdalOptions o;
  o.set("COMPRESS", "DEFLATE").set("PREDICTOR", "YES").set("BLOCKSIZE", "256");
  DatasetPtr cog(driver("COG").CreateCopy((dir / "cog.tif").c_str(), s.get(), FALSE, o.get(),
                                          nullptr, nullptr));
  ASSERT_TRUE(cog);
  cog.reset();
  compare_reads(dir / "cog.tif", l, 700, 600);
}

TEST(TiffTiles, OtherLayoutsAreLeftToGdal) {
  test::TempDir dir;
  const Layout lzw{GDT_UInt16, 1, "LZW", "2", "BAND", "NO", 128};
  const std::string a = make(dir, "lzw.tif", lzw, 300, 200, 1);
  DatasetPtr da = open_raster(a);
  EXPECT_FALSE(TiffTiles::open(a, *da));
  // Strips.
  const std::string b = dir / "strips.tif";
  {
    GdalOptions o;
    o.set("COMPRESS", "DEFLATE");
    DatasetPtr ds(driver("GTiff").Create(b.c_str(), 300, 200, 1, GDT_Byte, o.get()));
    ASSERT_TRUE(ds);
  }
  DatasetPtr db = open_raster(b);
  EXPECT_FALSE(TiffTiles::open(b, *db));
  // Still read, through GDAL, with the same values.
  DatasetPool pool(a);
  std::vector<uint16_t> p, g;
  pool.read(1, {10, 20, 150, 100}, p);
  read_window(*da, 1, {10, 20, 150, 100}, g);
  EXPECT_EQ(p, g);
}

TEST(TiffTiles, SparseTilesFallBackToGdal) {
  test::TempDir dir;
  const std::string path = dir / "sparse.tif";
  {
    GdalOptions o;
    o.set("TILED", "YES").set("BLOCKXSIZE", "64").set("BLOCKYSIZE", "64");
    o.set("COMPRESS", "DEFLATE").set("SPARSE_OK", "TRUE");
    DatasetPtr ds(driver("GTiff").Create(path.c_str(), 200, 150, 1, GDT_Int16, o.get()));
    ASSERT_TRUE(ds);
    ds->GetRasterBand(1)->SetNoDataValue(-9);
    std::vector<int16_t> v(64 * 64, 1234);
    write_window(*ds, 1, {64, 64, 64, 64}, v);
  }
  DatasetPool pool(path);
  DatasetPtr ds = open_raster(path);
  std::vector<int16_t> p, g;
  pool.read(1, {0, 0, 200, 150}, p);
  read_window(*ds, 1, {0, 0, 200, 150}, g);
  EXPECT_EQ(p, g);
  EXPECT_EQ(p[0], -9);                // a sparse tile reads as nodata (GDAL)
  EXPECT_EQ(p[70 * 200 + 70], 1234);  // the written tile
}

TEST(TiffTiles, ACorruptTileIsAnErrorNamingTheFile) {
  test::TempDir dir;
  const Layout l{GDT_Float32, 1, "DEFLATE", "3", "BAND", "NO", 64};
  const std::string path = make(dir, "bad.tif", l, 128, 128, 5);
  // Overwrite the middle of the file (inside the tiles' compressed bytes).
  {
    FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_TRUE(f);
    std::fseek(f, 0, SEEK_END);
    const long size = std::ftell(f);
    std::fseek(f, size / 2, SEEK_SET);
    std::vector<char> junk(400, '\x5a');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  DatasetPool pool(path);
  std::vector<float> v;
  try {
    pool.read(1, {0, 0, 128, 128}, v);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.tif"), std::string::npos) << e.what();
  }
}

TEST(TiffTiles, ATruncatedFileIsLeftToGdal) {
  test::TempDir dir;
  const Layout l{GDT_Float32, 1, "DEFLATE", "3", "BAND", "NO", 64};
  const std::string path = make(dir, "cut.tif", l, 256, 256, 9);
  // Cut the file at 60 %: the header and directory are there, the last tiles are not.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) * 6 / 10);
  DatasetPtr ds = open_raster(path);
  EXPECT_FALSE(TiffTiles::open(path, *ds));
  DatasetPool pool(path);
  std::vector<float> v;
  try {
    pool.read(1, {0, 0, 256, 256}, v);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.tif"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fw
