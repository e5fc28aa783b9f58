#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <sstream>

#include "engine/raster_io.hpp"
#include "engine/scheduler.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

// Writes a Float32 raster of hashed values, tiled by `tile`.
void make_raster(const std::string& path, int w, int h, int tile) {
  const Grid grid(GeoTransform::north_up(0, 0, 10, 10), w, h);
  DatasetPtr ds = create_gtiff(path, grid, 1, GDT_Float32, {}, tile);
  std::vector<float> row(static_cast<std::size_t>(w));
  for (int r = 0; r < h; ++r) {
    for (int c = 0; c < w; ++c)
      row[static_cast<std::size_t>(c)] =
          static_cast<float>(unit(hash_of({uint64_t(r), uint64_t(c)})));
    write_window(*ds, 1, {0, r, w, 1}, row);
  }
  close_dataset(ds, path);
}

struct Case {
  int64_t w, h;
  int bw, bh;
  double bytes_per_px;
};

TEST(Scheduler, VisitsEveryPixelExactlyOnceInOrder) {
  // Sizes not divisible by the block size, tiny budgets to force many windows.
  const Case cases[] = {{1000, 777, 256, 256, 4096},
                        {300, 301, 64, 64, 100000},
                        {257, 3, 257, 1, 50000},
                        {1, 1, 256, 256, 4},
                        {5000, 40, 128, 16, 2000}};
  for (const Case& c : cases) {
    for (int threads : {1, 2, 8}) {
      SchedulerOptions o;
      o.threads = threads;
      o.memory_mib = 8;
      BlockScheduler s(o);
      const WindowPlan plan = s.plan(c.w, c.h, c.bw, c.bh, c.bytes_per_px);
      ASSERT_GT(plan.size(), 0u);
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(c.w * c.h));
      std::vector<std::size_t> order;
      s.run<int>(
          plan,
          [&](const Window& win, std::size_t) {
            // Windows are block-aligned.
            EXPECT_EQ(win.x % plan.block_w, 0);
            EXPECT_EQ(win.y % plan.block_h, 0);
            for (int64_t r = win.y; r < win.y_end(); ++r)
              for (int64_t q = win.x; q < win.x_end(); ++q)
                ++hits[static_cast<std::size_t>(r * c.w + q)];
            return 0;
          },
          [&](const Window&, std::size_t i, int&) { order.push_back(i); });
      for (std::size_t i = 0; i < hits.size(); ++i) {
        ASSERT_EQ(hits[i].load(), 1)
            << "pixel " << i << " threads " << threads << " size " << c.w << "x" << c.h;
      }
      ASSERT_EQ(order.size(), plan.size());
      for (std::size_t i = 0; i < order.size(); ++i) ASSERT_EQ(order[i], i);
      EXPECT_LE(s.peak_in_flight(), s.tokens());
    }
  }
}

TEST(Scheduler, ReductionHasTheSameBitsForAnyThreadCount) {
  test::TempDir dir;
  const std::string path = dir / "r.tif";
  make_raster(path, 999, 613, 128);
  DatasetPool pool(path);
  std::vector<double> sums;
  for (int threads : {1, 2, 8}) {
    SchedulerOptions o;
    o.threads = threads;
    o.memory_mib = 4;
    BlockScheduler s(o);
    const WindowPlan plan = s.plan(999, 613, 128, 128, 64);
    ASSERT_GT(plan.size(), 4u);
    const double sum = s.reduce<double>(
        plan,
        [&](const Window& w, std::size_t) {
          std::vector<float> buf;
          read_window(pool.local(), 1, w, buf);
          double acc = 0;
          for (float v : buf) acc += std::sin(static_cast<double>(v) * 1000.0);
          return acc;
        },
        0.0, [](double& acc, double part) { acc += part; });
    sums.push_back(sum);
  }
  // Independent check: the same sum, in the same window order, on one thread by hand.
  EXPECT_EQ(std::memcmp(&sums[0], &sums[1], sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(&sums[0], &sums[2], sizeof(double)), 0);
  DatasetPtr ds = open_raster(path);
  std::vector<float> all;
  read_window(*ds, 1, {0, 0, 999, 613}, all);
  double direct = 0;
  for (float v : all) direct += std::sin(static_cast<double>(v) * 1000.0);
  EXPECT_NEAR(sums[0], direct, 1e-9 * all.size());
}

TEST(Scheduler, PassThroughCopyEqualsInput) {
  test::TempDir dir;
  const std::string in = dir / "in.tif", out = dir / "out.tif";
  make_raster(in, 700, 500, 256);
  DatasetPool pool(in);
  DatasetPtr src = open_raster(in);
  DatasetPtr dst = create_gtiff(out, Grid::of(*src), 1, GDT_Float32);
  SchedulerOptions o;
  o.threads = 2;
  o.memory_mib = 2;
  BlockScheduler s(o);
  s.run<std::vector<float>>(
      s.plan(700, 500, 256, 256, 4),
      [&](const Window& w, std::size_t) {
        std::vector<float> buf;
        read_window(pool.local(), 1, w, buf);
        return buf;
      },
      [&](const Window& w, std::size_t, std::vector<float>& buf) {
        write_window(*dst, 1, w, buf);
      });
  close_dataset(dst, out);
  std::vector<float> a, b;
  read_window(*src, 1, {0, 0, 700, 500}, a);
  read_window(*open_raster(out), 1, {0, 0, 700, 500}, b);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

TEST(Scheduler, PlanRespectsTheBudget) {
  for (double mib : {1.0, 16.0, 256.0}) {
    for (int threads : {1, 2, 4}) {
      SchedulerOptions o;
      o.threads = threads;
      o.memory_mib = mib;
      BlockScheduler s(o);
      const double bpp = 40;
      const WindowPlan p = s.plan(10980, 10980, 256, 256, bpp);
      const double window_bytes = static_cast<double>(p.win_w * p.win_h) * bpp;
      // At least one block per window, otherwise all windows in flight fit the budget.
      if (p.win_w * p.win_h > 256 * 256) {
        EXPECT_LE(window_bytes * s.tokens(), s.budget_bytes()) << mib << " MiB, " << threads;
      }
      EXPECT_EQ(p.win_w % 256, 0);
      EXPECT_EQ(p.win_h % 256, 0);
    }
  }
}

TEST(Scheduler, PeakMemoryDoesNotGrowWithRasterSize) {
#if defined(FW_SANITIZE)
  GTEST_SKIP() << "resident memory is not meaningful under AddressSanitizer";
#else
  test::TempDir dir;
  auto probe = [&](int size) {
    std::string out;
    const int rc = test::run(
        std::string(FW_MEMPROBE) + " " + dir / "p.tif" + " " + std::to_string(size) + " 32 8",
        &out);
    EXPECT_EQ(rc, 0) << out;
    std::istringstream in(out);
    long before = 0, peak = 0;
    in >> before >> peak;
    return std::pair{before, peak};
  };
  const auto small = probe(1024);   // 8 MiB of pixels
  const auto large = probe(12288);  // 1152 MiB of pixels
  // The large raster is 144 times the small one; the peak may grow by the budget (32 MiB) plus
  // GDAL's block cache (8 MiB) at most, never by the raster size.
  EXPECT_LT(large.second - large.first, (32 + 8 + 24) * 1024) << "peak growth, KiB";
  EXPECT_LT(large.second - small.second, (32 + 8) * 1024);
#endif
}

TEST(Scheduler, CancellationStopsEarly) {
  CancelToken token;
  SchedulerOptions o;
  o.threads = 2;
  o.cancel = &token;
  BlockScheduler s(o);
  const WindowPlan plan = WindowPlan::make(4096, 4096, 64, 64, 64 * 64);
  std::size_t consumed = 0;
  try {
    s.run<int>(
        plan, [&](const Window&, std::size_t) { return 0; },
        [&](const Window&, std::size_t i, int&) {
          ++consumed;
          if (i == 3) token.cancel();
        });
    FAIL() << "not cancelled";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kCancelled);
  }
  EXPECT_GE(consumed, 4u);
  EXPECT_LT(consumed, plan.size());
}

TEST(Scheduler, ProgressIsMonotonicAndCompletes) {
  std::vector<double> seen;
  SchedulerOptions o;
  o.threads = 2;
  o.progress = [&](double f, const std::string& label) {
    EXPECT_EQ(label, "test");
    seen.push_back(f);
  };
  o.label = "test";
  BlockScheduler s(o);
  s.run<int>(
      WindowPlan::make(1000, 1000, 100, 100, 100 * 100),
      [](const Window&, std::size_t) { return 1; }, [](const Window&, std::size_t, int&) {});
  ASSERT_GE(seen.size(), 101u);
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]);
  EXPECT_DOUBLE_EQ(seen.front(), 0.0);
  EXPECT_DOUBLE_EQ(seen.back(), 1.0);
}

TEST(Scheduler, KernelErrorsPropagate) {
  BlockScheduler s;
  EXPECT_THROW(s.run<int>(
                   WindowPlan::make(100, 100, 10, 10, 100),
                   [](const Window& w, std::size_t) -> int {
                     if (w.x == 50) throw_input("bad pixel", {.file = "x.tif"});
                     return 0;
                   },
                   [](const Window&, std::size_t, int&) {}),
               Error);
}

}  // namespace
}  // namespace fw
