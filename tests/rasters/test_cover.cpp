// Sub-pixel change cover against planted rectangles whose per-pixel shares are known exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "rasters/cover.hpp"

namespace fw::rasters {
namespace {

constexpr int64_t kW = 24, kH = 20;
constexpr int kBands = 3, kCats = 6;

// Overlap of pixel (x, y) with the rectangle [x0, x1) x [y0, y1), in pixel units.
double overlap(int64_t x, int64_t y, double x0, double x1, double y0, double y1) {
  const double w = std::max(0.0, std::min<double>(x + 1, x1) - std::max<double>(x, x0));
  const double h = std::max(0.0, std::min<double>(y + 1, y1) - std::max<double>(y, y0));
  return w * h;
}

struct Scene {
  std::vector<uint8_t> cls = std::vector<uint8_t>(kW * kH, 0);
  std::vector<float> diff = std::vector<float>(kBands * kW * kH);
  std::vector<double> share_a = std::vector<double>(kW * kH),
                      share_b = std::vector<double>(kW * kH);
};

// A construction rectangle (category 1) and a new pond (category 3) on a background whose
// change is not zero (phenology): d = bg + f_a da + f_b db.
Scene make_scene() {
  Scene s;
  const double bg[kBands] = {0.01, -0.02, 0.005};
  const double da[kBands] = {0.12, -0.25, 0.05};   // construction: brighter visible, NIR drop
  const double db[kBands] = {-0.05, -0.30, -0.2};  // new water: everything darker
  for (int64_t y = 0; y < kH; ++y) {
    for (int64_t x = 0; x < kW; ++x) {
      const auto i = static_cast<std::size_t>(y * kW + x);
      // Shares 0.75 / 1 / 0.5 across, 1 / 0.75 down: corners 0.75 x 0.75 and 0.5 x 0.75.
      const double fa = overlap(x, y, 4.25, 9.5, 5.0, 8.75);
      const double fb = overlap(x, y, 14.5, 19.0, 10.25, 15.5);
      s.share_a[i] = fa, s.share_b[i] = fb;
      for (int b = 0; b < kBands; ++b)
        s.diff[static_cast<std::size_t>(b) * kW * kH + i] =
            static_cast<float>(bg[b] + fa * da[b] + fb * db[b]);
      // The rules flag a pixel from half covered up.
      if (fa >= 0.5) s.cls[i] = 1;
      if (fb >= 0.5) s.cls[i] = 3;
    }
  }
  // A half-covered edge pixel the rules called vegetation loss (5).
  s.cls[static_cast<std::size_t>(6 * kW + 9)] = 5;
  // No data far from both.
  s.cls[static_cast<std::size_t>(1 * kW + 20)] = 255;
  return s;
}

std::vector<uint8_t> run(const Scene& s, const Window& core, const CoverOptions& o = {}) {
  std::vector<uint8_t> out(static_cast<std::size_t>(kCats * core.w * core.h));
  subpixel_cover(s.cls.data(), s.diff.data(), nullptr, kBands, kW, kH, core, kCats, o, out.data());
  return out;
}

TEST(Cover, PlantedSharesAreRecovered) {
  const Scene s = make_scene();
  const auto out = run(s, {0, 0, kW, kH});
  const std::size_t n = kW * kH;
  double area_a = 0, area_b = 0, want_a = 0, want_b = 0;
  for (std::size_t i = 0; i < n; ++i) {
    want_a += s.share_a[i], want_b += s.share_b[i];
    if (s.cls[i] == 255) {
      for (int c = 0; c < kCats; ++c) EXPECT_EQ(out[c * n + i], 255);
      continue;
    }
    // Every pixel's share to the per cent, in the right category only.
    EXPECT_NEAR(out[0 * n + i], 100 * s.share_a[i], 0.5 + 1e-9) << i;
    EXPECT_NEAR(out[2 * n + i], 100 * s.share_b[i], 0.5 + 1e-9) << i;
    for (int c : {1, 3, 4, 5}) EXPECT_EQ(out[c * n + i], 0) << c << " " << i;
    area_a += out[0 * n + i] / 100.0, area_b += out[2 * n + i] / 100.0;
  }
  EXPECT_DOUBLE_EQ(want_a, 5.25 * 3.75);
  EXPECT_DOUBLE_EQ(want_b, 4.5 * 5.25);
  EXPECT_NEAR(area_a, want_a, 0.2);
  EXPECT_NEAR(area_b, want_b, 0.2);
  // Whole classified pixels would say otherwise.
  double hard_a = 0;
  for (std::size_t i = 0; i < n; ++i) hard_a += s.cls[i] == 1 || s.cls[i] == 5;
  EXPECT_GT(std::abs(hard_a - want_a), 1.0);
}

TEST(Cover, WindowsWithAHaloGiveTheSameCover) {
  const Scene s = make_scene();
  const CoverOptions o;
  const auto whole = run(s, {0, 0, kW, kH}, o);
  // Cut the scene into 7 x 6 windows, each computed from its window grown by the halo.
  const int64_t halo = o.halo();
  for (int64_t wy = 0; wy < kH; wy += 6) {
    for (int64_t wx = 0; wx < kW; wx += 7) {
      const int64_t x0 = std::max<int64_t>(0, wx - halo), y0 = std::max<int64_t>(0, wy - halo);
      const int64_t x1 = std::min(kW, wx + 7 + halo), y1 = std::min(kH, wy + 6 + halo);
      const int64_t ew = x1 - x0, eh = y1 - y0;
      Scene sub;
      sub.cls.resize(static_cast<std::size_t>(ew * eh));
      sub.diff.resize(static_cast<std::size_t>(kBands * ew * eh));
      for (int64_t y = 0; y < eh; ++y) {
        for (int64_t x = 0; x < ew; ++x) {
          const auto i = static_cast<std::size_t>((y0 + y) * kW + x0 + x);
          const auto j = static_cast<std::size_t>(y * ew + x);
          sub.cls[j] = s.cls[i];
          for (int b = 0; b < kBands; ++b)
            sub.diff[static_cast<std::size_t>(b * ew * eh) + j] =
                s.diff[static_cast<std::size_t>(b * kW * kH) + i];
        }
      }
      const Window core{wx - x0, wy - y0, std::min<int64_t>(7, kW - wx),
                        std::min<int64_t>(6, kH - wy)};
      std::vector<uint8_t> out(static_cast<std::size_t>(kCats * core.w * core.h));
      subpixel_cover(sub.cls.data(), sub.diff.data(), nullptr, kBands, ew, eh, core, kCats, o,
                     out.data());
      const auto nc = static_cast<std::size_t>(core.w * core.h);
      for (int c = 0; c < kCats; ++c) {
        for (int64_t y = 0; y < core.h; ++y) {
          for (int64_t x = 0; x < core.w; ++x) {
            ASSERT_EQ(out[c * nc + static_cast<std::size_t>(y * core.w + x)],
                      whole[static_cast<std::size_t>(c * kW * kH + (wy + y) * kW + wx + x)])
                << c << " " << wx + x << " " << wy + y;
          }
        }
      }
    }
  }
}

// A new canopy on a fallow field whose date-1 reflectance is textured (soil and residue in
// patches): the after state is one spectrum A, so a pixel covered f reads
// x2 = f A + (1 - f) (x1 + bg) with its own date-1 x1. With date 1 given, the full change at each
// pixel is A - bg - x1 (its own before), and every share is recovered; from the difference
// alone, the reference is the interior pixels' mean change and the shares err with the texture.
TEST(Cover, OwnDateOneReflectanceUndoesTexture) {
  const std::size_t n = kW * kH;
  std::vector<uint8_t> cls(n, 0);
  std::vector<float> diff(kBands * n), before(kBands * n);
  std::vector<double> share(n);
  const double bg[kBands] = {0.004, 0.01, -0.006};
  const double after[kBands] = {0.05, 0.07, 0.38};  // green canopy
  const double soil[kBands] = {0.16, 0.20, 0.26}, residue[kBands] = {0.24, 0.27, 0.31};
  for (int64_t y = 0; y < kH; ++y) {
    for (int64_t x = 0; x < kW; ++x) {
      const auto i = static_cast<std::size_t>(y * kW + x);
      const double t = static_cast<double>((x * 7 + y * 3) % 5) / 4.0;  // texture, 0..1
      const double f = overlap(x, y, 4.25, 12.5, 4.0, 10.75);
      share[i] = f;
      for (int b = 0; b < kBands; ++b) {
        const double x1 = soil[b] + t * (residue[b] - soil[b]);
        const double x2 = f * after[b] + (1 - f) * (x1 + bg[b]);
        before[b * n + i] = static_cast<float>(x1);
        diff[b * n + i] = static_cast<float>(x2 - x1);
      }
      if (f >= 0.5) cls[i] = 6;
    }
  }
  const Window core{0, 0, kW, kH};
  std::vector<uint8_t> own(kCats * n), mean(kCats * n);
  subpixel_cover(cls.data(), diff.data(), before.data(), kBands, kW, kH, core, kCats, {},
                 own.data());
  subpixel_cover(cls.data(), diff.data(), nullptr, kBands, kW, kH, core, kCats, {}, mean.data());
  double area = 0, worst_mean = 0;
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(own[5 * n + i], 100 * share[i], 0.5 + 1e-4) << i % kW << " " << i / kW;
    area += own[5 * n + i] / 100.0;
    if (share[i] > 0 && share[i] < 1 && cls[i] == 6)
      worst_mean = std::max(worst_mean, std::abs(mean[5 * n + i] - 100 * share[i]));
  }
  EXPECT_NEAR(area, 8.25 * 6.75, 0.2);
  EXPECT_GT(worst_mean, 5.0);
}

// A change two cells wide (no interior cell) on a textured field: the most changed cell is a
// mixed one on bare soil, not the purest. The reference is the cells covering as much as the
// purest (found by following larger shares from the most changed), so every share is recovered.
TEST(Cover, NoInteriorCellReferenceIsThePurest) {
  const std::size_t n = kW * kH;
  std::vector<uint8_t> cls(n, 0);
  std::vector<float> diff(kBands * n), before(kBands * n);
  std::vector<double> share(n);
  const double after[kBands] = {0.05, 0.07, 0.42};
  const double soil[kBands] = {0.30, 0.34, 0.12}, residue[kBands] = {0.10, 0.12, 0.30};
  std::size_t most = 0;
  double most_e = -1;
  for (int64_t y = 0; y < kH; ++y) {
    for (int64_t x = 0; x < kW; ++x) {
      const auto i = static_cast<std::size_t>(y * kW + x);
      // Residue everywhere but on the column of the left edge (soil: far from the canopy).
      const double t = x == 4 ? 0.0 : 1.0;
      const double f = overlap(x, y, 4.2, 11.3, 6.0, 8.0);
      share[i] = f;
      double e2 = 0;
      for (int b = 0; b < kBands; ++b) {
        const double x1 = soil[b] + t * (residue[b] - soil[b]);
        const double x2 = f * after[b] + (1 - f) * x1;
        before[b * n + i] = static_cast<float>(x1);
        diff[b * n + i] = static_cast<float>(x2 - x1);
        e2 += (x2 - x1) * (x2 - x1);
      }
      if (f >= 0.5) cls[i] = 6;
      if (e2 > most_e) most_e = e2, most = i;
    }
  }
  // The premise: the most changed cell is the 80 % edge cell on soil.
  ASSERT_EQ(most, static_cast<std::size_t>(6 * kW + 4));
  const Window core{0, 0, kW, kH};
  std::vector<uint8_t> own(kCats * n), plain(kCats * n);
  subpixel_cover(cls.data(), diff.data(), before.data(), kBands, kW, kH, core, kCats, {},
                 own.data());
  subpixel_cover(cls.data(), diff.data(), nullptr, kBands, kW, kH, core, kCats, {}, plain.data());
  double area = 0, area_plain = 0;
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(own[5 * n + i], 100 * share[i], 0.5 + 1e-4) << i % kW << " " << i / kW;
    area += own[5 * n + i] / 100.0, area_plain += plain[5 * n + i] / 100.0;
  }
  EXPECT_NEAR(area, 7.1 * 2, 0.05);
  EXPECT_GT(std::abs(area_plain - 7.1 * 2), 1.0);
}

TEST(Cover, UnexplainedNeighboursAndSmallSharesStayZero) {
  Scene s = make_scene();
  // A ring pixel half construction plus a component orthogonal to it: projected, a share of
  // 0.5, but the mixture leaves 79 % of the difference unexplained.
  const std::size_t i = 4 * kW + 6, n = kW * kH;
  s.diff[0 * n + i] = 0.32f, s.diff[1 * n + i] = -0.025f, s.diff[2 * n + i] = 0.03f;
  const auto out = run(s, {0, 0, kW, kH});
  for (int c = 0; c < kCats; ++c) EXPECT_EQ(out[c * n + i], 0) << c;
  // With a high minimum share, the 37.5 % corner pixel (9, 8) of the construction is dropped.
  CoverOptions o;
  o.min_fraction = 0.4;
  const auto out2 = run(s, {0, 0, kW, kH}, o);
  EXPECT_EQ(out2[0 * n + 8 * kW + 9], 0);
  EXPECT_NEAR(out[0 * n + 8 * kW + 9], 37.5, 0.5 + 1e-9);
}

}  // namespace
}  // namespace fw::rasters
