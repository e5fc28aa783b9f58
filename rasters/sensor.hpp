// Sensors and band maps: which band of the input is which spectral role, and how digital
// numbers become surface reflectance.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fw::rasters {

// The spectral roles that indices and rules use.
enum class Role { kBlue, kGreen, kRed, kNir, kSwir1, kSwir2, kThermal, kCount };
constexpr int kRoleCount = static_cast<int>(Role::kCount);
const char* role_name(Role r);
std::optional<Role> parse_role(const std::string& name);

struct SensorPreset {
  std::string id;                             // sentinel2, landsat89, gf1wfv, gf2pms, generic
  std::string title;                          // human name
  std::vector<std::string> band_order;        // canonical band names in product order
  std::array<std::string, kRoleCount> roles;  // role -> canonical band name ("" if none)
  double scale = 1.0, offset = 0.0;           // reflectance = DN * scale + offset
  std::optional<double> nodata;               // DN that means "no data"
  std::optional<double> saturated;            // DN that means "saturated"
  bool gain_from_user = false;                // Gaofen: the user supplies gain and offset
};

// Known ids: sentinel2, landsat89, gf1wfv, gf6wfv, gf2pms, generic. Throws fw::Error (usage)
// listing them for an unknown id.
const SensorPreset& sensor_preset(const std::string& id);
std::vector<std::string> sensor_ids();

// Canonical form of a band name: "B04" -> "B4", "b8a" -> "B8A", "SR_B04" -> "SR_B4",
// "Band 4" -> "" (generic descriptions carry no name).
std::string normalize_band_name(const std::string& name);

// A band name guessed from a file name (Sentinel-2 granule "..._B04_10m.jp2" -> "B4",
// Landsat "..._SR_B4.TIF" -> "SR_B4"), or "".
std::string band_name_from_filename(const std::string& path);

// "red=3,nir=B8A,swir1=11" -> {{"red","3"},{"nir","B8A"},{"swir1","11"}}. Keys are roles or band
// names. Throws fw::Error (usage) on malformed text.
std::vector<std::pair<std::string, std::string>> parse_band_map(const std::string& text);

}  // namespace fw::rasters
