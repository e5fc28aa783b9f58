// IR-MAD: iteratively reweighted multivariate alteration detection (Nielsen, 2007, IEEE TIP 16).
// Canonical correlation analysis of two dates' bands, reweighted by the chi-square probability of
// no change, until the canonical correlations change by less than a tolerance. The statistics
// come from a caller-supplied pass (window by window over a raster, or over a sample in memory),
// merged in a fixed order, so the result does not depend on the window size or thread count.
#pragma once

#include <Eigen/Dense>

#include <functional>

#include "rasters/stats.hpp"

namespace fw::rasters {

struct MadTransform {
  int p = 0;             // bands per date
  Eigen::VectorXd rho;   // canonical correlations, ascending: MAD 1 is the most changed
  Eigen::MatrixXd a, b;  // columns: the canonical vectors of date 1 and date 2
  Eigen::VectorXd mean_x, mean_y;
  Eigen::VectorXd sigma;  // standard deviation of each MAD variate: sqrt(2 (1 - rho))

  // MAD variates of one pixel (p values each) and their chi-square statistic.
  void apply(const double* x, const double* y, double* mad, double& chi2) const;
  // Probability of no change: the chi-square upper tail with p degrees of freedom.
  double no_change_probability(double chi2) const { return chi2_sf(chi2, p); }
};

// One canonical correlation analysis of the joint (2p-dimensional) weighted covariance of
// [x; y]. Throws fw::Error (no_data) when the covariance is singular (constant bands, no pixels).
MadTransform cca(const Covariance& joint, int p);

struct IrMadResult {
  MadTransform transform;
  int iterations = 0;
  bool converged = false;
};

// A pass: the weighted joint covariance of all observations, each weighted by the no-change
// probability under `previous` (weight 1 when `previous` is null).
using CovariancePass = std::function<Covariance(const MadTransform* previous)>;

IrMadResult irmad(const CovariancePass& pass, int p, int max_iterations = 50, double tol = 1e-6);

}  // namespace fw::rasters
