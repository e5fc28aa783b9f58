// Mergeable statistics for scene-wide reductions: fixed-range histograms (Otsu thresholds,
// quantiles, median and MAD), and weighted means and covariances (Chan et al.'s parallel
// update), so that per-window partials merged in window order give the same bits for any
// thread count and the same values (to rounding) as an in-memory computation.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <vector>

#include "engine/partials.hpp"

namespace fw::rasters {

// A histogram of `bins` equal bins over [lo, hi); values outside are clamped to the end bins.
class Histogram {
 public:
  Histogram() = default;
  Histogram(double lo, double hi, int bins);

  void add(double v, uint64_t n = 1);
  void merge(const Histogram& other);

  int bins() const { return static_cast<int>(counts_.size()); }
  double lo() const { return lo_; }
  double hi() const { return hi_; }
  double width() const { return (hi_ - lo_) / static_cast<double>(counts_.size()); }
  double center(int bin) const { return lo_ + (bin + 0.5) * width(); }
  uint64_t count(int bin) const { return counts_[static_cast<std::size_t>(bin)]; }
  uint64_t total() const { return total_; }
  int bin_of(double v) const;

  // The value below which a fraction q of the values lie (linear within the bin).
  double quantile(double q) const;
  // Otsu's threshold: the bin edge maximising the between-class variance; returns the upper
  // edge of the last bin of the lower class. NaN when fewer than two bins are populated.
  double otsu() const;
  // Median and median absolute deviation (MAD, unscaled), to the bin width.
  double median() const { return quantile(0.5); }
  double mad() const;

  // Exact round trip, for partial results stored by shards (engine/partials.hpp).
  void write(ByteWriter& out) const;
  static Histogram read(ByteReader& in);

 private:
  double lo_ = 0, hi_ = 1;
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
};

// Weighted mean and covariance of d-dimensional observations; mergeable.
class Covariance {
 public:
  Covariance() = default;
  explicit Covariance(int dims);

  void add(const double* x, double weight = 1.0);
  void merge(const Covariance& other);
  // From a total weight, a weighted mean and the weighted sum of outer products of deviations.
  static Covariance from_moments(double weight, Eigen::VectorXd mean, Eigen::MatrixXd m2);

  int dims() const { return static_cast<int>(mean_.size()); }
  double weight() const { return w_; }
  const Eigen::VectorXd& mean() const { return mean_; }
  // The weighted covariance (divided by the sum of weights).
  Eigen::MatrixXd covariance() const;

  // Exact round trip, for partial results stored by shards (engine/partials.hpp).
  void write(ByteWriter& out) const;
  static Covariance read(ByteReader& in);

 private:
  double w_ = 0;
  Eigen::VectorXd mean_;
  Eigen::MatrixXd m2_;  // sum of weighted outer products of deviations
};

// The chi-square distribution's upper tail: P(X > x) for `dof` degrees of freedom.
double chi2_sf(double x, int dof);
// Its inverse: the x with chi2_sf(x, dof) = p, for 0 < p < 1 (bisection to 1e-12 relative).
double chi2_isf(double p, int dof);

}  // namespace fw::rasters
