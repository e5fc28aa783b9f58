// Parcel and zone ingestion: any OGR vector (GeoPackage, Shapefile with its .cpg, GBK/GB18030
// shapefiles included, GeoJSON, FlatGeobuf), a chosen or the first non-empty polygon layer, an id
// field, attributes passed through, permanent basic farmland from a land-class field, geometries
// transformed to the analysis CRS with PROJ and repaired with GEOS MakeValid, and a report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/crs.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/grid.hpp"
#include "vectors/vector_writer.hpp"

namespace fw::vectors {

struct ParcelOptions {
  std::string file;
  std::string layer;                   // "" = the first non-empty polygon layer
  std::string id_field = "parcel_id";  // the FID when this default field is absent
  bool unique_ids = false;           // make duplicate ids unique (id-2, id-3...) instead of failing
  std::string land_class_field;      // e.g. DLMC; "" = none
  bool land_class_optional = false;  // a missing land-class field means no basic farmland
  std::vector<std::string> basic_farmland_values;  // values of it meaning permanent basic farmland
  std::string encoding;           // force the attribute encoding (e.g. GBK) of a shapefile
  std::string crs;                // the file's CRS when it has none or a wrong one ("EPSG:4527")
  std::string label = "parcels";  // for messages
};

struct Parcel {
  std::string id;
  int64_t fid = 0;
  GeometryPtr geom;                // valid, polygonal, in the analysis CRS
  std::vector<std::string> attrs;  // pass-through attribute values (ParcelSet::fields order)
  bool basic_farmland = false;
  bool repaired = false, multipart = false, outside = false, partly_outside = false;
  double area_m2 = 0;
};

struct ParcelReport {
  int64_t features = 0;   // read from the layer
  int64_t loaded = 0;     // kept
  int64_t repaired = 0;   // invalid, fixed by MakeValid
  int64_t dropped = 0;    // null or empty geometry (or nothing polygonal after repair)
  int64_t multipart = 0;  // more than one polygon
  int64_t outside = 0;    // entirely outside the grid
  int64_t partly_outside = 0;
  int64_t renamed = 0;  // duplicate ids made unique
};

struct ParcelSet {
  std::string file, layer, id_field;  // id_field "" = FID
  Crs source_crs;
  std::vector<FieldDef> fields;  // pass-through attributes
  std::vector<Parcel> parcels;
  ParcelReport report;
};

// Loads a layer onto `grid` (its CRS; the outside flags against its extent). Throws fw::Error
// (input) naming the file, layer and field: no polygon layer, unknown layer or id field, no CRS,
// duplicate ids, attribute text that is not valid in its declared encoding.
ParcelSet load_parcels(const ParcelOptions& options, const Grid& grid);

}  // namespace fw::vectors
