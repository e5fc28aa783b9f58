// FVC and RSEI: per-pixel formulas against hand-computed values; the streamed PCA against a direct
// double-precision eigen-decomposition of the same data; invariance to windows and threads; water,
// masks and bad inputs; real Landsat 7 and Sentinel-2 scenes.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <filesystem>
#include <limits>

#include "engine/error.hpp"
#include "rasters/ecology.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

using rasters::EcologyOptions;

TEST(EcologyFormulas, HandComputedValues) {
  // A dry soil pixel: blue .10 green .14 red .20 nir .26 swir1 .34 swir2 .30.
  // SI = ((.34 + .20) - (.26 + .10)) / (.54 + .36) = .18 / .90 = 0.2
  // IBI: x = 2 * .34 / (.34 + .26) = 1.133333; y = .26 / .46 + .14 / .48 = .565217 + .291667
  //      = .856884; IBI = (1.133333 - .856884) / (1.133333 + .856884) = .276449 / 1.990217
  //      = .138904
  // NDBSI = (0.2 + 0.138904) / 2 = 0.169452
  EXPECT_NEAR(rasters::ndbsi(0.10f, 0.14f, 0.20f, 0.26f, 0.34f), 0.169452, 1e-5);
  // Landsat 8 OLI wetness (Baig 2014) of the same pixel:
  // .1511*.10 + .1973*.14 + .3283*.20 + .3407*.26 - .7117*.34 - .4559*.30
  // = .01511 + .027622 + .06566 + .088582 - .241978 - .13677 = -0.181774
  const auto l8 = rasters::parse_wetness("landsat89");
  EXPECT_NEAR(rasters::tc_wetness(l8.c, 0.10f, 0.14f, 0.20f, 0.26f, 0.34f, 0.30f), -0.181774, 1e-6);
  EXPECT_NEAR(rasters::fvc_of(0.45, 0.1, 0.8), 0.5, 1e-12);
  EXPECT_EQ(rasters::fvc_of(0.05, 0.1, 0.8), 0.0);
  EXPECT_EQ(rasters::fvc_of(0.95, 0.1, 0.8), 1.0);
  EXPECT_TRUE(std::isnan(rasters::fvc_of(std::nan(""), 0.1, 0.8)));
  const std::array<double, 4> b = {0.2, 0.4, 0.6, 0.8};
  EXPECT_EQ(rasters::grade_of(0.0, b), 1);
  EXPECT_EQ(rasters::grade_of(0.2, b), 2);
  EXPECT_EQ(rasters::grade_of(0.59, b), 3);
  EXPECT_EQ(rasters::grade_of(1.0, b), 5);
  EXPECT_EQ(rasters::grade_of(std::nan(""), b), 0);
}

TEST(EcologyFormulas, WetnessSets) {
  EXPECT_EQ(rasters::parse_wetness("Landsat7").c[4], -0.7629);
  const auto w = rasters::parse_wetness("0.1, 0.2, 0.3, 0.4, -0.5, -0.6");
  EXPECT_EQ(w.id, "custom");
  EXPECT_EQ(w.c[5], -0.6);
  EXPECT_THROW(rasters::parse_wetness("modis"), Error);
  EXPECT_THROW(rasters::parse_wetness("1,2,3"), Error);
  EXPECT_TRUE(rasters::wetness_for_sensor("sentinel2").has_value());
  EXPECT_FALSE(rasters::wetness_for_sensor("gf1wfv").has_value());
  EXPECT_FALSE(rasters::wetness_for_sensor("generic").has_value());
}

// A Sentinel-2-like 6-band scene (B2, B3, B4, B8, B11, B12 as reflectance x 10000) whose pixels
// mix vegetation, soil, built-up and water by smooth functions of the position.
struct Scene {
  Grid grid;
  std::vector<std::vector<uint16_t>> bands;  // 6 planes
};

Scene make_scene(int64_t w, int64_t h, int variant) {
  Scene s;
  s.grid = test::utm_grid(w, h);
  s.bands.assign(6, std::vector<uint16_t>(static_cast<std::size_t>(w * h)));
  const double veg[6] = {0.03, 0.07, 0.04, 0.45, 0.22, 0.11};
  const double soil[6] = {0.10, 0.14, 0.20, 0.26, 0.34, 0.30};
  const double roof[6] = {0.25, 0.26, 0.27, 0.30, 0.33, 0.31};
  const double water[6] = {0.06, 0.05, 0.03, 0.015, 0.008, 0.005};
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t c = 0; c < w; ++c) {
      const double fx = static_cast<double>(c) / static_cast<double>(w);
      const double fy = static_cast<double>(r) / static_cast<double>(h);
      double fv = 0.5 + 0.45 * std::sin(6.0 * fx + 2.0 * fy + variant);
      double fs = (1 - fv) * (0.5 + 0.5 * std::cos(9.0 * fy + variant));
      double fr = 1 - fv - fs;
      const bool is_water = fx > 0.85 && fy < 0.2;
      for (int b = 0; b < 6; ++b) {
        double v = fv * veg[b] + fs * soil[b] + fr * roof[b];
        if (is_water) v = water[b];
        v += 0.002 * std::sin(37.0 * c + 11.0 * r + b);  // texture
        s.bands[static_cast<std::size_t>(b)][test::px(c, r, w)] =
            static_cast<uint16_t>(std::lround(v * 10000));
      }
    }
  }
  return s;
}

std::string write_scene(const std::string& path, const Scene& s) {
  test::write_raster<uint16_t>(path, s.grid, s.bands, {"B2", "B3", "B4", "B8", "B11", "B12"}, 0);
  return path;
}

rasters::Imagery open_s2(const std::string& path, const std::string& label) {
  rasters::ImageryOptions o;
  o.files = {path};
  o.sensor = "sentinel2";
  o.label = label;
  return rasters::Imagery::open(o);
}

// Components of one date exactly as the library computes them (float), from the DNs.
struct Ref {
  std::vector<std::array<double, 3>> land;  // ndvi, wet, ndbsi of the land pixels
  std::vector<int64_t> index;               // their pixel index
  std::vector<float> ndvi;                  // every pixel (NaN invalid)
};

Ref reference(const Scene& s) {
  Ref ref;
  const auto wet = rasters::parse_wetness("sentinel2").c;
  const std::size_t n = s.bands[0].size();
  ref.ndvi.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    float v[6];
    for (int b = 0; b < 6; ++b)
      v[b] = static_cast<float>(s.bands[static_cast<std::size_t>(b)][i]) * 1e-4f + 0.0f;
    const float nd = (v[3] - v[2]) / (v[3] + v[2]);
    ref.ndvi[i] = nd;
    const float mndwi = (v[1] - v[4]) / (v[1] + v[4]);
    if (mndwi > 0 && mndwi > nd) continue;  // water
    ref.land.push_back({nd, rasters::tc_wetness(wet, v[0], v[1], v[2], v[3], v[4], v[5]),
                        rasters::ndbsi(v[0], v[1], v[2], v[3], v[4])});
    ref.index.push_back(static_cast<int64_t>(i));
  }
  return ref;
}

struct DirectPca {
  Eigen::Vector3d lo, hi, loadings;
  Eigen::Matrix3d cov;
  double share;
};

// The PCA of the pooled, min-max normalised components, by a direct in-memory decomposition.
DirectPca direct_pca(const std::vector<const Ref*>& refs) {
  DirectPca p;
  p.lo.setConstant(std::numeric_limits<double>::infinity());
  p.hi.setConstant(-std::numeric_limits<double>::infinity());
  std::size_t n = 0;
  for (const Ref* r : refs) {
    for (const auto& x : r->land) {
      for (int k = 0; k < 3; ++k)
        p.lo[k] = std::min(p.lo[k], x[k]), p.hi[k] = std::max(p.hi[k], x[k]);
      ++n;
    }
  }
  Eigen::MatrixXd X(static_cast<Eigen::Index>(n), 3);
  Eigen::Index row = 0;
  for (const Ref* r : refs) {
    for (const auto& x : r->land) {
      for (int k = 0; k < 3; ++k) X(row, k) = (x[k] - p.lo[k]) / (p.hi[k] - p.lo[k]);
      ++row;
    }
  }
  const Eigen::RowVector3d mean = X.colwise().mean();
  const Eigen::MatrixXd C = X.rowwise() - mean;
  p.cov = C.transpose() * C / static_cast<double>(n);
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(p.cov);
  p.loadings = es.eigenvectors().col(2);
  if (p.loadings[0] < 0) p.loadings = -p.loadings;
  p.share = es.eigenvalues()[2] / es.eigenvalues().sum();
  return p;
}

class EcologyScene : public ::testing::Test {
 protected:
  void SetUp() override {
    s0 = make_scene(300, 220, 0);
    s1 = make_scene(300, 220, 1);
    write_scene(dir / "t0.tif", s0);
    write_scene(dir / "t1.tif", s1);
  }
  rasters::EcologyResult run(EcologyOptions o, SchedulerOptions so = {},
                             const std::string& sub = "out") {
    const auto a = open_s2(dir / "t0.tif", "before");
    const auto b = open_s2(dir / "t1.tif", "after");
    o.out_dir = dir / sub;
    return rasters::compute_ecology({&a, ""}, {&b, ""}, s0.grid, o, so);
  }
  test::TempDir dir;
  Scene s0, s1;
};

TEST_F(EcologyScene, PcaEqualsDirectDecomposition) {
  EcologyOptions o;
  const auto res = run(o);
  ASSERT_EQ(res.components, (std::vector<std::string>{"ndvi", "wet", "ndbsi"}));
  EXPECT_EQ(res.heat, "none (three-component variant)");
  ASSERT_EQ(res.pca.size(), 1u);
  const Ref r0 = reference(s0), r1 = reference(s1);
  const DirectPca d = direct_pca({&r0, &r1});
  const auto& p = res.pca[0];
  EXPECT_EQ(p.pixels, static_cast<int64_t>(r0.land.size() + r1.land.size()));
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(p.min[static_cast<std::size_t>(k)], d.lo[k]);
    EXPECT_EQ(p.max[static_cast<std::size_t>(k)], d.hi[k]);
    EXPECT_NEAR(p.loadings[static_cast<std::size_t>(k)], d.loadings[k], 1e-9) << k;
    for (int j = 0; j < 3; ++j)
      EXPECT_NEAR(p.covariance[static_cast<std::size_t>(k * 3 + j)], d.cov(k, j), 1e-12);
  }
  EXPECT_NEAR(p.variance_share, d.share, 1e-9);
  EXPECT_GT(p.variance_share, 0.5);

  // RSEI per pixel: the oriented first component, min-max normalised over both dates.
  auto score = [&](const std::array<double, 3>& x) {
    double s = 0;
    for (int k = 0; k < 3; ++k) s += d.loadings[k] * (x[k] - d.lo[k]) / (d.hi[k] - d.lo[k]);
    return s;
  };
  double lo = 1e300, hi = -1e300;
  for (const Ref* r : {&r0, &r1}) {
    for (const auto& x : r->land) lo = std::min(lo, score(x)), hi = std::max(hi, score(x));
  }
  for (int t = 0; t < 2; ++t) {
    const Ref& r = t == 0 ? r0 : r1;
    DatasetPtr ds = open_raster(dir / ("out/rsei_t" + std::to_string(t) + ".tif"));
    const auto v = test::read_band<float>(*ds);
    std::size_t k = 0;
    int64_t water = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (k < r.index.size() && r.index[k] == static_cast<int64_t>(i)) {
        ASSERT_NEAR(v[i], (score(r.land[k]) - lo) / (hi - lo), 2e-6) << i;
        ++k;
      } else {
        EXPECT_EQ(v[i], -9999.0f) << "water is nodata";
        ++water;
      }
    }
    EXPECT_GT(water, 1000);
    EXPECT_EQ(res.dates[static_cast<std::size_t>(t)].land, static_cast<int64_t>(r.land.size()));
  }
}

TEST_F(EcologyScene, FvcFromPercentilesAndFixedValues) {
  EcologyOptions o;
  const auto res = run(o);
  // The percentiles of the land NDVI, by sorting (the histogram's bins are 1e-4 wide).
  const Ref r0 = reference(s0);
  std::vector<float> land;
  for (const auto& x : r0.land) land.push_back(static_cast<float>(x[0]));
  std::sort(land.begin(), land.end());
  const double p5 = land[static_cast<std::size_t>(0.05 * static_cast<double>(land.size()))];
  const double p95 = land[static_cast<std::size_t>(0.95 * static_cast<double>(land.size()))];
  EXPECT_NEAR(res.dates[0].ndvi_soil, p5, 2e-4);
  EXPECT_NEAR(res.dates[0].ndvi_veg, p95, 2e-4);
  {
    DatasetPtr ds = open_raster(dir / "out/fvc_t0.tif");
    const auto v = test::read_band<float>(*ds);
    for (std::size_t i = 0; i < v.size(); i += 7) {
      const double e = rasters::fvc_of(r0.ndvi[i], res.dates[0].ndvi_soil, res.dates[0].ndvi_veg);
      ASSERT_NEAR(v[i], e, 1e-6) << i;
    }
  }
  // Fixed end members: FVC = (NDVI - 0.1) / (0.7 - 0.1), clipped.
  o.fvc.ndvi_soil = 0.1;
  o.fvc.ndvi_veg = 0.7;
  const auto fixed = run(o, {}, "fixed");
  EXPECT_EQ(fixed.dates[1].ndvi_soil, 0.1);
  DatasetPtr ds = open_raster(dir / "fixed/fvc_t1.tif");
  const auto v = test::read_band<float>(*ds);
  const Ref r1 = reference(s1);
  int64_t zero = 0, one = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double e = std::clamp((static_cast<double>(r1.ndvi[i]) - 0.1) / 0.6, 0.0, 1.0);
    ASSERT_NEAR(v[i], e, 1e-6) << i;
    zero += v[i] == 0.0f, one += v[i] == 1.0f;
  }
  EXPECT_GT(zero, 0);
  EXPECT_GT(one, 0);
  int64_t levels = 0;
  for (int k = 1; k <= 5; ++k) levels += fixed.dates[1].fvc_levels[static_cast<std::size_t>(k)];
  EXPECT_EQ(levels, static_cast<int64_t>(v.size()));
}

TEST_F(EcologyScene, SameBitsForAnyWindowsAndThreads) {
  const auto base = run({}, {.threads = 1, .memory_mib = 1024}, "a");
  const auto other = run({}, {.threads = 2, .memory_mib = 1}, "b");
  ASSERT_EQ(base.pca.size(), other.pca.size());
  EXPECT_EQ(base.pca[0].loadings, other.pca[0].loadings);
  EXPECT_EQ(base.pca[0].covariance, other.pca[0].covariance);
  EXPECT_EQ(base.dates[1].rsei_grades, other.dates[1].rsei_grades);
  for (const char* f : {"rsei_t0.tif", "rsei_t1.tif", "fvc_t1.tif", "rsei_grade_change.tif"}) {
    DatasetPtr a = open_raster(dir / (std::string("a/") + f));
    DatasetPtr b = open_raster(dir / (std::string("b/") + f));
    EXPECT_EQ(test::read_band<float>(*a), test::read_band<float>(*b)) << f;
  }
}

TEST_F(EcologyScene, Uint16OutputsHoldTheSameValuesScaled) {
  EcologyOptions o;
  run(o, {}, "float");
  o.uint16 = true;
  run(o, {}, "uint16");
  for (const char* f : {"fvc_t0.tif", "rsei_t1.tif"}) {
    DatasetPtr a = open_raster(dir / (std::string("float/") + f));
    DatasetPtr b = open_raster(dir / (std::string("uint16/") + f));
    ASSERT_EQ(b->GetRasterBand(1)->GetRasterDataType(), GDT_UInt16);
    EXPECT_EQ(b->GetRasterBand(1)->GetScale(), 1e-4);
    const auto fv = test::read_band<float>(*a);
    const auto uv = test::read_band<uint16_t>(*b);
    int64_t nodata = 0;
    for (std::size_t i = 0; i < fv.size(); ++i) {
      if (fv[i] == -9999.0f) {
        ASSERT_EQ(uv[i], 65535) << f << " " << i;
        ++nodata;
        continue;
      }
      ASSERT_NEAR(uv[i] * 1e-4, fv[i], 0.5e-4 + 1e-7) << f << " " << i;
    }
    if (std::string(f) == "rsei_t1.tif") {
      EXPECT_GT(nodata, 0);  // water
    }
  }
}

TEST(Ecology, WindowCovarianceEqualsInMemoryForManyWindows) {
  test::TempDir dir;
  const Scene s0 = make_scene(1300, 1100, 2), s1 = make_scene(1300, 1100, 3);
  write_scene(dir / "t0.tif", s0);
  write_scene(dir / "t1.tif", s1);
  const auto a = open_s2(dir / "t0.tif", "before");
  const auto b = open_s2(dir / "t1.tif", "after");
  const Ref r0 = reference(s0), r1 = reference(s1);
  const DirectPca d = direct_pca({&r0, &r1});
  std::vector<double> first;
  for (double mib : {1.0, 8.0, 512.0}) {
    for (int threads : {1, 2}) {
      EcologyOptions o;
      o.out_dir = dir / "out";
      const auto res = rasters::compute_ecology({&a, ""}, {&b, ""}, s0.grid, o,
                                                {.threads = threads, .memory_mib = mib});
      const auto& p = res.pca[0];
      for (int k = 0; k < 3; ++k) {
        for (int j = 0; j < 3; ++j)
          EXPECT_NEAR(p.covariance[static_cast<std::size_t>(k * 3 + j)], d.cov(k, j), 1e-12)
              << mib << " MiB, " << threads << " threads";
        EXPECT_NEAR(p.loadings[static_cast<std::size_t>(k)], d.loadings[k], 1e-9);
      }
      if (first.empty()) first = p.covariance;
      EXPECT_EQ(p.covariance, first) << "same bits for " << mib << " MiB, " << threads;
    }
  }
}

TEST_F(EcologyScene, GradeChangeFollowsTheGrades) {
  EcologyOptions o;
  o.min_change = 0.0;
  o.majority_rule = false;  // every pixel whose grade moved
  const auto res = run(o);
  DatasetPtr a = open_raster(dir / "out/rsei_t0.tif"), b = open_raster(dir / "out/rsei_t1.tif"),
             g = open_raster(dir / "out/rsei_grade_change.tif");
  const auto r0 = test::read_band<float>(*a), r1 = test::read_band<float>(*b);
  const auto gc = test::read_band<uint8_t>(*g);
  int64_t fell = 0;
  for (std::size_t i = 0; i < gc.size(); ++i) {
    if (r0[i] == -9999.0f || r1[i] == -9999.0f) {
      ASSERT_EQ(gc[i], 0);
      continue;
    }
    const int d = rasters::grade_of(r1[i], o.rsei_breaks) - rasters::grade_of(r0[i], o.rsei_breaks);
    ASSERT_EQ(gc[i], 5 + d) << i;
    fell += d < 0;
  }
  EXPECT_EQ(res.degraded, fell);
  EXPECT_GT(fell, 0);
  const GDALColorTable* ct = g->GetRasterBand(1)->GetColorTable();
  ASSERT_NE(ct, nullptr);
  EXPECT_EQ(ct->GetColorEntry(5)->c1, 224);  // unchanged: grey
  EXPECT_EQ(ct->GetColorEntry(0)->c4, 0);    // no data: transparent
}

// Vegetation with planted soil and roof rectangles whose edges fall inside pixels: each pixel's
// spectrum mixes by the share of its area inside. Some rectangles straddle the borders of the
// 512-pixel windows, some end just across one.
struct MixedScene {
  Scene before, after;
  double truth_px = 0;  // the rectangles' area
};

MixedScene make_mixed_scene() {
  const int64_t w = 1100, h = 1100;
  const double veg[6] = {0.03, 0.07, 0.04, 0.45, 0.22, 0.11};
  const double soil[6] = {0.10, 0.14, 0.20, 0.26, 0.34, 0.30};
  const double roof[6] = {0.25, 0.26, 0.27, 0.30, 0.33, 0.31};
  struct Rect {
    double x0, y0, x1, y1;
    const double* spectrum;
  };
  // Twelve rectangles, 20 to 40 pixels a side, whose edges fall at fractions of a pixel spread
  // evenly over [0, 1) (multiples of the golden ratio).
  std::vector<Rect> rects;
  double frac = 0;
  auto next = [&frac] { return frac = std::fmod(frac + 0.6180339887, 1.0); };
  const double xs[4] = {60, 495, 760, 1005}, ys[3] = {60, 500, 1010};
  for (int k = 0; k < 12; ++k) {
    const double x0 = xs[k % 4] + next(), y0 = ys[k / 4] + next();
    const double x1 = x0 + 20 + 20 * next(), y1 = y0 + 20 + 20 * next();
    rects.push_back({x0, y0, x1, y1, k % 2 ? roof : soil});
  }
  // And four whose mostly-outside edge pixels lie in another window than the inside pixels next
  // to them: below, left of, above and right of a window border.
  rects.push_back({300.2, 480.4, 330.7, 512.3, soil});
  rects.push_back({480.2, 300.5, 512.45, 330.5, roof});
  rects.push_back({600.1, 511.6, 630.6, 540.3, soil});
  rects.push_back({1023.6, 700.3, 1050.1, 730.8, roof});
  MixedScene m;
  for (const auto& r : rects) m.truth_px += (r.x1 - r.x0) * (r.y1 - r.y0);
  auto overlap = [](double a0, double a1, double b0, double b1) {
    return std::max(0.0, std::min(a1, b1) - std::max(a0, b0));
  };
  m.before.grid = m.after.grid = test::utm_grid(w, h);
  m.before.bands.assign(6, std::vector<uint16_t>(static_cast<std::size_t>(w * h)));
  m.after.bands = m.before.bands;
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      double v1[6], v2[6];
      for (int b = 0; b < 6; ++b)
        v1[b] = v2[b] = veg[b] * (1.0 + 0.02 * std::sin(0.3 * x + 0.2 * y));
      for (const auto& r : rects) {
        const double f = overlap(x, x + 1.0, r.x0, r.x1) * overlap(y, y + 1.0, r.y0, r.y1);
        for (int b = 0; b < 6; ++b) v2[b] = (1 - f) * v2[b] + f * r.spectrum[b];
      }
      for (int b = 0; b < 6; ++b) {
        m.before.bands[static_cast<std::size_t>(b)][test::px(x, y, w)] =
            static_cast<uint16_t>(std::lround(v1[b] * 10000));
        m.after.bands[static_cast<std::size_t>(b)][test::px(x, y, w)] =
            static_cast<uint16_t>(std::lround(v2[b] * 10000));
      }
    }
  }
  return m;
}

// The pixels counted degraded add up to the rectangles' area with the majority rule, and
// overcount it when mixed pixels count whole. The rule, recomputed here on the output rasters
// (a pixel whose grade moved, next to a valid unmoved pixel, keeps its move only when |dRSEI| is
// at least half the largest |dRSEI| of its neighbours moving the same way), gives the grade
// change map pixel for pixel, with 3 x 3 windows on two threads as with one window.
TEST(EcologyMixedPixels, MajorityRuleGivesTheAreaOfSubPixelRectangles) {
  test::TempDir dir;
  const MixedScene m = make_mixed_scene();
  write_scene(dir / "t0.tif", m.before);
  write_scene(dir / "t1.tif", m.after);
  const auto a = open_s2(dir / "t0.tif", "before");
  const auto b = open_s2(dir / "t1.tif", "after");
  const Grid& grid = m.before.grid;
  EcologyOptions o;
  o.out_dir = dir / "windows";
  const auto major =
      rasters::compute_ecology({&a, ""}, {&b, ""}, grid, o, {.threads = 2, .memory_mib = 1});
  o.out_dir = dir / "one";
  const auto one =
      rasters::compute_ecology({&a, ""}, {&b, ""}, grid, o, {.threads = 1, .memory_mib = 4096});
  o.majority_rule = false;
  o.out_dir = dir / "whole";
  const auto whole = rasters::compute_ecology({&a, ""}, {&b, ""}, grid, o);
  std::printf("planted %.1f px; degraded: majority rule %lld px, whole pixels %lld px\n",
              m.truth_px, static_cast<long long>(major.degraded),
              static_cast<long long>(whole.degraded));
  EXPECT_NEAR(static_cast<double>(major.degraded) / m.truth_px, 1.0, 0.01);
  EXPECT_GT(static_cast<double>(whole.degraded) / m.truth_px, 1.02);
  EXPECT_EQ(major.improved, 0);
  EXPECT_EQ(one.degraded, major.degraded);

  DatasetPtr ra = open_raster(dir / "windows/rsei_t0.tif"),
             rb = open_raster(dir / "windows/rsei_t1.tif");
  const auto r0 = test::read_band<float>(*ra), r1 = test::read_band<float>(*rb);
  const auto gc = test::read_band<uint8_t>(*open_raster(dir / "windows/rsei_grade_change.tif"));
  EXPECT_EQ(gc, test::read_band<uint8_t>(*open_raster(dir / "one/rsei_grade_change.tif")));
  const int64_t w = grid.width(), h = grid.height();
  constexpr int kNone = 100;
  auto move = [&](int64_t x, int64_t y) {
    if (x < 0 || y < 0 || x >= w || y >= h) return kNone;
    const std::size_t i = test::px(x, y, w);
    if (r0[i] == -9999.0f || r1[i] == -9999.0f) return kNone;
    if (std::abs(r1[i] - r0[i]) < 0.1f) return 0;
    return rasters::grade_of(r1[i], o.rsei_breaks) - rasters::grade_of(r0[i], o.rsei_breaks);
  };
  int64_t dropped = 0;
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const std::size_t i = test::px(x, y, w);
      int mv = move(x, y);
      if (mv != kNone && mv != 0) {
        bool rim = false;
        float strongest = 0;
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) {
            const int q = (dx || dy) ? move(x + dx, y + dy) : kNone;
            if (q == 0) rim = true;
            if (q != kNone && q != 0 && (q > 0) == (mv > 0)) {
              const std::size_t j = test::px(x + dx, y + dy, w);
              strongest = std::max(strongest, std::abs(r1[j] - r0[j]));
            }
          }
        }
        if (rim && std::abs(r1[i] - r0[i]) < 0.5f * strongest) mv = 0, ++dropped;
      }
      ASSERT_EQ(gc[i], mv == kNone ? 0 : 5 + mv) << x << "," << y;
    }
  }
  EXPECT_GT(dropped, 100);
}

TEST_F(EcologyScene, HeatFromLstRasters) {
  // An LST raster per date on a coarser 20 m grid: four components.
  const Grid coarse = test::utm_grid(150, 110, 20.0);
  for (int t = 0; t < 2; ++t) {
    std::vector<float> lst(150 * 110);
    for (std::size_t i = 0; i < lst.size(); ++i)
      lst[i] = 290.0f + static_cast<float>(i % 150) * 0.1f + t;
    test::write_raster<float>(dir / ("lst" + std::to_string(t) + ".tif"), coarse, {lst});
  }
  const auto a = open_s2(dir / "t0.tif", "before");
  const auto b = open_s2(dir / "t1.tif", "after");
  EcologyOptions o;
  o.out_dir = dir / "heat";
  const auto res =
      rasters::compute_ecology({&a, dir / "lst0.tif"}, {&b, dir / "lst1.tif"}, s0.grid, o);
  ASSERT_EQ(res.components.size(), 4u);
  EXPECT_EQ(res.heat, "lst raster");
  EXPECT_NEAR(res.pca[0].min[3], 290.0, 0.2);
  EXPECT_NEAR(res.pca[0].max[3], 291.0 + 14.9, 0.2);
  // A heat source is required but the second date has none.
  o.heat = "required";
  EXPECT_THROW(rasters::compute_ecology({&a, dir / "lst0.tif"}, {&b, ""}, s0.grid, o), Error);
}

TEST(EcologyErrors, SensorWithoutWetnessAndMissingBands) {
  test::TempDir dir;
  const Scene s = make_scene(64, 64, 0);
  write_scene(dir / "t.tif", s);
  rasters::ImageryOptions g;
  g.files = {dir / "t.tif"};
  g.sensor = "generic";
  g.band_map = "blue=1,green=2,red=3,nir=4,swir1=5,swir2=6";
  g.scale = 1e-4;
  g.label = "date 1";
  const auto im = rasters::Imagery::open(g);
  EcologyOptions o;
  o.out_dir = dir / "out";
  try {
    rasters::compute_ecology({&im, ""}, {&im, ""}, s.grid, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(e.message().find("generic"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("wetness"), std::string::npos) << e.message();
  }
  o.wetness = "landsat7";  // the documented way out
  const auto res = rasters::compute_ecology({&im, ""}, {&im, ""}, s.grid, o);
  EXPECT_EQ(res.wetness.id, "landsat7");
  EXPECT_EQ(res.degraded, 0);  // the same image twice
  EXPECT_EQ(res.improved, 0);
  // A four-band Gaofen-like image: no SWIR.
  rasters::ImageryOptions gf = g;
  gf.band_map = "blue=1,green=2,red=3,nir=4";
  const auto four = rasters::Imagery::open(gf);
  try {
    rasters::compute_ecology({&four, ""}, {&four, ""}, s.grid, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("swir1"), std::string::npos) << e.message();
  }
}

TEST(EcologyErrors, AllWaterIsNoData) {
  test::TempDir dir;
  const Grid grid = test::utm_grid(64, 64);
  const uint16_t water[6] = {600, 500, 300, 150, 80, 50};
  std::vector<std::vector<uint16_t>> bands;
  for (uint16_t v : water) bands.push_back(std::vector<uint16_t>(64 * 64, v));
  test::write_raster<uint16_t>(dir / "w.tif", grid, bands, {"B2", "B3", "B4", "B8", "B11", "B12"},
                               0);
  const auto im = open_s2(dir / "w.tif", "lake");
  EcologyOptions o;
  o.out_dir = dir / "out";
  try {
    rasters::compute_ecology({&im, ""}, {&im, ""}, grid, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kNoData);
    EXPECT_NE(e.message().find("lake"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "out/rsei_t0.tif"));
}

// Real scenes: RSEI maps and grade changes without NaN, masked pixels as nodata.
void check_real(const std::string& out, const rasters::EcologyResult& res,
                const std::vector<uint8_t>& masked0) {
  EXPECT_GT(res.pca[0].variance_share, 0.4);
  EXPECT_LE(res.pca[0].variance_share, 1.0);
  for (const char* f : {"rsei_t0.tif", "rsei_t1.tif", "fvc_t0.tif"}) {
    DatasetPtr ds = open_raster(out + "/" + f);
    const auto v = test::read_band<float>(*ds);
    int64_t valid = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      ASSERT_FALSE(std::isnan(v[i])) << f << " " << i;
      if (v[i] == -9999.0f) continue;
      ASSERT_GE(v[i], 0.0f);
      ASSERT_LE(v[i], 1.0f);
      if (std::string(f) != "rsei_t1.tif") {
        ASSERT_FALSE(masked0[i]) << "masked pixel " << i;
      }
      ++valid;
    }
    EXPECT_GT(valid, static_cast<int64_t>(v.size() / 3)) << f;
  }
}

TEST(EcologyRealData, Landsat7Pennsylvania) {
  if (!test::have_shared_data()) GTEST_SKIP() << "no ../shared/data";
  const std::string d = test::shared_data() + "/landsat7_pennsylvania/";
  test::TempDir out;
  auto open = [&](const std::string& f, const char* label) {
    rasters::ImageryOptions o;
    o.files = {d + f};
    o.sensor = "generic";
    o.band_map = "blue=1,green=2,red=3,nir=4,swir1=5,swir2=6";
    o.scale = 1.0 / 255.0;  // digital numbers, not reflectance
    o.nodata = 0;
    o.label = label;
    return rasters::Imagery::open(o);
  };
  const auto a = open("L7_p15r32_20020720_B123457.tif", "July 2002");
  const auto b = open("L7_p15r32_20021125_B123457.tif", "November 2002");
  EcologyOptions o;
  o.wetness = "landsat7";
  o.out_dir = out.path();
  const auto res = rasters::compute_ecology({&a, ""}, {&b, ""}, a.grid(), o);
  // DN 0 (nodata) anywhere in the first date's bands must come out as nodata.
  DatasetPtr src = open_raster(d + "L7_p15r32_20020720_B123457.tif");
  std::vector<uint8_t> masked(static_cast<std::size_t>(a.grid().width() * a.grid().height()), 0);
  for (int band = 1; band <= 6; ++band) {
    const auto v = test::read_band<double>(*src, band);
    for (std::size_t i = 0; i < v.size(); ++i) masked[i] |= v[i] == 0;
  }
  check_real(out.path(), res, masked);
  // Summer to late autumn over farmland: the mean RSEI falls.
  EXPECT_LT(res.dates[1].rsei_mean, res.dates[0].rsei_mean);
  EXPECT_GT(res.degraded, res.improved);
}

TEST(EcologyRealData, Sentinel2T37mem) {
  if (!test::have_shared_data()) GTEST_SKIP() << "no ../shared/data";
  const std::string d = test::shared_data() + "/sentinel2_t37mem/";
  test::TempDir out;
  auto open = [&](const std::string& date) {
    rasters::ImageryOptions o;
    o.files = {d + "S2_T37MEM_" + date + "_sref_10b_20m.tif"};
    o.sensor = "sentinel2";
    o.band_map = "blue=1,green=2,red=3,nir=7,swir1=9,swir2=10";
    o.scale = 0.001;  // reflectance x 1000
    o.nodata = 0;     // cloud-masked pixels are 0 in every band
    o.label = date;
    return rasters::Imagery::open(o);
  };
  const auto a = open("20160312");  // about 49 % masked
  const auto b = open("20190715");
  EcologyOptions o;
  o.out_dir = out.path();
  const auto res = rasters::compute_ecology({&a, ""}, {&b, ""}, a.grid(), o);
  DatasetPtr src = open_raster(d + "S2_T37MEM_20160312_sref_10b_20m.tif");
  const auto v = test::read_band<double>(*src, 1);
  std::vector<uint8_t> masked(v.size());
  int64_t n = 0;
  for (std::size_t i = 0; i < v.size(); ++i) masked[i] = v[i] == 0, n += masked[i];
  EXPECT_GT(n, static_cast<int64_t>(v.size() / 3));
  check_real(out.path(), res, masked);
  EXPECT_LT(res.dates[0].land, static_cast<int64_t>(v.size()) - n + 1);
}

}  // namespace
}  // namespace fw
