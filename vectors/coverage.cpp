#include "vectors/coverage.hpp"

#include <ogr_geometry.h>

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"

namespace fw::vectors {
namespace {

constexpr double kSnap = 1e-10;

// R(v) = integral over [0, v] of clamp(s, 0, 1) ds.
inline double ramp_integral(double v) {
  if (v <= 0) return 0;
  if (v < 1) return 0.5 * v * v;
  return v - 0.5;
}

double signed_area(const std::vector<std::array<double, 2>>& pts) {
  double a = 0;
  const std::size_t n = pts.size();
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = pts[i];
    const auto& q = pts[(i + 1) % n];
    a += p[0] * q[1] - q[0] * p[1];
  }
  return 0.5 * a;
}

// Deposits one edge (window-relative coordinates) into `acc` (rows of `stride` values): in
// each row strip it crosses, the piece of the edge adds, to every cell c of the row, the signed
// area g(c) of the strip between the edge and the cell's right side, as differences
// g(c) - g(c - 1) so that a running sum along the row restores g. With x uniform along the
// piece (x is linear in y), g(c) = d (R(c + 1 - lo) - R(c + 1 - hi)) / (hi - lo), d the piece's
// signed height. Cells left of the window collect into column 0; right of it, nothing is needed.
void deposit_edge(double x0, double y0, double x1, double y1, double sign, int64_t w, int64_t h,
                  std::size_t stride, double* acc) {
  if (y0 == y1) return;
  double dir = sign;
  if (y0 > y1) std::swap(x0, x1), std::swap(y0, y1), dir = -dir;
  const double ya = std::max(y0, 0.0), yb = std::min(y1, static_cast<double>(h));
  if (ya >= yb) return;
  const double dxdy = (x1 - x0) / (y1 - y0);
  const auto r0 = static_cast<int64_t>(std::floor(ya));
  const int64_t r1 = std::min(h, static_cast<int64_t>(std::ceil(yb)));
  for (int64_t r = r0; r < r1; ++r) {
    const double top = std::max(static_cast<double>(r), ya);
    const double bottom = std::min(static_cast<double>(r + 1), yb);
    if (bottom <= top) continue;
    const double d = dir * (bottom - top);
    const double xa = x0 + (top - y0) * dxdy, xb = x0 + (bottom - y0) * dxdy;
    const double lo = std::min(xa, xb), hi = std::max(xa, xb);
    double* row = acc + static_cast<std::size_t>(r) * stride;
    if (hi <= 0) {  // wholly left of the window: every cell of the row is right of it
      row[0] += d;
      continue;
    }
    if (lo >= static_cast<double>(w)) continue;
    // Local origin at floor(lo) keeps the ramp arguments small (no cancellation).
    const double base = std::floor(lo);
    const double l = lo - base, u = hi - base, span = u - l;
    auto g = [&](int64_t c) {  // c relative to base
      const double t = static_cast<double>(c) + 1.0;
      if (span <= 1e-12) return d * std::clamp(t - l, 0.0, 1.0);
      return d * (ramp_integral(t - l) - ramp_integral(t - u)) / span;
    };
    const auto cb = static_cast<int64_t>(base);
    const int64_t c_last = std::min(w - 1, cb + static_cast<int64_t>(std::floor(u)) + 1);
    // Column max(cb, 0) collects everything up to it.
    const int64_t c_first = std::max<int64_t>(cb, 0);
    double prev = g(c_first - cb);
    row[c_first] += prev;
    for (int64_t c = c_first + 1; c <= c_last; ++c) {
      const double cur = g(c - cb);
      row[c] += cur - prev;
      prev = cur;
    }
    // Columns after c_last: g stays at d, nothing more to deposit (c_last reaches past hi, or
    // the window ends).
  }
}

}  // namespace

CoverageMode parse_coverage_mode(const std::string& s) {
  if (s == "exact") return CoverageMode::kExact;
  if (s == "center" || s == "centre") return CoverageMode::kCenter;
  if (s == "all_touched" || s == "all-touched") return CoverageMode::kAllTouched;
  throw_usage("unknown coverage mode '" + s + "' (exact, center or all_touched)");
}

const char* coverage_mode_name(CoverageMode m) {
  switch (m) {
    case CoverageMode::kExact:
      return "exact";
    case CoverageMode::kCenter:
      return "center";
    case CoverageMode::kAllTouched:
      return "all_touched";
  }
  return "?";
}

PixelPolygon PixelPolygon::from_ogr(const OGRGeometry& g, const GeoTransform& gt) {
  PixelPolygon p;
  auto add_polygon = [&](const OGRPolygon& poly) {
    for (int k = 0; k <= poly.getNumInteriorRings(); ++k) {
      const OGRLinearRing* ring = k == 0 ? poly.getExteriorRing() : poly.getInteriorRing(k - 1);
      if (!ring || ring->getNumPoints() < 3) continue;
      Ring r;
      r.hole = k > 0;
      const int n = ring->getNumPoints();
      r.pts.reserve(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) {
        double col, row;
        gt.world_to_pixel(ring->getX(i), ring->getY(i), col, row);
        r.pts.push_back({col, row});
      }
      if (r.pts.size() > 1 && r.pts.front() == r.pts.back()) r.pts.pop_back();  // implicit close
      if (r.pts.size() >= 3) p.rings.push_back(std::move(r));
    }
  };
  const OGRwkbGeometryType t = wkbFlatten(g.getGeometryType());
  if (t == wkbPolygon) {
    add_polygon(*g.toPolygon());
  } else if (t == wkbMultiPolygon) {
    for (const OGRPolygon* part : *g.toMultiPolygon()) add_polygon(*part);
  } else if (t == wkbGeometryCollection) {
    for (const OGRGeometry* part : *g.toGeometryCollection()) {
      const OGRwkbGeometryType pt = wkbFlatten(part->getGeometryType());
      if (pt == wkbPolygon) add_polygon(*part->toPolygon());
      if (pt == wkbMultiPolygon) {
        for (const OGRPolygon* q : *part->toMultiPolygon()) add_polygon(*q);
      }
    }
  }
  bool first = true;
  for (const Ring& r : p.rings) {
    for (const auto& q : r.pts) {
      if (first) {
        p.xmin = p.xmax = q[0], p.ymin = p.ymax = q[1], first = false;
      } else {
        p.xmin = std::min(p.xmin, q[0]), p.xmax = std::max(p.xmax, q[0]);
        p.ymin = std::min(p.ymin, q[1]), p.ymax = std::max(p.ymax, q[1]);
      }
    }
  }
  return p;
}

double PixelPolygon::area() const {
  double a = 0;
  for (const Ring& r : rings) a += (r.hole ? -1 : 1) * std::abs(signed_area(r.pts));
  return a;
}

Window PixelPolygon::window(const Window& clip) const {
  if (empty()) return {};
  const auto x0 = static_cast<int64_t>(std::floor(xmin)),
             y0 = static_cast<int64_t>(std::floor(ymin));
  const auto x1 = static_cast<int64_t>(std::floor(xmax)) + 1;
  const auto y1 = static_cast<int64_t>(std::floor(ymax)) + 1;
  return Window{x0, y0, x1 - x0, y1 - y0}.intersection(clip);
}

void coverage(const PixelPolygon& p, const Window& win, CoverageMode mode, std::vector<double>& out,
              std::vector<double>& scratch) {
  const std::size_t n = static_cast<std::size_t>(win.pixels());
  out.assign(n, 0.0);
  if (n == 0 || p.empty()) return;
  const double ox = static_cast<double>(win.x), oy = static_cast<double>(win.y);
  if (mode == CoverageMode::kCenter) {
    // Even-odd crossings of each row's centre line, half-open in y (a vertex on the line counts
    // once); a cell counts when its centre lies in [x_in, x_out).
    std::vector<double>& xs = scratch;
    for (int64_t r = 0; r < win.h; ++r) {
      const double yc = oy + static_cast<double>(r) + 0.5;
      if (yc < p.ymin || yc > p.ymax) continue;
      xs.clear();
      for (const auto& ring : p.rings) {
        const std::size_t m = ring.pts.size();
        for (std::size_t i = 0; i < m; ++i) {
          const auto& a = ring.pts[i];
          const auto& b = ring.pts[(i + 1) % m];
          if ((a[1] <= yc) != (b[1] <= yc)) {
            xs.push_back(a[0] + (yc - a[1]) * (b[0] - a[0]) / (b[1] - a[1]) - ox);
          }
        }
      }
      std::sort(xs.begin(), xs.end());
      double* row = out.data() + static_cast<std::size_t>(r * win.w);
      for (std::size_t k = 0; k + 1 < xs.size(); k += 2) {
        // Centres c + 0.5 with xs[k] <= c + 0.5 < xs[k + 1].
        const auto c0 = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(xs[k] - 0.5)));
        const auto c1 = std::min<int64_t>(win.w, static_cast<int64_t>(std::ceil(xs[k + 1] - 0.5)));
        for (int64_t c = c0; c < c1; ++c) row[c] = 1.0;
      }
    }
    return;
  }
  // Exact: accumulate every ring's edges, exterior rings adding and holes subtracting whatever
  // their orientation, then a running sum along each row.
  const std::size_t stride = static_cast<std::size_t>(win.w) + 1;
  scratch.assign(stride * static_cast<std::size_t>(win.h), 0.0);
  for (const auto& ring : p.rings) {
    // In y-down pixel coordinates a ring with a negative shoelace area runs down its left side:
    // its interior accumulates +1.
    const double a = signed_area(ring.pts);
    if (a == 0) continue;
    const double sign = (ring.hole ? -1.0 : 1.0) * (a < 0 ? 1.0 : -1.0);
    const std::size_t m = ring.pts.size();
    for (std::size_t i = 0; i < m; ++i) {
      const auto& s = ring.pts[i];
      const auto& t = ring.pts[(i + 1) % m];
      deposit_edge(s[0] - ox, s[1] - oy, t[0] - ox, t[1] - oy, sign, win.w, win.h, stride,
                   scratch.data());
    }
  }
  for (int64_t r = 0; r < win.h; ++r) {
    const double* acc = scratch.data() + static_cast<std::size_t>(r) * stride;
    double* row = out.data() + static_cast<std::size_t>(r * win.w);
    double sum = 0;
    for (int64_t c = 0; c < win.w; ++c) {
      sum += acc[c];
      // Deposits that cancel leave rounding noise (about 1e-16): snap it, so that a cell the
      // polygon misses is exactly 0 whatever window it was computed in.
      row[c] = sum < kSnap ? 0.0 : sum > 1.0 - kSnap ? 1.0 : sum;
    }
  }
  if (mode == CoverageMode::kAllTouched) {
    // Touched: any interior overlap, or the boundary passing through the cell (a boundary that
    // only grazes a cell gives it a zero area but touches it).
    for (double& v : out) v = v > 0 ? 1.0 : 0.0;
    for (const auto& ring : p.rings) {
      const std::size_t m = ring.pts.size();
      for (std::size_t i = 0; i < m; ++i) {
        const auto& s = ring.pts[i];
        const auto& t = ring.pts[(i + 1) % m];
        // Walk the segment through the cells it crosses (sampled at every cell-boundary
        // crossing; each piece between crossings lies in one cell).
        std::vector<double> ts = {0.0, 1.0};
        const double dx = t[0] - s[0], dy = t[1] - s[1];
        for (double gx = std::ceil(std::min(s[0], t[0])); gx <= std::max(s[0], t[0]); gx += 1) {
          if (dx != 0) ts.push_back((gx - s[0]) / dx);
        }
        for (double gy = std::ceil(std::min(s[1], t[1])); gy <= std::max(s[1], t[1]); gy += 1) {
          if (dy != 0) ts.push_back((gy - s[1]) / dy);
        }
        std::sort(ts.begin(), ts.end());
        for (std::size_t k = 0; k + 1 < ts.size(); ++k) {
          const double tm = 0.5 * (ts[k] + ts[k + 1]);
          if (ts[k + 1] - ts[k] <= 1e-12) continue;
          const auto c = static_cast<int64_t>(std::floor(s[0] + tm * dx - ox));
          const auto r = static_cast<int64_t>(std::floor(s[1] + tm * dy - oy));
          if (c >= 0 && c < win.w && r >= 0 && r < win.h)
            out[static_cast<std::size_t>(r * win.w + c)] = 1.0;
        }
      }
    }
  }
}

}  // namespace fw::vectors
