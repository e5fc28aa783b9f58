// Change methods beyond index differencing: IR-MAD on rasters (window-by-window result equal to
// an in-memory computation, ROC AUC of the no-change probability), relative radiometric
// normalisation, change vector analysis. The pair is planted: date 2 = gain * date 1 + offset +
// noise, with known changed rectangles.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/atomic_file.hpp"
#include "engine/hash.hpp"
#include "rasters/change.hpp"
#include "rasters/irmad.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

using json = nlohmann::json;
using rasters::Covariance;

constexpr int kW = 530, kH = 130, kP = 6;
const double kGain[kP] = {1.12, 1.08, 1.05, 0.85, 0.9, 0.95};
const double kOffset[kP] = {0.02, 0.015, 0.01, -0.01, 0.005, 0.0};

struct PlantedPair {
  std::vector<std::vector<float>> x, y;  // [band][pixel]
  std::vector<uint8_t> changed;          // per pixel
};

// Fields of 40 x 40 pixels, each a soil-vegetation mixture with texture; 12 changed rectangles
// (a bright roof or a pond replacing the field).
const PlantedPair& pair() {
  static const PlantedPair s = [] {
    PlantedPair p;
    const std::size_t n = static_cast<std::size_t>(kW) * kH;
    p.x.assign(kP, std::vector<float>(n));
    p.y.assign(kP, std::vector<float>(n));
    p.changed.assign(n, 0);
    for (int r = 0; r < 12; ++r) {
      const int x0 = 20 + (r % 6) * 85, y0 = 30 + (r / 6) * 50;
      for (int yy = y0; yy < y0 + 24; ++yy)
        for (int xx = x0; xx < x0 + 30; ++xx) p.changed[test::px(xx, yy, kW)] = r % 2 ? 1 : 2;
    }
    Rng rng(2024);
    for (int row = 0; row < kH; ++row) {
      for (int col = 0; col < kW; ++col) {
        const std::size_t i = test::px(col, row, kW);
        const uint64_t field =
            hash_of({static_cast<uint64_t>(col / 40), static_cast<uint64_t>(row / 40)});
        const double veg = 0.1 + 0.8 * unit(field), t = rng.normal(), moist = unit(mix64(field));
        const double soil = 1 - veg;
        double v[kP] = {0.04 + 0.06 * soil + 0.004 * t,
                        0.06 + 0.07 * soil + 0.004 * rng.normal(),
                        0.03 + 0.15 * soil + 0.005 * t,
                        0.22 + 0.25 * veg + 0.01 * rng.normal(),
                        0.12 + 0.18 * soil - 0.04 * moist + 0.006 * rng.normal(),
                        0.06 + 0.16 * soil - 0.03 * moist + 0.005 * rng.normal()};
        double after[kP];
        for (int k = 0; k < kP; ++k) after[k] = v[k];
        if (p.changed[i] == 1) {  // bright concrete roof
          const double c[kP] = {0.22, 0.24, 0.26, 0.28, 0.3, 0.27};
          for (int k = 0; k < kP; ++k) after[k] = c[k] + 0.01 * rng.normal();
        } else if (p.changed[i] == 2) {  // pond
          const double c[kP] = {0.07, 0.08, 0.06, 0.04, 0.02, 0.015};
          for (int k = 0; k < kP; ++k) after[k] = c[k] + 0.004 * rng.normal();
        }
        for (int k = 0; k < kP; ++k) {
          p.x[static_cast<std::size_t>(k)][i] = static_cast<float>(v[k]);
          p.y[static_cast<std::size_t>(k)][i] =
              static_cast<float>(kGain[k] * after[k] + kOffset[k] + 0.004 * rng.normal());
        }
      }
    }
    return p;
  }();
  return s;
}

rasters::ImageryOptions date(const std::string& file) {
  rasters::ImageryOptions o;
  o.files = {file};
  o.sensor = "generic";
  o.band_map = "blue=1,green=2,red=3,nir=4,swir1=5,swir2=6";
  o.scale = 1.0;
  o.label = file;
  return o;
}

struct ChangeRun {
  rasters::ChangeResult result;
  json stats;
};

class ChangeMethods : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const Grid g = test::utm_grid(kW, kH);
    test::write_raster<float>(*dir_ / "d1.tif", g, pair().x);
    test::write_raster<float>(*dir_ / "d2.tif", g, pair().y);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static ChangeRun run(rasters::ChangeOptions o, const std::string& out, int threads = 0,
                       double memory = 0) {
    const auto d1 = rasters::Imagery::open(date(*dir_ / "d1.tif"));
    const auto d2 = rasters::Imagery::open(date(*dir_ / "d2.tif"));
    o.out_dir = *dir_ / out;
    std::filesystem::create_directories(o.out_dir);
    SchedulerOptions so;
    so.threads = threads;
    so.memory_mib = memory;
    ChangeRun r;
    r.result = rasters::detect_change(d1, d2, rasters::change_grid(d1, d2), o, so);
    r.stats = json::parse(read_file(o.out_dir + "/change_stats.json"));
    return r;
  }
  static std::vector<float> band(const std::string& file, int b = 1) {
    DatasetPtr ds = open_raster(*dir_ / file);
    return test::read_band<float>(*ds, b);
  }
  static test::TempDir* dir_;
};
test::TempDir* ChangeMethods::dir_ = nullptr;

// ROC AUC of a score where low means changed: P(changed pixel scores below an unchanged one).
double auc_low_is_changed(const std::vector<float>& score) {
  std::vector<std::pair<float, bool>> s;
  for (std::size_t i = 0; i < score.size(); ++i) s.emplace_back(score[i], pair().changed[i] != 0);
  std::sort(s.begin(), s.end());
  double pos = 0, neg = 0, auc = 0;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t j = i;
    double p = 0, q = 0;
    while (j < s.size() && s[j].first == s[i].first) (s[j].second ? p : q) += 1, ++j;
    auc += q * pos + 0.5 * p * q;  // ties count one half
    pos += p, neg += q;
    i = j;
  }
  return auc / (pos * neg);
}

// Shares of planted pixels with magnitude >= 1 (found) and of unchanged ones (flagged).
std::pair<double, double> candidate_shares(const std::vector<float>& mag) {
  double planted = 0, found = 0, unchanged = 0, flagged = 0;
  for (std::size_t i = 0; i < mag.size(); ++i) {
    if (pair().changed[i]) {
      planted += 1, found += mag[i] >= 1;
    } else {
      unchanged += 1, flagged += mag[i] >= 1;
    }
  }
  return {found / planted, flagged / unchanged};
}

// IR-MAD over every pixel in memory, in double precision: each iteration's weighted covariance
// by the two-pass textbook formula (means first, then centred products), independent of the
// mergeable accumulators the raster code uses.
rasters::IrMadResult in_memory_irmad() {
  const std::size_t n = pair().changed.size();
  constexpr int D = 2 * kP;
  std::vector<double> z(n * D);
  for (std::size_t i = 0; i < n; ++i) {
    for (int k = 0; k < kP; ++k) {
      z[i * D + k] = pair().x[static_cast<std::size_t>(k)][i];
      z[i * D + kP + k] = pair().y[static_cast<std::size_t>(k)][i];
    }
  }
  return rasters::irmad(
      [&](const rasters::MadTransform* t) {
        std::vector<double> w(n, 1.0);
        if (t) {
          for (std::size_t i = 0; i < n; ++i) {
            double mad[kP], chi2 = 0;
            t->apply(&z[i * D], &z[i * D + kP], mad, chi2);
            w[i] = t->no_change_probability(chi2);
          }
        }
        double sw = 0;
        Eigen::VectorXd mean = Eigen::VectorXd::Zero(D);
        for (std::size_t i = 0; i < n; ++i) {
          sw += w[i];
          for (int k = 0; k < D; ++k) mean[k] += w[i] * z[i * D + static_cast<std::size_t>(k)];
        }
        mean /= sw;
        Eigen::MatrixXd m2 = Eigen::MatrixXd::Zero(D, D);
        for (std::size_t i = 0; i < n; ++i) {
          double d[D];
          for (int k = 0; k < D; ++k) d[k] = z[i * D + static_cast<std::size_t>(k)] - mean[k];
          for (int k = 0; k < D; ++k)
            for (int l = 0; l < D; ++l) m2(k, l) += w[i] * d[k] * d[l];
        }
        return Covariance::from_moments(sw, mean, m2);
      },
      kP, 100, 1e-6);
}

TEST_F(ChangeMethods, IrmadEqualsInMemoryForAnyWindowingAndThreads) {
  const rasters::IrMadResult ref = in_memory_irmad();
  ASSERT_TRUE(ref.converged);
  int k = 0;
  // Streaming every pixel window by window (512 x 512 windows, or one window), and a sample
  // large enough to hold every pixel; 1 and 2 threads.
  struct Config {
    int64_t sample;
    int threads;
    double memory;
  };
  for (const Config& cf :
       {Config{0, 1, 64.0}, Config{0, 2, 4096.0}, Config{int64_t{1} << 22, 2, 64.0}}) {
    const int64_t sample = cf.sample;
    const int threads = cf.threads;
    const double memory = cf.memory;
    {
      rasters::ChangeOptions o;
      o.method = "irmad";
      o.irmad_sample = sample;
      const ChangeRun r = run(o, "irmad" + std::to_string(k++), threads, memory);
      EXPECT_EQ(r.result.irmad_pixels, kW * kH);
      EXPECT_EQ(r.result.irmad_iterations, ref.iterations) << sample << " " << threads;
      ASSERT_EQ(r.result.canonical_correlations.size(), 6u);
      for (int i = 0; i < kP; ++i) {
        EXPECT_NEAR(r.result.canonical_correlations[static_cast<std::size_t>(i)],
                    ref.transform.rho[i], 1e-9)
            << "sample " << sample << " threads " << threads << " memory " << memory;
      }
      EXPECT_EQ(r.stats["irmad"]["canonical_correlations"].size(), 6u);
    }
  }
}

TEST_F(ChangeMethods, IrmadNoChangeProbabilitySeparatesPlantedChanges) {
  rasters::ChangeOptions o;
  o.method = "irmad";
  o.mad_variates = true;
  const ChangeRun r = run(o, "irmad_auc");
  EXPECT_TRUE(r.result.irmad_converged);
  const std::vector<float> prob = band("irmad_auc/irmad_no_change.tif");
  const double auc = auc_low_is_changed(prob);
  EXPECT_GE(auc, 0.95);
  std::printf("IR-MAD no-change probability ROC AUC %.4f, chi-square scale %.3f\n", auc,
              r.result.chi2_scale);
  // The chi-square is the sum of the squared standardised MAD variates, sigma_i^2 = 2 (1 - rho_i).
  const std::vector<float> chi2 = band("irmad_auc/irmad_chi2.tif");
  std::vector<std::vector<float>> mads;
  for (int b = 1; b <= kP; ++b) mads.push_back(band("irmad_auc/mad_variates.tif", b));
  for (std::size_t i : {std::size_t{0}, std::size_t{7777}, std::size_t{kW * 45 + 25}}) {
    double c = 0;
    for (int k = 0; k < kP; ++k) {
      const double sigma2 = 2 * (1 - r.result.canonical_correlations[static_cast<std::size_t>(k)]);
      c += mads[static_cast<std::size_t>(k)][i] * mads[static_cast<std::size_t>(k)][i] / sigma2;
    }
    EXPECT_NEAR(chi2[i], c, 1e-3 * std::max(1.0, c)) << i;
    EXPECT_NEAR(prob[i], rasters::chi2_sf(chi2[i] / r.result.chi2_scale, kP), 1e-5) << i;
  }
  // Change candidates: most planted pixels, few unchanged ones.
  const std::vector<float> mag = band("irmad_auc/change_magnitude.tif");
  const auto [found_share, flagged_share] = candidate_shares(mag);
  EXPECT_GE(found_share, 0.95);
  EXPECT_LE(flagged_share, 0.01);
  std::printf("IR-MAD candidates: %.4f of planted, %.4f of unchanged\n", found_share,
              flagged_share);
}

TEST_F(ChangeMethods, NormalisationRecoversGainAndOffset) {
  rasters::ChangeOptions o;
  o.normalize = true;
  const ChangeRun r = run(o, "norm");
  ASSERT_TRUE(r.result.normalization.applied);
  // The invariant pixels (calibrated no-change probability above 0.95): by construction about
  // 5 % of the unchanged ones.
  EXPECT_GT(r.result.normalization.pixels, kW * kH / 50);
  for (std::size_t k = 0; k < kP; ++k) {
    EXPECT_NEAR(r.result.normalization.slope[k], kGain[k], 0.03 * kGain[k]) << k;
    EXPECT_NEAR(r.result.normalization.intercept[k], kOffset[k], 0.006) << k;
    EXPECT_GT(r.result.normalization.correlation[k], 0.9) << k;
  }
  EXPECT_NEAR(r.stats["normalization"]["bands"]["nir"]["slope"].get<double>(), kGain[3], 0.03);
  // After normalisation the index differences of unchanged pixels centre on zero.
  EXPECT_NEAR(r.stats["thresholds"]["ndvi"]["median"].get<double>(), 0.0, 0.005);
  // Without it, the gains shift NDVI (NIR x 0.85, red x 1.05).
  const ChangeRun raw = run(rasters::ChangeOptions{}, "raw");
  EXPECT_LT(raw.stats["thresholds"]["ndvi"]["median"].get<double>(), -0.05);
}

TEST_F(ChangeMethods, CvaMagnitudeAndDirectionFromTheBands) {
  rasters::ChangeOptions o;
  o.method = "cva";
  o.normalize = true;
  o.cva_vars = {"ndvi", "bsi", "blue"};
  const ChangeRun r = run(o, "cva");
  const std::vector<float> mag = band("cva/change_magnitude.tif");
  const std::vector<float> dir = band("cva/change_direction.tif");
  const json& t = r.stats["thresholds"];
  const auto& nm = r.result.normalization;
  // Recompute at a few pixels, unchanged and changed, from the planted bands.
  for (std::size_t i : {std::size_t{5}, std::size_t{kW * 50 + 25}, std::size_t{kW * 120 + 300}}) {
    double b[2][kP];
    for (std::size_t k = 0; k < kP; ++k) {
      b[0][k] = pair().x[k][i];
      b[1][k] = (static_cast<double>(pair().y[k][i]) - nm.intercept[k]) / nm.slope[k];
    }
    auto ndvi = [](const double* v) { return (v[3] - v[2]) / (v[3] + v[2]); };
    auto bsi = [](const double* v) {
      return (v[4] + v[2] - v[3] - v[0]) / (v[4] + v[2] + v[3] + v[0]);
    };
    auto z = [&](const char* name, double d) {
      return (d - t[name]["median"].get<double>()) / t[name]["threshold"].get<double>();
    };
    const double z1 = z("ndvi", ndvi(b[1]) - ndvi(b[0])), z2 = z("bsi", bsi(b[1]) - bsi(b[0])),
                 z3 = z("blue", b[1][0] - b[0][0]);
    EXPECT_NEAR(mag[i], std::sqrt(z1 * z1 + z2 * z2 + z3 * z3),
                2e-3 * std::max(1.0, double(mag[i])))
        << i;
    double deg = std::atan2(z2, z1) * 180 / M_PI;
    if (deg < 0) deg += 360;
    EXPECT_NEAR(dir[i], deg, 0.05) << i;
  }
  // A roof on a field: NDVI falls, so the direction (atan2 of zbsi, zndvi) lies between 90 and
  // 270 degrees.
  EXPECT_GT(dir[kW * 50 + 120], 90.0);
  EXPECT_LT(dir[kW * 50 + 120], 270.0);
  const auto [found_share, flagged_share] = candidate_shares(mag);
  EXPECT_GE(found_share, 0.95);
  EXPECT_LE(flagged_share, 0.01);
  EXPECT_EQ(r.stats["cva"]["variables"].size(), 3u);
}

TEST_F(ChangeMethods, BadMethodOptionsAreUsageErrors) {
  rasters::ChangeOptions o;
  o.method = "pca";
  EXPECT_THROW(run(o, "bad1"), Error);
  o.method = "cva";
  o.cva_vars = {"ndvi", "wetness"};
  try {
    run(o, "bad2");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_TRUE(test::contains(e.what(), "wetness"));
  }
  EXPECT_TRUE(test::dir_entries(*dir_ / "bad2").empty());
}

}  // namespace
}  // namespace fw
