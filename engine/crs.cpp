#include "engine/crs.hpp"

#include <ogr_spatialref.h>

#include <algorithm>
#include <vector>

#include "engine/error.hpp"
#include "engine/grid.hpp"

namespace fw {
namespace {

std::shared_ptr<OGRSpatialReference> make_srs() {
  auto srs = std::make_shared<OGRSpatialReference>();
  srs->SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  return srs;
}

}  // namespace

Crs Crs::from_user_input(const std::string& text) {
  auto srs = make_srs();
  if (srs->SetFromUserInput(text.c_str()) != OGRERR_NONE) {
    throw_input("unknown coordinate reference system '" + text + "'" +
                (last_gdal_error().empty() ? "" : ": " + last_gdal_error()));
  }
  srs->SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  return Crs(srs);
}

Crs Crs::from_wkt(const std::string& wkt) {
  if (wkt.empty()) return Crs();
  auto srs = make_srs();
  if (srs->importFromWkt(wkt.c_str()) != OGRERR_NONE) {
    throw_input("invalid WKT coordinate reference system");
  }
  srs->SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  return Crs(srs);
}

Crs Crs::from_epsg(int code) {
  auto srs = make_srs();
  if (srs->importFromEPSG(code) != OGRERR_NONE) {
    throw_input("unknown EPSG code " + std::to_string(code));
  }
  srs->SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  return Crs(srs);
}

Crs Crs::from_ogr(const OGRSpatialReference* srs) {
  if (!srs) return Crs();
  auto copy = std::shared_ptr<OGRSpatialReference>(srs->Clone());
  copy->SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  return Crs(copy);
}

std::string Crs::wkt() const {
  if (!srs_) return {};
  char* out = nullptr;
  const char* opts[] = {"FORMAT=WKT2_2019", nullptr};
  srs_->exportToWkt(&out, opts);
  std::string s = out ? out : "";
  CPLFree(out);
  return s;
}

std::string Crs::name() const {
  if (!srs_) return {};
  const char* n = srs_->GetName();
  return n ? n : "";
}

int Crs::epsg() const {
  if (!srs_) return 0;
  const char* auth = srs_->GetAuthorityName(nullptr);
  const char* code = srs_->GetAuthorityCode(nullptr);
  if (auth && code && std::string(auth) == "EPSG") return std::atoi(code);
  // Try to identify, on a copy (AutoIdentifyEPSG modifies the object).
  OGRSpatialReference copy(*srs_);
  if (copy.AutoIdentifyEPSG() == OGRERR_NONE) {
    auth = copy.GetAuthorityName(nullptr);
    code = copy.GetAuthorityCode(nullptr);
    if (auth && code && std::string(auth) == "EPSG") return std::atoi(code);
  }
  return 0;
}

std::string Crs::authority() const {
  const int code = epsg();
  return code ? "EPSG:" + std::to_string(code) : name();
}

bool Crs::is_geographic() const {
  return srs_ && srs_->IsGeographic();
}
bool Crs::is_projected() const {
  return srs_ && srs_->IsProjected();
}

double Crs::linear_units_m() const {
  if (!srs_ || !srs_->IsProjected()) return 1.0;
  return srs_->GetLinearUnits(nullptr);
}

bool Crs::same_as(const Crs& other) const {
  if (empty() || other.empty()) return empty() == other.empty();
  const char* opts[] = {"IGNORE_DATA_AXIS_TO_SRS_AXIS_MAPPING=YES", "CRITERION=EQUIVALENT",
                        nullptr};
  return srs_->IsSame(other.srs_.get(), opts);
}

struct CoordTransform::Impl {
  std::unique_ptr<OGRCoordinateTransformation> ct;
};

CoordTransform::CoordTransform(const Crs& from, const Crs& to) : impl_(std::make_unique<Impl>()) {
  if (from.empty() || to.empty()) throw_input("cannot transform coordinates without a CRS");
  impl_->ct.reset(OGRCreateCoordinateTransformation(from.ogr(), to.ogr()));
  if (!impl_->ct) {
    throw_input("no coordinate transformation from " + from.authority() + " to " + to.authority() +
                ": " + last_gdal_error());
  }
}

CoordTransform::~CoordTransform() = default;

void CoordTransform::transform(double* x, double* y, std::size_t n) const {
  std::vector<int> ok(n, 0);
  if (!impl_->ct->Transform(static_cast<int>(n), x, y, nullptr, ok.data())) {
    throw_input("coordinate transformation failed: " + last_gdal_error());
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!ok[i]) throw_input("coordinate transformation failed for a point");
  }
}

Extent transform_extent(const Extent& e, const Crs& from, const Crs& to, int densify) {
  if (from.same_as(to)) return e;
  std::vector<double> xs, ys;
  for (int i = 0; i <= densify; ++i) {
    const double t = static_cast<double>(i) / densify;
    const double x = e.xmin + t * e.width(), y = e.ymin + t * e.height();
    xs.insert(xs.end(), {x, x, e.xmin, e.xmax});
    ys.insert(ys.end(), {e.ymin, e.ymax, y, y});
  }
  CoordTransform ct(from, to);
  ct.transform(xs.data(), ys.data(), xs.size());
  Extent out{xs[0], ys[0], xs[0], ys[0]};
  for (std::size_t i = 0; i < xs.size(); ++i) {
    out.xmin = std::min(out.xmin, xs[i]), out.xmax = std::max(out.xmax, xs[i]);
    out.ymin = std::min(out.ymin, ys[i]), out.ymax = std::max(out.ymax, ys[i]);
  }
  return out;
}

}  // namespace fw
