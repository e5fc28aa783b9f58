// Shards: "i/N" parsing with clear errors; contiguous, covering, balanced window ranges, checked
// against the bound total / N + the largest weight and against hand-made cases.
#include <gtest/gtest.h>

#include <numeric>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/scheduler.hpp"
#include "engine/shard.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

TEST(Shard, ParseAndErrors) {
  const ShardSpec s = ShardSpec::parse("2/4");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 4);
  EXPECT_EQ(s.text(), "2/4");
  EXPECT_TRUE(ShardSpec::parse("0/1").whole());
  for (const char* bad : {"4/4", "-1/4", "1/0", "x/3", "1", "1/", "/3", "1/3/5", " 1/3", "1.0/3"}) {
    try {
      ShardSpec::parse(bad);
      ADD_FAILURE() << bad << ": expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage) << bad;
      EXPECT_NE(e.message().find(std::string("'") + bad + "'"), std::string::npos) << e.message();
    }
  }
}

void expect_partition(const std::vector<ShardRange>& r, std::size_t n, int count) {
  ASSERT_EQ(r.size(), static_cast<std::size_t>(count));
  std::size_t at = 0;
  for (const auto& s : r) {
    EXPECT_EQ(s.begin, at);
    EXPECT_GE(s.end, s.begin);
    at = s.end;
  }
  EXPECT_EQ(at, n);
}

TEST(Shard, EqualWeightsSplitEvenly) {
  const auto r = assign_shards(std::vector<int64_t>(10, 5), 3);
  expect_partition(r, 10, 3);
  // Running totals 5..50; the boundaries are where they reach 50/3 and 100/3: after 4 and 7.
  EXPECT_EQ(r[0], (ShardRange{0, 4}));
  EXPECT_EQ(r[1], (ShardRange{4, 7}));
  EXPECT_EQ(r[2], (ShardRange{7, 10}));
}

TEST(Shard, WeightsMoveTheBoundaries) {
  // Sea (0) and land (10): each of two shards gets 20 of the 40.
  const std::vector<int64_t> w = {0, 0, 0, 10, 10, 0, 0, 10, 10, 0};
  const auto r = assign_shards(w, 2);
  expect_partition(r, w.size(), 2);
  EXPECT_EQ(r[0], (ShardRange{0, 5}));
  EXPECT_EQ(r[1], (ShardRange{5, 10}));
}

TEST(Shard, EveryShardGetsAWindowAndFewerWindowsLeaveEmptyShards) {
  // One heavy window first: the others still get one window each.
  const auto r = assign_shards({1000, 1, 1, 1}, 4);
  expect_partition(r, 4, 4);
  for (const auto& s : r) EXPECT_EQ(s.size(), 1u);
  const auto few = assign_shards({3, 3}, 4);
  expect_partition(few, 2, 4);
  EXPECT_EQ(few[0].size() + few[1].size() + few[2].size() + few[3].size(), 2u);
  EXPECT_TRUE(few[3].empty());
  // All zero: every window weighs one.
  const auto zero = assign_shards(std::vector<int64_t>(9, 0), 3);
  for (const auto& s : zero) EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(assign_shards({}, 2)[1], (ShardRange{0, 0}));
}

TEST(Shard, BalancedWithinTheLargestWeight) {
  // Pseudo-random weights (a fixed LCG): every shard's total within total / N + max weight.
  uint64_t x = 12345;
  std::vector<int64_t> w(997);
  for (auto& v : w) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    v = static_cast<int64_t>((x >> 33) % 100000);
  }
  const int64_t total = std::accumulate(w.begin(), w.end(), int64_t{0});
  const int64_t wmax = *std::max_element(w.begin(), w.end());
  for (int n : {1, 2, 3, 4, 7, 16, 64}) {
    const auto r = assign_shards(w, n);
    expect_partition(r, w.size(), n);
    for (const auto& s : r) {
      const int64_t sum =
          std::accumulate(w.begin() + static_cast<std::ptrdiff_t>(s.begin),
                          w.begin() + static_cast<std::ptrdiff_t>(s.end), int64_t{0});
      EXPECT_LE(sum, total / n + wmax + 1) << n;
      EXPECT_GE(sum, total / n - wmax - 1) << n;
    }
    EXPECT_EQ(assign_shards(w, n), r);  // deterministic
  }
}

// A floating-point reduction whose result depends on the merge order: values of very different
// magnitudes per pixel. Sharded (each shard's windows stored, then replayed in window order), it
// has the same bits as the one-machine run; merging per-shard totals instead does not.
struct Sum {
  double sum = 0;
  uint64_t n = 0;
};

Sum window_sum(const Window& w) {
  Sum s;
  for (int64_t y = w.y; y < w.y_end(); ++y) {
    for (int64_t x = w.x; x < w.x_end(); ++x) {
      const double v = std::sin(0.37 * static_cast<double>(x) + 1.3 * static_cast<double>(y)) *
                       std::pow(10.0, static_cast<double>((x * 7 + y * 13) % 17) - 8.0);
      s.sum += v;
      ++s.n;
    }
  }
  return s;
}

std::string pack(const Sum& s) {
  ByteWriter b;
  b.put(s.sum);
  b.put(s.n);
  return b.take();
}

Sum unpack(ByteReader& r) {
  Sum s;
  s.sum = r.get<double>();
  s.n = r.get<uint64_t>();
  return s;
}

std::vector<std::string> run_shards(const test::TempDir& dir, const WindowPlan& plan, int count,
                                    const PartialKey& key, const std::string& tag) {
  std::vector<int64_t> weights;
  for (const auto& w : plan.windows) weights.push_back(w.pixels());
  const auto ranges = assign_shards(weights, count);
  std::vector<std::string> files;
  for (int k = 0; k < count; ++k) {
    BlockScheduler sched({.threads = 2, .memory_mib = 64});
    const std::string f = dir / (tag + "/shard" + std::to_string(k) + ".part");
    PartialWriter out(f, key);
    compute_shard<Sum>(
        sched, plan, ranges[static_cast<std::size_t>(k)],
        [](const Window& w, std::size_t) { return window_sum(w); }, pack, out);
    out.commit();
    files.push_back(f);
  }
  return files;
}

TEST(ShardRun, ReplayedShardsGiveTheOneMachineBits) {
  test::TempDir dir;
  const WindowPlan plan = WindowPlan::make(1000, 700, 64, 64, 128 * 128);
  ASSERT_GT(plan.size(), 20u);
  BlockScheduler one({.threads = 2, .memory_mib = 64});
  const Sum whole = one.reduce<Sum>(
      plan, [](const Window& w, std::size_t) { return window_sum(w); }, Sum{},
      [](Sum& a, const Sum& b) { a.sum += b.sum, a.n += b.n; });
  const PartialKey key{"run-1", "test.sum", plan.size(), plan_hash(plan)};
  bool totals_differ = false;
  for (int count : {1, 2, 3, 4}) {
    const auto files = run_shards(dir, plan, count, key, "n" + std::to_string(count));
    const PartialSet set(files, key);
    Sum merged;
    replay<Sum>(plan, set, unpack,
                [&](const Window&, std::size_t, Sum& s) { merged.sum += s.sum, merged.n += s.n; });
    EXPECT_EQ(merged.sum, whole.sum) << count << " shards";
    EXPECT_EQ(merged.n, static_cast<uint64_t>(1000 * 700));
    // Per-shard totals merged: another order, other bits (the test can fail).
    std::vector<int64_t> weights;
    for (const auto& w : plan.windows) weights.push_back(w.pixels());
    double by_shard = 0;
    for (const auto& r : assign_shards(weights, count)) {
      double t = 0;
      for (std::size_t i = r.begin; i < r.end; ++i) t += window_sum(plan.windows[i]).sum;
      by_shard += t;
    }
    totals_differ = totals_differ || by_shard != whole.sum;
  }
  EXPECT_TRUE(totals_differ);
}

TEST(ShardRun, MissingForeignOverlappingAndTruncatedPartialsAreErrors) {
  test::TempDir dir;
  const WindowPlan plan = WindowPlan::make(600, 400, 64, 64, 128 * 128);
  const PartialKey key{"run-1", "test.sum", plan.size(), plan_hash(plan)};
  const auto three = run_shards(dir, plan, 3, key, "three");
  auto fails = [&](const std::vector<std::string>& files, const PartialKey& k,
                   const std::string& needle) {
    try {
      PartialSet set(files, k);
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kInput);
      EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
    }
  };
  // A shard missing: its file absent, or left out.
  std::filesystem::remove(three[1]);
  fails(three, key, "missing");
  fails({three[0], three[2]}, key, "in no shard");
  const auto again = run_shards(dir, plan, 3, key, "again");
  EXPECT_NO_THROW(PartialSet(again, key));
  // Another run (inputs or configuration), another plan, another pass.
  fails(again, {"run-2", "test.sum", plan.size(), plan_hash(plan)}, "same inputs");
  const WindowPlan other = WindowPlan::make(600, 400, 64, 64, 64 * 64);
  fails(again, {"run-1", "test.sum", other.size(), plan_hash(other)}, "window plan");
  fails(again, {"run-1", "test.other", plan.size(), plan_hash(plan)}, "pass");
  // Shards of two different shard counts overlap.
  const auto two = run_shards(dir, plan, 2, key, "two");
  fails({two[0], two[1], again[2]}, key, "overlap");
  // A truncated file.
  const std::string bytes = read_file(again[2]);
  write_file_atomic(again[2], bytes.substr(0, bytes.size() - 5));
  fails(again, key, "truncated");
}

}  // namespace
}  // namespace fw
