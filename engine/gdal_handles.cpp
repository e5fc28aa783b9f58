#include "engine/gdal_handles.hpp"

#include <cpl_conv.h>

#include <mutex>

#include "engine/error.hpp"
#include "engine/log.hpp"

namespace fw {

void init_gdal() {
  static std::once_flag once;
  std::call_once(once, [] {
    GDALAllRegister();
    log::route_gdal();
    // Bound GDAL's block cache: by default it may take 5 % of RAM, which would make peak memory
    // depend on raster size. Windows are read straight into our buffers, so little is needed.
    if (!CPLGetConfigOption("GDAL_CACHEMAX", nullptr)) set_gdal_cache_bytes(64ll << 20);
  });
}

void set_gdal_cache_bytes(int64_t bytes) {
  GDALSetCacheMax64(bytes);
}

namespace {
DatasetPtr open_any(const std::string& path, unsigned flags, const char* what) {
  init_gdal();
  CPLErrorReset();
  VSIStatBufL st;
  const bool virtual_path =
      path.rfind("/vsi", 0) == 0 || path.rfind("PG:", 0) == 0 || path.rfind("<VRTDataset", 0) == 0;
  if (!virtual_path && VSIStatL(path.c_str(), &st) != 0) {
    throw_input(std::string("no such file"), {.file = path});
  }
  DatasetPtr ds(
      GDALDataset::Open(path.c_str(), flags | GDAL_OF_VERBOSE_ERROR, nullptr, nullptr, nullptr));
  if (!ds) {
    std::string why = last_gdal_error();
    throw_input(std::string("cannot open as a ") + what + (why.empty() ? "" : ": " + why),
                {.file = path});
  }
  return ds;
}
}  // namespace

DatasetPtr open_raster(const std::string& path, bool update) {
  return open_any(path, GDAL_OF_RASTER | (update ? GDAL_OF_UPDATE : GDAL_OF_READONLY), "raster");
}

DatasetPtr open_vector(const std::string& path, bool update) {
  return open_any(path, GDAL_OF_VECTOR | (update ? GDAL_OF_UPDATE : GDAL_OF_READONLY),
                  "vector dataset");
}

GDALDriver& driver(const std::string& name) {
  init_gdal();
  GDALDriver* d = GetGDALDriverManager()->GetDriverByName(name.c_str());
  if (!d) throw_internal("this GDAL build has no " + name + " driver");
  return *d;
}

void close_dataset(DatasetPtr& ds, const std::string& path) {
  if (!ds) return;
  CPLErrorReset();
  ds->FlushCache(true);
  const bool failed = CPLGetLastErrorType() == CE_Failure;
  const std::string why = last_gdal_error();
  ds.reset();
  if (failed || CPLGetLastErrorType() == CE_Failure) {
    throw_output("writing failed: " + (why.empty() ? last_gdal_error() : why), {.file = path});
  }
}

}  // namespace fw
