// Versions of farmwatch and the libraries it runs on, and the GDAL drivers it needs.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fw {

struct VersionInfo {
  std::vector<std::pair<std::string, std::string>> libraries;  // name, version
  std::vector<std::pair<std::string, bool>> drivers;           // GDAL driver, present
};

std::string farmwatch_version();
VersionInfo version_info();

}  // namespace fw
