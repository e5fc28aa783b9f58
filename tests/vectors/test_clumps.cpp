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
        if (!std::isnan(v[j])) {
          k.channels[1].sum += v[j];
          ++k.channels[1].count;
          k.channels[1].max = std::max<double>(k.channels[1].max, v[j]);
        }
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
      EXPECT_EQ(got[i].channels[1].sum, want[i].channels[1].sum);
      EXPECT_EQ(got[i].channels[1].count, want[i].channels[1].count);
      EXPECT_EQ(got[i].channels[0].count, 0);
      if (want[i].channels[1].count) {
        EXPECT_EQ(got[i].channels[1].max, want[i].channels[1].max);
      }
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
