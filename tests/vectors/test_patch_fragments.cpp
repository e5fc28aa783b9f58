// Patches of a sharded run: each shard draws the clumps inside its band of rows and ships the
// fragments on its borders; the merge stitches them. On random maps of snakes, rings and blobs
// that wander across many bands, the merged patches equal one machine's: the same ids,
// categories, cells, areas, polygons and means to the bit, for several shard counts.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "engine/gdal_handles.hpp"
#include "engine/raster_io.hpp"
#include "engine/shard_session.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"
#include "vectors/patches.hpp"

namespace fw {
namespace {

constexpr int64_t kW = 300, kH = 260;

class PatchFragments : public ::testing::Test {
 protected:
  void SetUp() override {
    grid_ = test::utm_grid(kW, kH);
    std::mt19937 rng(21);
    std::vector<uint8_t> cls(kW * kH, 0);
    std::vector<float> mag(cls.size());
    auto at = [&](int64_t x, int64_t y) -> uint8_t& {
      return cls[static_cast<std::size_t>(std::clamp<int64_t>(y, 0, kH - 1) * kW +
                                          std::clamp<int64_t>(x, 0, kW - 1))];
    };
    // Snakes: random walks 2-3 cells wide, mostly downwards, one category each.
    for (int s = 0; s < 40; ++s) {
      int64_t x = rng() % kW, y = rng() % kH;
      const auto code = static_cast<uint8_t>(1 + rng() % 6);
      const int len = 20 + static_cast<int>(rng() % 200);
      for (int k = 0; k < len; ++k) {
        for (int d = 0; d < 2 + s % 2; ++d) at(x + d, y) = code;
        x += static_cast<int64_t>(rng() % 3) - 1;
        y += (rng() % 4 == 0) ? -1 : 1;
      }
    }
    // Rings (a hole, and a U whose arms meet only below a border) and blobs.
    for (int s = 0; s < 12; ++s) {
      const int64_t x0 = rng() % (kW - 40), y0 = rng() % (kH - 40), w = 8 + rng() % 30,
                    h = 8 + rng() % 30;
      const auto code = static_cast<uint8_t>(1 + rng() % 6);
      for (int64_t y = y0; y < y0 + h; ++y)
        for (int64_t x = x0; x < x0 + w; ++x) {
          const bool edge = x < x0 + 2 || x >= x0 + w - 2 || y >= y0 + h - 2 || y < y0 + 2;
          if (s % 3 == 0 ? true : (s % 3 == 1 ? edge : edge && y >= y0 + 2)) at(x, y) = code;
        }
    }
    // Speckle (sieved) and clouds (no data).
    for (int s = 0; s < 600; ++s) at(rng() % kW, rng() % kH) = static_cast<uint8_t>(1 + rng() % 6);
    for (int s = 0; s < 6; ++s) {
      const int64_t x0 = rng() % kW, y0 = rng() % kH;
      for (int64_t y = y0; y < y0 + 12; ++y)
        for (int64_t x = x0; x < x0 + 15; ++x) at(x, y) = 255;
    }
    std::uniform_real_distribution<float> u(0.01f, 1.7f);
    std::vector<uint8_t> inten(cls.size());
    for (std::size_t i = 0; i < cls.size(); ++i) {
      mag[i] = cls[i] == 255 ? -9999.0f : u(rng);
      inten[i] = cls[i] == 255 ? 255 : (cls[i] ? static_cast<uint8_t>(1 + rng() % 3) : 0);
    }
    test::write_raster<uint8_t>(dir_ / "change_class.tif", grid_, {cls}, {}, 255.0);
    test::write_raster<uint8_t>(dir_ / "change_intensity.tif", grid_, {inten}, {}, 255.0);
    test::write_raster<float>(dir_ / "change_magnitude.tif", grid_, {mag}, {}, -9999.0);
    opt_.change_class = dir_ / "change_class.tif";
    opt_.intensity = dir_ / "change_intensity.tif";
    opt_.magnitude = dir_ / "change_magnitude.tif";
    opt_.mmu_m2 = 600;
    so_.memory_mib = 1;  // strips of 16 rows: bands of one to a few strips
  }

  vectors::PatchSet local() const {
    return vectors::extract_patches(opt_, nullptr, nullptr, zo_, so_);
  }

  // Every shard computes its band (ending its run), then the merge stitches.
  vectors::PatchSet sharded(int count) const {
    const std::string root = dir_ / ("run-" + std::to_string(count));
    auto folder = [root](int phase, int shard) {
      return root + "/phase-" + std::to_string(phase) + "/" + std::to_string(shard);
    };
    for (int i = 0; i < count; ++i) {
      std::filesystem::create_directories(folder(1, i));
      SchedulerOptions so = so_;
      so.shard = ShardSession::shard({i, count}, 1, "key", folder, folder(1, i));
      try {
        vectors::extract_patches(opt_, nullptr, nullptr, zo_, so);
        ADD_FAILURE() << "shard " << i << " did not end its phase";
      } catch (const ShardPhaseDone& done) {
        EXPECT_TRUE(done.computed);
        EXPECT_EQ(done.pass, "patch cells");
      }
    }
    SchedulerOptions so = so_;
    so.shard = ShardSession::merge(count, 1, "key", folder);
    return vectors::extract_patches(opt_, nullptr, nullptr, zo_, so);
  }

  static std::string wkt(const OGRGeometry& g) {
    char* t = nullptr;
    g.exportToWkt(&t);
    std::string s(t);
    CPLFree(t);
    return s;
  }

  test::TempDir dir_;
  Grid grid_;
  vectors::PatchOptions opt_;
  vectors::ZoneOptions zo_;
  SchedulerOptions so_;
};

TEST_F(PatchFragments, MergedPatchesEqualOneMachineForAnyShardCount) {
  const vectors::PatchSet one = local();
  ASSERT_GE(one.patches.size(), 30u);
  // Tall patches: many cross several bands of rows.
  int tall = 0;
  for (const auto& p : one.patches) tall += (p.ymax - p.ymin) > 16 * 10 * 2;
  EXPECT_GE(tall, 15);
  for (int count : {2, 5, 9}) {
    const vectors::PatchSet m = sharded(count);
    EXPECT_GT(m.stitched, count - 1) << count << " shards";
    EXPECT_EQ(m.sieved_cells, one.sieved_cells) << count << " shards";
    ASSERT_EQ(m.patches.size(), one.patches.size()) << count << " shards";
    for (std::size_t i = 0; i < one.patches.size(); ++i) {
      const auto &a = one.patches[i], &b = m.patches[i];
      ASSERT_EQ(a.id, b.id) << count << " shards, patch " << i;
      EXPECT_EQ(a.category_code, b.category_code) << a.id;
      EXPECT_EQ(a.cells, b.cells) << a.id;
      EXPECT_EQ(a.area_m2, b.area_m2) << a.id;
      EXPECT_EQ(a.valid_fraction, b.valid_fraction) << a.id;
      EXPECT_EQ(a.intensity_max, b.intensity_max) << a.id;
      EXPECT_EQ(a.intensity_mean, b.intensity_mean) << a.id;
      EXPECT_EQ(a.magnitude_mean, b.magnitude_mean) << a.id;
      EXPECT_EQ(a.lon, b.lon) << a.id;
      EXPECT_EQ(a.lat, b.lat) << a.id;
      EXPECT_EQ(wkt(*a.geom), wkt(*b.geom)) << a.id;
    }
  }
}

TEST_F(PatchFragments, MagnitudeMeansAreTheMeansOfTheCells) {
  // The fixed-point sums against a plain mean of each patch's cells, found by a flood fill from
  // a cell of its top row whose clump has the patch's box: within 1e-9.
  const vectors::PatchSet one = local();
  DatasetPtr cls = open_raster(dir_ / "change_class.tif");
  DatasetPtr mag = open_raster(dir_ / "change_magnitude.tif");
  std::vector<uint8_t> c;
  std::vector<float> v;
  read_window(*cls, 1, grid_.full_window(), c, uint8_t{255});
  read_window(*mag, 1, grid_.full_window(), v, -9999.0f);
  struct Fill {
    int64_t n = 0, x0 = kW, x1 = -1, y1 = -1;
    double sum = 0;
  };
  auto flood = [&](int64_t seed, int code) {
    Fill f;
    std::vector<uint8_t> in(c.size(), 0);
    std::vector<int64_t> stack{seed};
    in[static_cast<std::size_t>(seed)] = 1;
    while (!stack.empty()) {
      const int64_t k = stack.back();
      stack.pop_back();
      f.sum += v[static_cast<std::size_t>(k)];
      ++f.n;
      f.x0 = std::min(f.x0, k % kW), f.x1 = std::max(f.x1, k % kW), f.y1 = std::max(f.y1, k / kW);
      for (int64_t dy = -1; dy <= 1; ++dy)
        for (int64_t dx = -1; dx <= 1; ++dx) {
          const int64_t y = k / kW + dy, x = k % kW + dx;
          if (y < 0 || x < 0 || y >= kH || x >= kW) continue;
          const auto m = static_cast<std::size_t>(y * kW + x);
          if (!in[m] && c[m] == code) in[m] = 1, stack.push_back(y * kW + x);
        }
    }
    return f;
  };
  const auto& t = grid_.transform().c;
  for (const auto& p : one.patches) {
    const auto x0 = std::llround((p.xmin - t[0]) / 10.0), x1 = std::llround((p.xmax - t[0]) / 10.0);
    const auto y0 = std::llround((t[3] - p.ymax) / 10.0), y1 = std::llround((t[3] - p.ymin) / 10.0);
    bool matched = false;
    for (int64_t x = x0; x < x1 && !matched; ++x) {
      if (c[static_cast<std::size_t>(y0 * kW + x)] != p.category_code) continue;
      const Fill f = flood(y0 * kW + x, p.category_code);
      if (f.x0 != x0 || f.x1 != x1 - 1 || f.y1 != y1 - 1) continue;
      matched = true;
      EXPECT_EQ(f.n, p.cells) << p.id;
      EXPECT_NEAR(p.magnitude_mean, f.sum / static_cast<double>(f.n), 1e-9) << p.id;
    }
    EXPECT_TRUE(matched) << p.id;
  }
}

}  // namespace
}  // namespace fw
