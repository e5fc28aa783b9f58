// The parcel options `zonal` and `indicators` share.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "vectors/parcels.hpp"

namespace fw::cli {

struct ParcelArgs {
  std::string file, layer, id_field = "parcel_id", encoding, crs;
  bool unique_ids = false;

  vectors::ParcelOptions options() const {
    vectors::ParcelOptions o;
    o.file = file;
    o.layer = layer;
    o.id_field = id_field;
    o.unique_ids = unique_ids;
    o.encoding = encoding;
    o.crs = crs;
    return o;
  }
};

inline void add_parcel_options(CLI::App* cmd, ParcelArgs& a, bool required = true) {
  auto* o = cmd->add_option("--parcels", a.file, "Parcels: any OGR vector");
  if (required) o->required();
  cmd->add_option("--layer", a.layer, "Layer (default: the first non-empty polygon layer)");
  cmd->add_option("--id-field", a.id_field, "Id field (default parcel_id, else the FID)")
      ->capture_default_str();
  cmd->add_flag("--unique-ids", a.unique_ids, "Make duplicate ids unique instead of failing");
  cmd->add_option("--encoding", a.encoding,
                  "Attribute encoding of a shapefile without a .cpg (for example GBK)");
  cmd->add_option("--parcels-crs", a.crs,
                  "The parcels' CRS when the file has none or a wrong one (e.g. EPSG:4527)");
}

}  // namespace fw::cli
