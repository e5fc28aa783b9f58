// The streaming clump finder against a plain flood fill of the whole raster: same clumps (code,
// cells, box, first cell, summed values) on random maps, for any row order of arrival.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "vectors/clumps.hpp"

namespace fw {
namespace {

using vectors::Clump;

std::vector<Clump> flood_fill(const std::vector<uint8_t>& a, const std::vector<float>& v, int w,
                              int h) {
  std::vector<int> seen(a.size(), 0);
  std::vector<Clump> out;
  for (int r = 0; r < h; ++r) {
    for (int c = 0; c < w; ++c) {
      const auto i = static_cast<std::size_t>(r * w + c);
      if (!a[i] || seen[i]) continue;
      Clump k;
      k.code = a[i];
      k.row0 = k.row1 = k.seed_row = r;
      k.col0 = k.col1 = k.seed_col = c;
      std::vector<std::size_t> stack{i};
      seen[i] = 1;
      while (!stack.empty()) {
        const std::size_t j = stack.back();
        stack.pop_back();
        const int rr = static_cast<int>(j) / w, cc = static_cast<int>(j) % w;
        ++k.cells;
        k.row0 = std::min<int64_t>(k.row0, rr), k.row1 = std::max<int64_t>(k.row1, rr);
        k.col0 = std::min<int64_t>(k.col0, cc), k.col1 = std::max<int64_t>(k.col1, cc);
        if (!std::isnan(v[j])) k.channels[1].add(v[j]);
        for (int dr = -1; dr <= 1; ++dr) {
          for (int dc = -1; dc <= 1; ++dc) {
            const int r2 = rr + dr, c2 = cc + dc;
            if (r2 < 0 || c2 < 0 || r2 >= h || c2 >= w) continue;
            const auto m = static_cast<std::size_t>(r2 * w + c2);
            if (!seen[m] && a[m] == k.code) seen[m] = 1, stack.push_back(m);
          }
        }
      }
      out.push_back(k);
    }
  }
  return out;
}

auto key(const Clump& c) {
  return std::make_tuple(c.seed_row, c.seed_col, c.code, c.cells, c.row0, c.col0, c.row1, c.col1);
}

TEST(Clumps, EqualAFloodFillOnRandomMaps) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 30; ++trial) {
    const int w = 5 + static_cast<int>(rng() % 90), h = 1 + static_cast<int>(rng() % 80);
    const double density = 0.2 + 0.6 * (trial % 5) / 4.0;
    std::vector<uint8_t> a(static_cast<std::size_t>(w * h));
    std::vector<float> v(a.size());
    std::uniform_real_distribution<double> u(0, 1);
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = u(rng) < density ? static_cast<uint8_t>(1 + rng() % (trial % 3 + 1)) : 0;
      v[i] = u(rng) < 0.1 ? NAN : static_cast<float>(static_cast<int>(rng() % 100));
    }
    std::vector<Clump> got;
    vectors::ClumpFinder f(w, [&](const Clump& c) { got.push_back(c); });
    for (int r = 0; r < h; ++r) {
      const auto off = static_cast<std::size_t>(r * w);
      f.push_row(a.data() + off, {nullptr, v.data() + off, nullptr, nullptr});
      EXPECT_LE(f.oldest_open_row(), r + 1);
    }
    f.finish();
    auto want = flood_fill(a, v, w, h);
    ASSERT_EQ(got.size(), want.size()) << "trial " << trial;
    std::sort(got.begin(), got.end(), [](auto& x, auto& y) { return key(x) < key(y); });
    std::sort(want.begin(), want.end(), [](auto& x, auto& y) { return key(x) < key(y); });
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(key(got[i]), key(want[i])) << "trial " << trial << " clump " << i;
      // Values are small integers: the sums are exact in any order.
      EXPECT_EQ(got[i].channels[1].sum(), want[i].channels[1].sum());
      EXPECT_EQ(got[i].channels[1].count, want[i].channels[1].count);
      EXPECT_EQ(got[i].channels[0].count, 0);
      if (want[i].channels[1].count) {
        EXPECT_EQ(got[i].channels[1].max, want[i].channels[1].max);
      }
    }
  }
}

TEST(Clumps, FixedPointSumsAreExactInAnyOrderAndCloseToTheDoubleSum) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> v(10000);
  for (float& z : v) z = u(rng);
  vectors::ChannelStats fwd, back, halves[2];
  double plain = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    fwd.add(v[i]);
    back.add(v[v.size() - 1 - i]);
    halves[i % 2].add(v[i]);
    plain += v[i];
  }
  halves[1].merge(halves[0]);
  EXPECT_TRUE(fwd.fixed == back.fixed);
  EXPECT_TRUE(fwd.fixed == halves[1].fixed);
  EXPECT_EQ(fwd.count, 10000);
  // Truncation to 2^-36 loses at most 1.5e-11 per value.
  EXPECT_NEAR(fwd.sum(), plain, 10000 * 1.5e-11 + 1e-9);
  EXPECT_EQ(fwd.max, *std::max_element(v.begin(), v.end()));
  vectors::ChannelStats big;
  big.add(1e30);  // clamped, not wrapped
  EXPECT_GT(big.sum(), 6e7);
}

// A raster cut into bands of rows (as shards cut it): the clumps inside a band are whole; those
// touching a band's first or last row, stitched by their boundary runs, are the rest. Together
// they are the clumps of one pass over the whole raster, sums to the bit.
TEST(Clumps, BandsStitchedByBoundaryRunsEqualOnePass) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const int w = 3 + static_cast<int>(rng() % 60), h = 2 + static_cast<int>(rng() % 60);
    const double density = 0.3 + 0.5 * (trial % 4) / 3.0;
    std::vector<uint8_t> a(static_cast<std::size_t>(w * h));
    std::vector<float> v(a.size());
    std::uniform_real_distribution<double> u(0, 1);
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = u(rng) < density ? static_cast<uint8_t>(1 + rng() % (trial % 2 + 1)) : 0;
      v[i] = static_cast<float>(u(rng) * 3.7 - 1.1);
    }
    auto run = [&](int r0, int r1, std::vector<Clump>& whole, vectors::ClumpBand* band) {
      vectors::ClumpFinder f(
          w,
          [&](const Clump& c) {
            const bool open = band && ((c.row0 == r0 && r0 > 0) || (c.row1 == r1 && r1 < h - 1));
            (open ? band->open : whole).push_back(c);
          },
          r0);
      for (int r = r0; r <= r1; ++r) {
        const auto off = static_cast<std::size_t>(r * w);
        f.push_row(a.data() + off, {nullptr, v.data() + off, nullptr, nullptr});
      }
      f.finish();
      if (band) {
        band->first_row = r0, band->last_row = r1;
        band->top = f.first_runs(), band->bottom = f.last_runs();
      }
    };
    std::vector<Clump> want, got;
    run(0, h - 1, want, nullptr);
    // Cuts at random rows (bands of one row included).
    std::vector<int> cuts{0};
    for (int r = 1; r < h; ++r)
      if (rng() % 4 == 0) cuts.push_back(r);
    cuts.push_back(h);
    std::vector<vectors::ClumpBand> bands(cuts.size() - 1);
    for (std::size_t b = 0; b + 1 < cuts.size(); ++b) run(cuts[b], cuts[b + 1] - 1, got, &bands[b]);
    std::size_t open = 0;
    for (const auto& b : bands) open += b.open.size();
    const auto stitched = vectors::stitch_bands(bands);
    EXPECT_LE(stitched.size(), open);
    got.insert(got.end(), stitched.begin(), stitched.end());
    ASSERT_EQ(got.size(), want.size()) << "trial " << trial;
    std::sort(got.begin(), got.end(), [](auto& x, auto& y) { return key(x) < key(y); });
    std::sort(want.begin(), want.end(), [](auto& x, auto& y) { return key(x) < key(y); });
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(key(got[i]), key(want[i])) << "trial " << trial << " clump " << i;
      EXPECT_TRUE(got[i].channels[1].fixed == want[i].channels[1].fixed);
      EXPECT_EQ(got[i].channels[1].max, want[i].channels[1].max);
    }
  }
}

TEST(Clumps, AUShapeMergesIntoOneClumpWhoseFirstCellIsItsTopLeft) {
  // Two arms meet at the bottom (rows 0-3), a diagonal step joins code 1 at (4,5); code 2 beside
  // it stays apart.
  const int w = 8;
  const std::vector<std::string> rows = {"1.....1.", "1.....1.", "1....1..", "1111112.",
                                         ".....1.2"};
  std::vector<Clump> got;
  vectors::ClumpFinder f(w, [&](const Clump& c) { got.push_back(c); });
  for (const auto& s : rows) {
    std::vector<uint8_t> r(w);
    for (int c = 0; c < w; ++c)
      r[static_cast<std::size_t>(c)] =
          s[static_cast<std::size_t>(c)] == '.'
              ? 0
              : static_cast<uint8_t>(s[static_cast<std::size_t>(c)] - '0');
    f.push_row(r.data());
  }
  f.finish();
  ASSERT_EQ(got.size(), 2u);
  std::sort(got.begin(), got.end(), [](auto& x, auto& y) { return x.code < y.code; });
  EXPECT_EQ(got[0].cells, 13);
  EXPECT_EQ(std::tie(got[0].seed_row, got[0].seed_col), std::make_tuple(int64_t{0}, int64_t{0}));
  EXPECT_EQ(std::tie(got[0].row1, got[0].col1), std::make_tuple(int64_t{4}, int64_t{6}));
  EXPECT_EQ(got[1].cells, 2);
  EXPECT_EQ(std::tie(got[1].seed_row, got[1].seed_col), std::make_tuple(int64_t{3}, int64_t{6}));
}

}  // namespace
}  // namespace fw
