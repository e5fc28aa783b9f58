#include "engine/versions.hpp"

#include <gdal.h>
#include <geos_c.h>
#include <proj.h>
#include <tbb/version.h>
#include <Eigen/Core>

#include "engine/gdal_handles.hpp"

namespace fw {

std::string farmwatch_version() {
  return FW_VERSION;
}

VersionInfo version_info() {
  init_gdal();
  VersionInfo v;
  v.libraries.emplace_back("farmwatch", farmwatch_version());
  v.libraries.emplace_back("GDAL", GDALVersionInfo("RELEASE_NAME"));
  v.libraries.emplace_back("PROJ", proj_info().release ? proj_info().version : "?");
  v.libraries.emplace_back("GEOS", GEOSversion());
  v.libraries.emplace_back("oneTBB", TBB_runtime_version());
  v.libraries.emplace_back("Eigen", std::to_string(EIGEN_WORLD_VERSION) + "." +
                                        std::to_string(EIGEN_MAJOR_VERSION) + "." +
                                        std::to_string(EIGEN_MINOR_VERSION));
  for (const char* name : {"GTiff", "COG", "GPKG", "GeoJSON", "PNG", "JP2OpenJPEG"}) {
    v.drivers.emplace_back(name, GetGDALDriverManager()->GetDriverByName(name) != nullptr);
  }
  return v;
}

}  // namespace fw
