#include "rasters/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/error.hpp"

namespace fw::rasters {

Histogram::Histogram(double lo, double hi, int bins)
    : lo_(lo), hi_(hi), counts_(static_cast<std::size_t>(std::max(1, bins)), 0) {
  if (!(hi > lo)) throw_internal("histogram range is empty");
}

int Histogram::bin_of(double v) const {
  const double f = (v - lo_) / (hi_ - lo_) * static_cast<double>(counts_.size());
  const auto b = static_cast<int64_t>(std::floor(f));
  return static_cast<int>(std::clamp<int64_t>(b, 0, static_cast<int64_t>(counts_.size()) - 1));
}

void Histogram::add(double v, uint64_t n) {
  if (std::isnan(v)) return;
  counts_[static_cast<std::size_t>(bin_of(v))] += n;
  total_ += n;
}

void Histogram::write(ByteWriter& out) const {
  out.put(lo_);
  out.put(hi_);
  out.put(total_);
  out.put_vector(counts_);
}

Histogram Histogram::read(ByteReader& in) {
  Histogram h;
  h.lo_ = in.get<double>();
  h.hi_ = in.get<double>();
  h.total_ = in.get<uint64_t>();
  h.counts_ = in.get_vector<uint64_t>();
  return h;
}

void Histogram::merge(const Histogram& o) {
  if (counts_.empty()) {
    *this = o;
    return;
  }
  if (o.counts_.size() != counts_.size() || o.lo_ != lo_ || o.hi_ != hi_) {
    throw_internal("merging histograms of different layouts");
  }
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  total_ += o.total_;
}

double Histogram::quantile(double q) const {
  if (total_ == 0) return std::numeric_limits<double>::quiet_NaN();
  const double target = q * static_cast<double>(total_);
  double cum = 0;
  for (int b = 0; b < bins(); ++b) {
    const double c = static_cast<double>(count(b));
    if (cum + c >= target && c > 0) {
      const double frac = std::clamp((target - cum) / c, 0.0, 1.0);
      return lo_ + (b + frac) * width();
    }
    cum += c;
  }
  return hi_;
}

double Histogram::otsu() const {
  // Between-class variance w0 w1 (mu0 - mu1)^2 for every split after bin k, using bin centres.
  const int n = bins();
  double sum_all = 0;
  int populated = 0;
  for (int b = 0; b < n; ++b) {
    sum_all += static_cast<double>(count(b)) * center(b);
    populated += count(b) > 0;
  }
  if (populated < 2) return std::numeric_limits<double>::quiet_NaN();
  const double total = static_cast<double>(total_);
  double w0 = 0, sum0 = 0, best = -1;
  int best_k = -1;
  for (int k = 0; k < n - 1; ++k) {
    w0 += static_cast<double>(count(k));
    sum0 += static_cast<double>(count(k)) * center(k);
    const double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    const double m0 = sum0 / w0, m1 = (sum_all - sum0) / w1;
    const double between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best) best = between, best_k = k;
  }
  return lo_ + (best_k + 1) * width();
}

double Histogram::mad() const {
  const double med = median();
  if (std::isnan(med)) return med;
  // Histogram of |v - median| from the bin centres, at the same bin width.
  Histogram dev(0.0, std::max(hi_ - med, med - lo_) + width(), bins());
  for (int b = 0; b < bins(); ++b) {
    if (count(b)) dev.add(std::abs(center(b) - med), count(b));
  }
  return dev.median();
}

Covariance::Covariance(int dims)
    : mean_(Eigen::VectorXd::Zero(dims)), m2_(Eigen::MatrixXd::Zero(dims, dims)) {}

void Covariance::add(const double* x, double weight) {
  if (weight <= 0) return;
  const auto d = static_cast<std::size_t>(mean_.size());
  // No heap allocation per observation (a small stack buffer for the usual dimensions).
  double small[32];
  std::vector<double> big;
  double* delta = small;
  if (d > 32) big.resize(d), delta = big.data();
  const double w_new = w_ + weight, f = weight / w_new;
  for (std::size_t k = 0; k < d; ++k) {
    delta[k] = x[k] - mean_[static_cast<Eigen::Index>(k)];
    mean_[static_cast<Eigen::Index>(k)] += delta[k] * f;
  }
  // West's weighted update: M2 += w * delta * (x - new_mean)^T.
  for (std::size_t l = 0; l < d; ++l) {
    const double after = weight * (x[l] - mean_[static_cast<Eigen::Index>(l)]);
    for (std::size_t k = 0; k < d; ++k) {
      m2_(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(l)) += delta[k] * after;
    }
  }
  w_ = w_new;
}

void Covariance::write(ByteWriter& out) const {
  out.put(w_);
  out.put_vector(std::vector<double>(mean_.data(), mean_.data() + mean_.size()));
  out.put_vector(std::vector<double>(m2_.data(), m2_.data() + m2_.size()));
}

Covariance Covariance::read(ByteReader& in) {
  Covariance c;
  c.w_ = in.get<double>();
  const auto mean = in.get_vector<double>();
  const auto m2 = in.get_vector<double>();
  const auto d = static_cast<Eigen::Index>(mean.size());
  if (static_cast<Eigen::Index>(m2.size()) != d * d)
    throw Error(ExitCode::kInput, "partial results: a covariance of inconsistent size");
  c.mean_ = Eigen::Map<const Eigen::VectorXd>(mean.data(), d);
  c.m2_ = Eigen::Map<const Eigen::MatrixXd>(m2.data(), d, d);
  return c;
}

void Covariance::merge(const Covariance& o) {
  if (o.w_ <= 0) return;
  if (w_ <= 0) {
    *this = o;
    return;
  }
  const double w = w_ + o.w_;
  const Eigen::VectorXd delta = o.mean_ - mean_;
  m2_ += o.m2_ + delta * delta.transpose() * (w_ * o.w_ / w);
  mean_ += delta * (o.w_ / w);
  w_ = w;
}

Covariance Covariance::from_moments(double weight, Eigen::VectorXd mean, Eigen::MatrixXd m2) {
  Covariance c;
  c.w_ = weight;
  c.mean_ = std::move(mean);
  c.m2_ = std::move(m2);
  return c;
}

Eigen::MatrixXd Covariance::covariance() const {
  if (w_ <= 0) return Eigen::MatrixXd::Constant(mean_.size(), mean_.size(), std::nan(""));
  const Eigen::MatrixXd c = m2_ / w_;
  return 0.5 * (c + c.transpose());  // exactly symmetric
}

namespace {

// Regularised lower incomplete gamma P(a, x) (series) and upper Q(a, x) (continued fraction),
// as in Numerical Recipes, 3rd ed., 6.2.
double gamma_p_series(double a, double x) {
  double sum = 1.0 / a, del = sum, ap = a;
  for (int n = 0; n < 1000; ++n) {
    ap += 1;
    del *= x / ap;
    sum += del;
    if (std::abs(del) < std::abs(sum) * 1e-16) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

double gamma_q_fraction(double a, double x) {
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) < 1e-16) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}

}  // namespace

double chi2_sf(double x, int dof) {
  if (!(x > 0)) return 1.0;
  const double a = 0.5 * dof, z = 0.5 * x;
  if (dof % 2 == 0 && dof <= 40) {
    // Even degrees of freedom: exp(-z) * sum_{i < dof/2} z^i / i!, exactly.
    double term = 1.0, sum = 1.0;
    for (int i = 1; i < dof / 2; ++i) sum += (term *= z / i);
    return std::exp(-z) * sum;
  }
  return z < a + 1 ? 1.0 - gamma_p_series(a, z) : gamma_q_fraction(a, z);
}

double chi2_isf(double p, int dof) {
  if (!(p > 0 && p < 1)) throw_internal("chi2_isf: p must be in (0, 1)");
  double lo = 0, hi = std::max(1.0, 2.0 * dof);
  while (chi2_sf(hi, dof) > p) hi *= 2;
  for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (chi2_sf(mid, dof) > p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace fw::rasters
