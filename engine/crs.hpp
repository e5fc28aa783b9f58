// Coordinate reference systems: a value type over OGRSpatialReference that always uses the
// traditional GIS axis order (x = easting or longitude, y = northing or latitude).
#pragma once

#include <memory>
#include <string>

class OGRSpatialReference;

namespace fw {

class Crs {
 public:
  Crs() = default;  // empty: no CRS

  // "EPSG:32650", a WKT string, a PROJ string, "OGC:CRS84"...; throws fw::Error (input) if unknown.
  static Crs from_user_input(const std::string& text);
  static Crs from_wkt(const std::string& wkt);
  static Crs from_epsg(int code);
  // Copies an OGR spatial reference (may be null: gives an empty Crs).
  static Crs from_ogr(const OGRSpatialReference* srs);

  bool empty() const { return !srs_; }
  std::string wkt() const;        // WKT2_2019; "" when empty
  std::string name() const;       // e.g. "WGS 84 / UTM zone 50N"
  int epsg() const;               // 0 when there is no EPSG code
  std::string authority() const;  // "EPSG:32650", or the name when no code is known
  bool is_geographic() const;
  bool is_projected() const;
  double linear_units_m() const;  // metres per unit of a projected CRS; 1 otherwise
  bool same_as(const Crs& other) const;

  // The underlying object (traditional GIS axis order); null when empty. Do not modify.
  const OGRSpatialReference* ogr() const { return srs_.get(); }

 private:
  explicit Crs(std::shared_ptr<OGRSpatialReference> srs) : srs_(std::move(srs)) {}
  std::shared_ptr<OGRSpatialReference> srs_;
};

// Transforms points between two CRSs (traditional axis order on both sides).
class CoordTransform {
 public:
  CoordTransform(const Crs& from, const Crs& to);
  ~CoordTransform();
  CoordTransform(const CoordTransform&) = delete;
  CoordTransform& operator=(const CoordTransform&) = delete;

  // Transforms in place; throws fw::Error (input) when a point fails.
  void transform(double* x, double* y, std::size_t n) const;
  void transform(double& x, double& y) const { transform(&x, &y, 1); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The bounding box, in `to`, of an extent in `from` (edges densified with `densify` points).
struct Extent;
Extent transform_extent(const Extent& e, const Crs& from, const Crs& to, int densify = 21);

}  // namespace fw
