// `farmwatch synth`: a deterministic two-date rural scene with a known truth, of any size.
//
// Writes, into a folder: per date a 6-band UInt16 GeoTIFF in the Sentinel-2 L2A layout (B2, B3,
// B4, B8, B11, B12 as reflectance x 10000) and a 20 m SCL raster with ESA's class codes (clouds
// and shadows in date 2); optionally a land-surface-temperature raster per date (kelvin, from a
// surface energy-balance proxy); parcels (GeoPackage and GeoJSON) and ecological zones; and truth.json
// with every planted change. Generation streams window by window, so memory does not grow with
// the raster size; every value is a pure function of (seed, position), so results are identical
// for any thread count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/scheduler.hpp"

namespace fw::synth {

struct Options {
  std::string out;       // output folder (created)
  int64_t width = 1024;  // pixels of 10 m
  int64_t height = 1024;
  int parcels = 200;  // number of parcels
  uint64_t seed = 1;
  int epsg = 32650;          // UTM zone 50N (central China)
  double origin_x = 399960;  // upper-left corner, metres
  double origin_y = 3400020;
  bool lst = false;  // also write date1_lst.tif and date2_lst.tif (land surface temperature, K)
};

struct Result {
  std::vector<std::string> files;
  int parcels = 0;
  int zones = 0;
  int changes = 0;
  int clouds = 0;
};

// Fixed names of the files written.
inline constexpr const char* kDate1 = "date1.tif";
inline constexpr const char* kDate2 = "date2.tif";
inline constexpr const char* kScl1 = "date1_scl.tif";
inline constexpr const char* kScl2 = "date2_scl.tif";
inline constexpr const char* kLst1 = "date1_lst.tif";
inline constexpr const char* kLst2 = "date2_lst.tif";
inline constexpr const char* kParcelsGpkg = "parcels.gpkg";
inline constexpr const char* kParcelsGeojson = "parcels.geojson";
inline constexpr const char* kZonesGeojson = "zones.geojson";
inline constexpr const char* kTruth = "truth.json";
inline constexpr const char* kDate1Iso = "2024-05-18";
inline constexpr const char* kDate2Iso = "2025-05-23";

// Parses "W" or "WxH"; throws fw::Error (usage) otherwise.
void parse_size(const std::string& text, int64_t& width, int64_t& height);

Result generate(const Options& options, const SchedulerOptions& scheduler = {});

}  // namespace fw::synth
