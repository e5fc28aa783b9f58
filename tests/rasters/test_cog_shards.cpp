// Raster outputs of a sharded run: each shard encodes its windows' chunks and stores them; the
// merge adds them in window order. The file is the one-machine file, byte for byte, on both the
// fast path (Float32, DEFLATE) and GDAL's path (a Byte class raster with category names), also
// when the shards' writers are drafts; a draft itself holds the same pixels, without overviews.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/atomic_file.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/raster_io.hpp"
#include "engine/scheduler.hpp"
#include "rasters/cog.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

using rasters::CogOptions;
using rasters::CogWriter;

std::vector<float> window_values(const Window& w, bool classes) {
  std::vector<float> v(static_cast<std::size_t>(w.pixels()));
  for (int64_t y = 0; y < w.h; ++y) {
    for (int64_t x = 0; x < w.w; ++x) {
      const double gx = static_cast<double>(w.x + x), gy = static_cast<double>(w.y + y);
      float f = static_cast<float>(std::sin(gx / 37.0) * std::cos(gy / 23.0) + 1e-3 * gx);
      if (classes) f = static_cast<float>(static_cast<int>((f + 2.0f) * 2.0f) % 5);
      if (std::hypot(gx - 700, gy - 400) < 90) f = classes ? 255.0f : -9999.0f;  // nodata
      v[static_cast<std::size_t>(y * w.w + x)] = f;
    }
  }
  return v;
}

void expect_same_file_from_shards(const CogOptions& co, bool classes) {
  test::TempDir dir;
  const Grid grid = test::utm_grid(1300, 1100);
  const WindowPlan plan =
      WindowPlan::make(grid.width(), grid.height(), CogWriter::kTile, CogWriter::kTile, 512 * 512);
  ASSERT_EQ(plan.size(), 9u);
  auto chunk_of = [&](const CogWriter& w, const Window& win) {
    const auto v = window_values(win, classes);
    if (co.type == GDT_Float32) return w.encode(1, win, v.data());
    std::vector<uint8_t> b(v.begin(), v.end());
    return w.encode(1, win, b.data());
  };
  {
    CogWriter one(dir / "one.tif", grid, 1, co);
    for (const auto& win : plan.windows) one.add(chunk_of(one, win));
    one.commit();
  }
  const PartialKey key{"run", "cog", plan.size(), plan_hash(plan)};
  std::vector<int64_t> weights(plan.size(), 1);
  const auto ranges = assign_shards(weights, 4);
  std::vector<std::string> files;
  for (int k = 0; k < 4; ++k) {
    // A shard encodes with a writer of its own that it never commits, a draft.
    CogWriter::DraftScope drafts;
    CogWriter enc(dir / ("shard" + std::to_string(k) + ".tif"), grid, 1, co);
    PartialWriter out(dir / ("shard" + std::to_string(k) + ".part"), key);
    const auto& r = ranges[static_cast<std::size_t>(k)];
    for (std::size_t i = r.begin; i < r.end; ++i) {
      ByteWriter b;
      CogWriter::write_chunk(*chunk_of(enc, plan.windows[i]), b);
      out.add(i, b.take());
    }
    out.commit();
    files.push_back(dir / ("shard" + std::to_string(k) + ".part"));
  }
  {
    CogWriter merged(dir / "merged.tif", grid, 1, co);
    replay<std::shared_ptr<CogWriter::Chunk>>(
        plan, PartialSet(files, key), [](ByteReader& r) { return CogWriter::read_chunk(r); },
        [&](const Window&, std::size_t, std::shared_ptr<CogWriter::Chunk>& c) { merged.add(c); });
    merged.commit();
  }
  // A draft of the whole raster: the same pixels, no overviews.
  {
    CogWriter::DraftScope drafts;
    CogWriter draft(dir / "draft.tif", grid, 1, co);
    EXPECT_TRUE(draft.draft());
    for (const auto& win : plan.windows) draft.add(chunk_of(draft, win));
    draft.commit();
  }
  {
    DatasetPtr one = open_raster(dir / "one.tif"), draft = open_raster(dir / "draft.tif");
    std::vector<double> x, y;
    read_window(*one, 1, grid.full_window(), x);
    read_window(*draft, 1, grid.full_window(), y);
    EXPECT_TRUE(x == y) << "a draft holds other pixel values";
    EXPECT_GT(one->GetRasterBand(1)->GetOverviewCount(), 0);
    EXPECT_EQ(draft->GetRasterBand(1)->GetOverviewCount(), 0);
    EXPECT_EQ(CogWriter(dir / "later.tif", grid, 1, co).draft(), false);
  }
  const std::string a = read_file(dir / "one.tif"), b = read_file(dir / "merged.tif");
  EXPECT_GT(a.size(), 1000u);
  EXPECT_TRUE(a == b) << "the merged file differs from the one-machine file";
  for (int k = 0; k < 4; ++k)
    EXPECT_FALSE(std::filesystem::exists(dir / ("shard" + std::to_string(k) + ".tif")));
}

TEST(CogShards, FastPathFileIsIdentical) {
  CogOptions co;
  expect_same_file_from_shards(co, false);
}

TEST(CogShards, GdalPathClassRasterIsIdentical) {
  CogOptions co;
  co.type = GDT_Byte;
  co.nodata = 255;
  co.overview_resampling = "NEAREST";
  co.category_names = {"a", "b", "c", "d", "e"};
  co.colors = {
      {0, 0, 0, 255}, {255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {9, 9, 9, 255}};
  expect_same_file_from_shards(co, true);
}

}  // namespace
}  // namespace fw
