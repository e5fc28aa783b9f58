#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine/hash.hpp"
#include "rasters/irmad.hpp"
#include "rasters/stats.hpp"

namespace fw {
namespace {

using rasters::Covariance;
using rasters::Histogram;

TEST(Histogram, OtsuEqualsBruteForceOverTheSameHistogram) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    Rng rng(seed);
    Histogram h(-1.0, 1.0, 200);
    for (int i = 0; i < 20000; ++i) h.add(-0.4 + 0.1 * rng.normal());
    for (int i = 0; i < 5000 * static_cast<int>(seed); ++i) h.add(0.3 + 0.15 * rng.normal());
    // Brute force: every split, class statistics summed from scratch.
    double best = -1;
    int best_k = -1;
    for (int k = 0; k < h.bins() - 1; ++k) {
      double w0 = 0, s0 = 0, w1 = 0, s1 = 0;
      for (int b = 0; b <= k; ++b) w0 += h.count(b), s0 += h.count(b) * h.center(b);
      for (int b = k + 1; b < h.bins(); ++b) w1 += h.count(b), s1 += h.count(b) * h.center(b);
      if (w0 == 0 || w1 == 0) continue;
      const double v = w0 * w1 * (s0 / w0 - s1 / w1) * (s0 / w0 - s1 / w1);
      if (v > best) best = v, best_k = k;
    }
    EXPECT_DOUBLE_EQ(h.otsu(), h.lo() + (best_k + 1) * h.width()) << "seed " << seed;
    EXPECT_GT(h.otsu(), -0.3);
    EXPECT_LT(h.otsu(), 0.2);
  }
  Histogram one(0, 1, 10);
  one.add(0.5, 100);
  EXPECT_TRUE(std::isnan(one.otsu()));
}

TEST(Histogram, MedianAndMadToTheBinWidth) {
  Histogram h(-10, 10, 2000);
  std::vector<double> v;
  Rng rng(9);
  for (int i = 0; i < 10001; ++i) {
    v.push_back(1.5 + 2.0 * rng.normal());
    h.add(v.back());
  }
  std::vector<double> s = v;
  std::nth_element(s.begin(), s.begin() + 5000, s.end());
  const double med = s[5000];
  EXPECT_NEAR(h.median(), med, h.width());
  std::vector<double> dev;
  for (double x : v) dev.push_back(std::abs(x - med));
  std::nth_element(dev.begin(), dev.begin() + 5000, dev.end());
  EXPECT_NEAR(h.mad(), dev[5000], 2 * h.width());
  EXPECT_NEAR(h.mad(), 2.0 * 0.6744897501960817, 0.05);  // MAD of a normal: 0.6745 sigma
}

// Two-pass weighted covariance in memory, the reference.
Eigen::MatrixXd direct_cov(const std::vector<std::vector<double>>& rows,
                           const std::vector<double>& w) {
  const int d = static_cast<int>(rows[0].size());
  Eigen::VectorXd m = Eigen::VectorXd::Zero(d);
  double sw = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    sw += w[i];
    for (int k = 0; k < d; ++k) m[k] += w[i] * rows[i][static_cast<std::size_t>(k)];
  }
  m /= sw;
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(d, d);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    Eigen::VectorXd x(d);
    for (int k = 0; k < d; ++k) x[k] = rows[i][static_cast<std::size_t>(k)] - m[k];
    c += w[i] * x * x.transpose();
  }
  return c / sw;
}

TEST(Covariance, MergedChunksEqualInMemory) {
  Rng rng(4);
  std::vector<std::vector<double>> rows;
  std::vector<double> w;
  for (int i = 0; i < 5000; ++i) {
    const double a = rng.normal(), b = rng.normal();
    rows.push_back({1000 + a, 2000 + 0.5 * a + b, -3 + 0.1 * b});
    w.push_back(rng.uniform());
  }
  const Eigen::MatrixXd ref = direct_cov(rows, w);
  for (int chunk : {1, 7, 256, 5000}) {
    Covariance total(3);
    for (std::size_t s = 0; s < rows.size(); s += static_cast<std::size_t>(chunk)) {
      Covariance part(3);
      for (std::size_t i = s; i < std::min(rows.size(), s + static_cast<std::size_t>(chunk)); ++i) {
        part.add(rows[i].data(), w[i]);
      }
      total.merge(part);
    }
    EXPECT_LT((total.covariance() - ref).cwiseAbs().maxCoeff(), 1e-9 * ref.cwiseAbs().maxCoeff())
        << "chunk " << chunk;
  }
}

// Stored and read back (shards' partial results), a histogram and a covariance merge to the same
// bits as the originals; a cut record is an error.
TEST(Covariance, PartialsRoundTripBitForBit) {
  Rng rng(9);
  Covariance a(3), b(3);
  Histogram h(-1, 1, 200);
  for (int i = 0; i < 3000; ++i) {
    const double x[3] = {rng.normal(), 5 + rng.normal(), -2 * rng.uniform()};
    (i % 3 ? a : b).add(x, rng.uniform());
    h.add(std::tanh(x[0]));
  }
  ByteWriter out;
  a.write(out);
  b.write(out);
  h.write(out);
  const std::string bytes = out.take();
  ByteReader in(bytes);
  Covariance a2 = Covariance::read(in), b2 = Covariance::read(in);
  const Histogram h2 = Histogram::read(in);
  EXPECT_TRUE(in.done());
  a.merge(b);
  a2.merge(b2);
  EXPECT_EQ(a2.weight(), a.weight());
  EXPECT_EQ(a2.mean(), a.mean());
  EXPECT_EQ(a2.covariance(), a.covariance());
  EXPECT_EQ(h2.total(), h.total());
  EXPECT_EQ(h2.quantile(0.37), h.quantile(0.37));
  for (int k = 0; k < h.bins(); ++k) EXPECT_EQ(h2.count(k), h.count(k));
  const std::string shorter = bytes.substr(0, bytes.size() - 9);
  ByteReader cut(shorter);
  Covariance::read(cut);
  Covariance::read(cut);
  EXPECT_THROW(Histogram::read(cut), Error);
}

TEST(ChiSquare, UpperTailKnownValues) {
  EXPECT_NEAR(rasters::chi2_sf(3.841458820694124, 1), 0.05, 1e-12);
  EXPECT_NEAR(rasters::chi2_sf(9.487729036781154, 4), 0.05, 1e-12);
  EXPECT_NEAR(rasters::chi2_sf(2.0, 2), std::exp(-1.0), 1e-14);  // dof 2: exp(-x/2)
  // Even dof 2k: exp(-x/2) * sum_{i<k} (x/2)^i / i!; dof 6, x 40: 221 exp(-20).
  EXPECT_NEAR(rasters::chi2_sf(40.0, 6), 221.0 * std::exp(-20.0), 1e-18);
  EXPECT_DOUBLE_EQ(rasters::chi2_sf(0.0, 3), 1.0);
  // Odd dof from the error function: dof 1: erfc(sqrt(x/2)); dof 3: + sqrt(2x/pi) exp(-x/2).
  for (double x : {0.3, 2.0, 7.5, 30.0}) {
    const double e = std::erfc(std::sqrt(x / 2));
    EXPECT_NEAR(rasters::chi2_sf(x, 1), e, 1e-13 + 1e-12 * e) << x;
    const double e3 = e + std::sqrt(2 * x / M_PI) * std::exp(-x / 2);
    EXPECT_NEAR(rasters::chi2_sf(x, 3), e3, 1e-13 + 1e-12 * e3) << x;
  }
  // Beyond the closed form (dof 42, continued fraction) against the series sum exp(-z) z^i/i!.
  double term = 1, sum = 1;
  for (int i = 1; i < 21; ++i) sum += (term *= 25.0 / i);
  EXPECT_NEAR(rasters::chi2_sf(50.0, 42), std::exp(-25.0) * sum, 1e-12);
  // Critical values (tables): 3.841459 (dof 1, 5 %), 22.457744 (dof 6, 0.1 %).
  EXPECT_NEAR(rasters::chi2_isf(0.05, 1), 3.8414588206941, 1e-9);
  EXPECT_NEAR(rasters::chi2_isf(0.001, 6), 22.457744484825, 1e-9);
  EXPECT_NEAR(rasters::chi2_sf(rasters::chi2_isf(0.5, 6), 6), 0.5, 1e-12);
}

// A two-date pair: date 2 = gain * date 1 + offset + noise, with planted changes.
struct Pair {
  int p = 4;
  std::vector<double> x, y;  // n * p
  std::vector<bool> changed;
};

Pair make_pair(int n, uint64_t seed) {
  Pair s;
  Rng rng(seed);
  const double gain[4] = {1.1, 0.9, 1.05, 0.8}, offset[4] = {0.01, -0.02, 0.0, 0.03};
  for (int i = 0; i < n; ++i) {
    // Correlated surface reflectances (a soil-vegetation mixture plus texture).
    const double veg = rng.uniform(), t = rng.normal();
    double xi[4] = {0.05 + 0.05 * (1 - veg) + 0.005 * t,
                    0.08 + 0.04 * (1 - veg) + 0.004 * rng.normal(),
                    0.04 + 0.15 * (1 - veg) + 0.005 * t, 0.2 + 0.25 * veg + 0.01 * rng.normal()};
    const bool ch = i % 20 == 0;  // 5 % changed: vegetation cleared, a bright surface appears
    for (int k = 0; k < 4; ++k) {
      double base = xi[k];
      if (ch) base = (k == 3) ? 0.15 + 0.02 * rng.normal() : 0.25 + 0.02 * rng.normal();
      s.x.push_back(xi[k]);
      s.y.push_back(gain[k] * base + offset[k] + 0.004 * rng.normal());
    }
    s.changed.push_back(ch);
  }
  return s;
}

// The weighted joint covariance of the pair, in chunks of `chunk` observations merged in order.
Covariance pass(const Pair& s, const rasters::MadTransform* t, std::size_t chunk) {
  const std::size_t n = s.changed.size();
  Covariance total(8);
  for (std::size_t c0 = 0; c0 < n; c0 += chunk) {
    Covariance part(8);
    for (std::size_t i = c0; i < std::min(n, c0 + chunk); ++i) {
      double z[8], mad[4], chi2 = 0;
      for (int k = 0; k < 4; ++k) z[k] = s.x[i * 4 + k], z[4 + k] = s.y[i * 4 + k];
      double w = 1;
      if (t) {
        t->apply(z, z + 4, mad, chi2);
        w = t->no_change_probability(chi2);
      }
      part.add(z, w);
    }
    total.merge(part);
  }
  return total;
}

TEST(Irmad, CanonicalCorrelationsEqualADirectComputation) {
  const Pair s = make_pair(20000, 5);
  const Covariance joint = pass(s, nullptr, 999);
  const rasters::MadTransform t = rasters::cca(joint, 4);
  // Direct: singular values of Sxx^-1/2 Sxy Syy^-1/2 with matrix square roots from an
  // eigen-decomposition of the in-memory two-pass covariance.
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < s.changed.size(); ++i) {
    rows.push_back({s.x[i * 4], s.x[i * 4 + 1], s.x[i * 4 + 2], s.x[i * 4 + 3], s.y[i * 4],
                    s.y[i * 4 + 1], s.y[i * 4 + 2], s.y[i * 4 + 3]});
  }
  const Eigen::MatrixXd c = direct_cov(rows, std::vector<double>(rows.size(), 1.0));
  auto inv_sqrt = [](const Eigen::MatrixXd& m) {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(m);
    return es.operatorInverseSqrt();
  };
  const Eigen::MatrixXd k = inv_sqrt(c.topLeftCorner(4, 4)) * c.topRightCorner(4, 4) *
                            inv_sqrt(c.bottomRightCorner(4, 4));
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(k);
  Eigen::VectorXd sv = svd.singularValues();
  std::sort(sv.data(), sv.data() + sv.size());
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(t.rho[i], sv[i], 1e-9) << i;
  // The MAD variates are uncorrelated with variance 2 (1 - rho).
  double sum0 = 0, sum00 = 0, sum01 = 0;
  for (std::size_t i = 0; i < s.changed.size(); ++i) {
    double mad[4], chi2;
    t.apply(&s.x[i * 4], &s.y[i * 4], mad, chi2);
    sum0 += mad[0], sum00 += mad[0] * mad[0], sum01 += mad[0] * mad[1];
  }
  const double n = static_cast<double>(s.changed.size());
  EXPECT_NEAR(sum0 / n, 0.0, 1e-9);
  EXPECT_NEAR(sum00 / n, 2 * (1 - t.rho[0]), 1e-6);
  EXPECT_NEAR(sum01 / n, 0.0, 1e-6);
}

TEST(Irmad, SeparatesPlantedChangesAndIsIndependentOfTheWindowing) {
  const Pair s = make_pair(20000, 6);
  rasters::IrMadResult ref;
  for (std::size_t chunk : {20000u, 4096u, 77u, 7u}) {
    const auto r = rasters::irmad([&](const rasters::MadTransform* t) { return pass(s, t, chunk); },
                                  4, 50, 1e-6);
    EXPECT_TRUE(r.converged);
    if (chunk == 20000u) {
      ref = r;
      continue;
    }
    EXPECT_EQ(r.iterations, ref.iterations) << chunk;
    for (int i = 0; i < 4; ++i)
      EXPECT_NEAR(r.transform.rho[i], ref.transform.rho[i], 1e-9) << chunk;
  }
  // ROC AUC of the no-change probability (low = changed): the probability that a changed pixel
  // scores below an unchanged one.
  std::vector<std::pair<double, bool>> scored;
  for (std::size_t i = 0; i < s.changed.size(); ++i) {
    double mad[4], chi2;
    ref.transform.apply(&s.x[i * 4], &s.y[i * 4], mad, chi2);
    scored.emplace_back(ref.transform.no_change_probability(chi2), s.changed[i]);
  }
  std::sort(scored.begin(), scored.end());
  double pos = 0, neg = 0, auc = 0;
  for (const auto& [p, ch] : scored) {
    if (ch)
      pos += 1;
    else
      auc += pos, neg += 1;
  }
  auc /= pos * neg;
  EXPECT_GE(auc, 0.95);
}

}  // namespace
}  // namespace fw
