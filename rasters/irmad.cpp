#include "rasters/irmad.hpp"

#include <Eigen/Eigenvalues>

#include <cmath>

#include "engine/error.hpp"

namespace fw::rasters {

void MadTransform::apply(const double* x, const double* y, double* mad, double& chi2) const {
  chi2 = 0;
  for (int i = 0; i < p; ++i) {
    double m = 0;
    for (int k = 0; k < p; ++k) m += a(k, i) * (x[k] - mean_x[k]) - b(k, i) * (y[k] - mean_y[k]);
    mad[i] = m;
    chi2 += (m / sigma[i]) * (m / sigma[i]);
  }
}

MadTransform cca(const Covariance& joint, int p) {
  if (joint.dims() != 2 * p) throw_internal("cca: dimension mismatch");
  if (!(joint.weight() > 0))
    throw Error(ExitCode::kNoData, "no valid pixels for the change statistics");
  const Eigen::MatrixXd s = joint.covariance();
  const Eigen::MatrixXd sxx = s.topLeftCorner(p, p), syy = s.bottomRightCorner(p, p);
  const Eigen::MatrixXd sxy = s.topRightCorner(p, p);
  Eigen::LLT<Eigen::MatrixXd> lyy(syy), lxx(sxx);
  if (lyy.info() != Eigen::Success || lxx.info() != Eigen::Success) {
    throw Error(ExitCode::kNoData,
                "the bands' covariance is singular (constant bands or too few valid pixels)");
  }
  const Eigen::MatrixXd syy_inv_syx = lyy.solve(sxy.transpose());
  Eigen::MatrixXd c = sxy * syy_inv_syx;
  c = 0.5 * (c + c.transpose());
  // C a = rho^2 Sxx a, eigenvectors normalised so that a' Sxx a = 1; ascending eigenvalues.
  Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> ges(c, sxx);
  if (ges.info() != Eigen::Success) throw Error(ExitCode::kNoData, "canonical correlation failed");
  MadTransform t;
  t.p = p;
  t.mean_x = joint.mean().head(p);
  t.mean_y = joint.mean().tail(p);
  t.a = ges.eigenvectors();
  t.rho = ges.eigenvalues().cwiseMax(0.0).cwiseSqrt().cwiseMin(1.0);
  t.b.resize(p, p);
  t.sigma.resize(p);
  for (int i = 0; i < p; ++i) {
    const double r = std::max(t.rho[i], 1e-12);
    t.b.col(i) = syy_inv_syx * t.a.col(i) / r;
    // Orient each pair so that date 1's variate correlates positively with the sum of its bands.
    const double sx = (sxx * t.a.col(i)).sum();
    if (sx < 0) t.a.col(i) *= -1, t.b.col(i) *= -1;
    t.sigma[i] = std::sqrt(std::max(2.0 * (1.0 - t.rho[i]), 1e-12));
  }
  return t;
}

IrMadResult irmad(const CovariancePass& pass, int p, int max_iterations, double tol) {
  IrMadResult r;
  r.transform = cca(pass(nullptr), p);
  r.iterations = 1;
  for (int it = 1; it < max_iterations; ++it) {
    MadTransform next = cca(pass(&r.transform), p);
    const double change = (next.rho - r.transform.rho).cwiseAbs().maxCoeff();
    r.transform = std::move(next);
    r.iterations = it + 1;
    if (change < tol) {
      r.converged = true;
      break;
    }
  }
  return r;
}

}  // namespace fw::rasters
