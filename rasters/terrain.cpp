#include "rasters/terrain.hpp"

#include <ogr_spatialref.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numbers>
#include <vector>

#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/log.hpp"
#include "rasters/cog.hpp"
#include "rasters/imagery.hpp"

namespace fw::rasters {
namespace {

constexpr float kNodata = -9999.0f;
constexpr double kRadToDeg = 180.0 / std::numbers::pi;

// Bytes per pixel of a window in flight: the DEM with its halo (Float32), the slope (Float32),
// its encoded tile and the encoder's scratch.
constexpr double kBytesPerPixel = 4.0 + 4.0 + 8.0;

// Horizontal pixel sizes in metres, per row of the analysis grid. On a projected (or local) grid
// they are constant: the pixel size times the CRS's metres per unit. On a geographic grid they
// are the lengths, on the CRS's ellipsoid, of the pixel's arc of parallel (N cos(lat) dlon) and
// arc of meridian (M dlat) at the row's centre latitude.
class PixelSpacing {
 public:
  explicit PixelSpacing(const Grid& grid) {
    const GeoTransform& gt = grid.transform();
    if (!gt.north_up()) {
      throw_usage("slope needs a north-up analysis grid (this one is rotated): " + grid.describe());
    }
    const double res_x = std::abs(gt.c[1]), res_y = std::abs(gt.c[5]);
    const OGRSpatialReference* srs = grid.crs().ogr();
    geographic_ = grid.crs().is_geographic() && srs;
    if (!geographic_) {
      const double unit = grid.crs().linear_units_m();
      dx_ = res_x * unit;
      dy_ = res_y * unit;
      return;
    }
    double rad = srs->GetAngularUnits(nullptr);  // radians per CRS unit (a degree's, mostly)
    if (!(rad > 0)) rad = std::numbers::pi / 180.0;
    OGRErr err = OGRERR_NONE;
    a_ = srs->GetSemiMajor(&err);
    if (err != OGRERR_NONE || !(a_ > 0)) a_ = SRS_WGS84_SEMIMAJOR;
    const double inv_f = srs->GetInvFlattening(&err);
    const double f = err == OGRERR_NONE && inv_f > 0 ? 1.0 / inv_f : 0.0;  // 0: a sphere
    e2_ = f * (2.0 - f);
    dlon_ = res_x * rad;
    dlat_ = res_y * rad;
    lat0_ = gt.c[3] * rad;  // the origin's latitude (the top edge when north-up)
    lat_step_ = gt.c[5] * rad;
  }

  // dx, dy (metres) of the pixels of `row`.
  void of_row(int64_t row, double& dx, double& dy) const {
    if (!geographic_) {
      dx = dx_, dy = dy_;
      return;
    }
    const double lat = std::clamp(lat0_ + (static_cast<double>(row) + 0.5) * lat_step_,
                                  -std::numbers::pi / 2, std::numbers::pi / 2);
    const double s = std::sin(lat);
    const double w = 1.0 - e2_ * s * s;
    const double n = a_ / std::sqrt(w);                      // prime vertical radius of curvature
    const double m = a_ * (1.0 - e2_) / (w * std::sqrt(w));  // meridional radius of curvature
    dx = n * std::cos(lat) * dlon_;
    dy = m * dlat_;
  }

 private:
  bool geographic_ = false;
  double dx_ = 0, dy_ = 0;                       // projected
  double a_ = 0, e2_ = 0, dlon_ = 0, dlat_ = 0;  // geographic, radians
  double lat0_ = 0, lat_step_ = 0;
};

// Valid pixel count, range and sum of one window (or of all merged so far).
struct SlopeSummary {
  int64_t valid = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;

  void add(double v) {
    ++valid;
    min = std::min(min, v);
    max = std::max(max, v);
    sum += v;
  }
  void merge(const SlopeSummary& o) {
    valid += o.valid;
    min = std::min(min, o.min);
    max = std::max(max, o.max);
    sum += o.sum;
  }
};

// Horn's slope (degrees) of the pixels of `win`, from `dem`: the DEM (already in metres) over
// `halo`, which is `win` grown by one pixel and clipped to the grid (grid_w x grid_h). Missing
// neighbours at the grid's edges take the nearest inside cell; NaN neighbours take the centre's
// value; a NaN centre gives kNodata.
void horn_slope(const float* dem, const Window& halo, const Window& win, int64_t grid_w,
                int64_t grid_h, double z_factor, const PixelSpacing& spacing, float* out,
                SlopeSummary& summary) {
  auto at = [&](int64_t col, int64_t row) {
    return dem[static_cast<std::size_t>((row - halo.y) * halo.w + (col - halo.x))];
  };
  for (int64_t r = 0; r < win.h; ++r) {
    const int64_t row = win.y + r;
    const int64_t north = std::max<int64_t>(row - 1, 0);
    const int64_t south = std::min(row + 1, grid_h - 1);
    double dx, dy;
    spacing.of_row(row, dx, dy);
    const double kx = z_factor / (8.0 * dx), ky = z_factor / (8.0 * dy);
    float* dst = out + r * win.w;
    for (int64_t c = 0; c < win.w; ++c) {
      const int64_t col = win.x + c;
      const float e = at(col, row);
      if (std::isnan(e)) {
        dst[c] = kNodata;
        continue;
      }
      const int64_t west = std::max<int64_t>(col - 1, 0);
      const int64_t east = std::min(col + 1, grid_w - 1);
      auto z = [&](int64_t cc, int64_t rr) -> double {
        const float v = at(cc, rr);
        return std::isnan(v) ? e : v;
      };
      // a b c
      // d e f
      // g h i
      const double a = z(west, north), b = z(col, north), cn = z(east, north);
      const double d = z(west, row), f = z(east, row);
      const double g = z(west, south), h = z(col, south), i = z(east, south);
      const double dzdx = ((cn + 2.0 * f + i) - (a + 2.0 * d + g)) * kx;
      const double dzdy = ((g + 2.0 * h + i) - (a + 2.0 * b + cn)) * ky;
      const double slope = std::atan(std::sqrt(dzdx * dzdx + dzdy * dzdy)) * kRadToDeg;
      if (!std::isfinite(slope)) {
        dst[c] = kNodata;
        continue;
      }
      dst[c] = static_cast<float>(slope);
      summary.add(dst[c]);
    }
  }
}

}  // namespace

SlopeResult compute_slope(const SlopeOptions& options, const Grid& analysis,
                          const SchedulerOptions& so) {
  if (options.dem.empty()) throw_usage("no DEM given for the slope");
  if (options.out.empty()) throw_usage("no output file for the slope", {.file = options.dem});
  if (!std::isfinite(options.z_factor) || options.z_factor <= 0) {
    throw_usage("the DEM's z factor must be a positive number (got " +
                    std::to_string(options.z_factor) + ")",
                {.file = options.dem});
  }
  const PixelSpacing spacing(analysis);
  const BandInfo band = external_band(options.dem, options.band, analysis, "DEM");
  BandReader reader(band, analysis, Resampling::kBilinear);
  log::debug("slope", {{"dem", options.dem},
                       {"mode", reader.warped() ? "warped" : "direct"},
                       {"grid", analysis.describe()}});

  CogOptions co;
  co.type = GDT_Float32;
  co.nodata = kNodata;
  co.descriptions = {"slope"};
  co.metadata = {{"UNITS", "degrees"}, {"SOURCE", options.dem}, {"METHOD", "Horn 1981"}};
  co.threads = so.threads;
  CogWriter writer(options.out, analysis, 1, co);

  SchedulerOptions sopt = so;
  if (sopt.label.empty() || sopt.label == "working") sopt.label = "slope";
  BlockScheduler sched(sopt);
  // Windows on the output's tiles; the halo is read with each window, so the window layout
  // (which depends on the memory budget) never changes a pixel's value.
  const int64_t width = analysis.width(), height = analysis.height();
  const WindowPlan plan =
      sched.plan(width, height, CogWriter::kTile, CogWriter::kTile, kBytesPerPixel);
  using Out = ChunksWith<SlopeSummary>;  // one chunk
  SlopeSummary total;
  sched.run<Out>(
      plan,
      [&](const Window& w, std::size_t) {
        const Window halo =
            Window{w.x - 1, w.y - 1, w.w + 2, w.h + 2}.intersection(analysis.full_window());
        std::vector<float> dem(static_cast<std::size_t>(halo.pixels()));
        reader.read_reflectance(halo, dem.data());
        std::vector<float> slope(static_cast<std::size_t>(w.pixels()));
        Out o;
        horn_slope(dem.data(), halo, w, width, height, options.z_factor, spacing, slope.data(),
                   o.summary);
        o.chunks = {writer.encode(1, w, slope.data())};
        return o;
      },
      [&](const Window&, std::size_t, Out& o) {
        writer.add(o.chunks[0]);
        total.merge(o.summary);
      });
  if (total.valid == 0) {
    throw Error(ExitCode::kNoData,
                "no valid pixel: the DEM is nodata everywhere on the analysis grid (" +
                    analysis.describe() + ")",
                {.file = options.dem});
  }
  writer.commit();
  SlopeResult result;
  result.file = options.out;
  result.valid = total.valid;
  result.min = total.min;
  result.max = total.max;
  result.mean = total.sum / static_cast<double>(total.valid);
  return result;
}

}  // namespace fw::rasters
