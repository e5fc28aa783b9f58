#include "vectors/vector_writer.hpp"

#include "engine/error.hpp"

namespace fw {

std::string csv_quote(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void set_fields(OGRFeature& f, const std::vector<FieldDef>& fields,
                const std::vector<std::string>& values, bool empty_text) {
  for (std::size_t k = 0; k < fields.size() && k < values.size(); ++k) {
    const std::string& v = values[k];
    const OGRFieldType t = fields[k].type;
    if (v.empty() && !(empty_text && t == OFTString)) continue;
    if (t == OFTReal) {
      f.SetField(static_cast<int>(k), std::strtod(v.c_str(), nullptr));
    } else if (t == OFTInteger64 || t == OFTInteger) {
      f.SetField(static_cast<int>(k), static_cast<GIntBig>(std::strtoll(v.c_str(), nullptr, 10)));
    } else {
      f.SetField(static_cast<int>(k), v.c_str());
    }
  }
}

VectorWriter::VectorWriter(std::string path, std::string driver_name)
    : path_(std::move(path)), driver_(std::move(driver_name)), atomic_(path_) {
  CPLErrorReset();
  ds_.reset(driver(driver_).Create(atomic_.temp().c_str(), 0, 0, 0, GDT_Unknown, nullptr));
  if (!ds_)
    throw_output("cannot create " + driver_ + " file: " + last_gdal_error(), {.file = path_});
}

VectorWriter::~VectorWriter() {
  ds_.reset();  // the AtomicPath then removes the uncommitted temporary
}

OGRLayer& VectorWriter::add_layer(const std::string& name, const Crs& crs, OGRwkbGeometryType type,
                                  const std::vector<FieldDef>& fields,
                                  const GdalOptions& layer_options) {
  end_transaction();
  GdalOptions opts;
  for (char** it = layer_options.get(); it && *it; ++it) opts.add(*it);
  if (driver_ == "GeoJSON") {
    if (!layer_options.value("RFC7946")) opts.set("RFC7946", "YES");
    if (!layer_options.value("WRITE_NAME")) opts.set("WRITE_NAME", "NO");
  }
  CPLErrorReset();
  OGRLayer* layer =
      ds_->CreateLayer(name.c_str(), const_cast<OGRSpatialReference*>(crs.ogr()), type, opts.get());
  if (!layer) {
    throw_output("cannot create layer: " + last_gdal_error(), {.file = path_, .layer = name});
  }
  for (const auto& f : fields) {
    OGRFieldDefn def(f.name.c_str(), f.type);
    if (layer->CreateField(&def) != OGRERR_NONE) {
      throw_output("cannot create field: " + last_gdal_error(),
                   {.file = path_, .layer = name, .field = f.name});
    }
  }
  return *layer;
}

void VectorWriter::end_transaction() {
  if (!in_transaction_) return;
  in_transaction_ = false;
  pending_ = 0;
  if (ds_->CommitTransaction() != OGRERR_NONE) {
    throw_output("cannot commit features: " + last_gdal_error(), {.file = path_});
  }
}

void VectorWriter::write(OGRLayer& layer, OGRFeature& feature) {
  // Batch features in transactions where the format has them (GeoPackage): far faster.
  if (!in_transaction_ && ds_->TestCapability(ODsCTransactions)) {
    in_transaction_ = ds_->StartTransaction() == OGRERR_NONE;
  }
  if (in_transaction_ && ++pending_ >= 20000) {
    end_transaction();
    in_transaction_ = ds_->StartTransaction() == OGRERR_NONE;
  }
  CPLErrorReset();
  if (layer.CreateFeature(&feature) != OGRERR_NONE) {
    throw_output("cannot write feature: " + last_gdal_error(),
                 {.file = path_, .layer = layer.GetName()});
  }
}

void VectorWriter::commit() {
  end_transaction();
  close_dataset(ds_, path_);
  atomic_.commit();
}

}  // namespace fw
