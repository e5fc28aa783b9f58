// RAII owners of GDAL/OGR handles and the helpers that open them with clear errors.
#pragma once

#include <gdal_priv.h>
#include <ogr_feature.h>
#include <ogr_geometry.h>
#include <ogrsf_frmts.h>

#include <memory>
#include <string>
#include <vector>

namespace fw {

// One-time GDAL set-up: registers drivers, routes messages to our log, bounds the block cache.
void init_gdal();
// Sets GDAL's block cache size (bytes).
void set_gdal_cache_bytes(int64_t bytes);

using DatasetPtr = GDALDatasetUniquePtr;
using FeaturePtr = OGRFeatureUniquePtr;
using GeometryPtr = std::unique_ptr<OGRGeometry>;

// An owned NULL-terminated string list (GDAL creation/open options).
class GdalOptions {
 public:
  GdalOptions() = default;
  GdalOptions(std::initializer_list<std::string> items) {
    for (const auto& s : items) list_.AddString(s.c_str());
  }
  GdalOptions& set(const std::string& key, const std::string& value) {
    list_.SetNameValue(key.c_str(), value.c_str());
    return *this;
  }
  GdalOptions& add(const std::string& item) {
    list_.AddString(item.c_str());
    return *this;
  }
  char** get() const { return const_cast<char**>(list_.List()); }
  const char* value(const std::string& key) const { return list_.FetchNameValue(key.c_str()); }

 private:
  CPLStringList list_;
};

// Opens a raster read-only; throws fw::Error (input) naming the file on failure.
DatasetPtr open_raster(const std::string& path, bool update = false);
// Opens a vector dataset; throws fw::Error (input) naming the file on failure.
DatasetPtr open_vector(const std::string& path, bool update = false);
// Gets a driver by name; throws fw::Error (internal) if this GDAL lacks it.
GDALDriver& driver(const std::string& name);
// Closes a dataset, flushing it; throws fw::Error (output) if flushing reported an error.
void close_dataset(DatasetPtr& ds, const std::string& path);

}  // namespace fw
