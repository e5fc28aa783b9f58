// Vector outputs written atomically: GeoPackage (any number of layers) and RFC 7946 GeoJSON.
#pragma once

#include <string>
#include <vector>

#include "engine/atomic_file.hpp"
#include "engine/crs.hpp"
#include "engine/gdal_handles.hpp"

namespace fw {

struct FieldDef {
  std::string name;
  OGRFieldType type = OFTString;
};

// A CSV field, quoted as RFC 4180 asks when it holds a comma, a quote or a line break.
std::string csv_quote(const std::string& value);

// Sets a feature's fields from text values, each converted to its field's type (fields[k] is the
// layer's field k). Empty values stay null, except text fields when `empty_text` is true (written
// as "", so that GeoJSON keeps the column).
void set_fields(OGRFeature& feature, const std::vector<FieldDef>& fields,
                const std::vector<std::string>& values, bool empty_text = false);

class VectorWriter {
 public:
  // driver: "GPKG", "GeoJSON" (written as RFC 7946: WGS 84, right-hand rule), "CSV", "FlatGeobuf".
  VectorWriter(std::string path, std::string driver_name);
  ~VectorWriter();

  // Adds a layer; the layer's CRS is `crs` (GeoJSON: input geometries in `crs` are transformed to
  // WGS 84 by the driver).
  OGRLayer& add_layer(const std::string& name, const Crs& crs, OGRwkbGeometryType type,
                      const std::vector<FieldDef>& fields, const GdalOptions& layer_options = {});
  // Creates the feature; throws fw::Error (output) on failure.
  void write(OGRLayer& layer, OGRFeature& feature);
  // Flushes, closes and moves the file into place.
  void commit();

  const std::string& path() const { return path_; }

 private:
  void end_transaction();
  std::string path_, driver_;
  AtomicPath atomic_;
  DatasetPtr ds_;
  bool in_transaction_ = false;
  int64_t pending_ = 0;
};

}  // namespace fw
