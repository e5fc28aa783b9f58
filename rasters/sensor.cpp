#include "rasters/sensor.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>

#include "engine/error.hpp"

namespace fw::rasters {
namespace {

constexpr std::array<const char*, kRoleCount> kRoleNames = {"blue",  "green", "red",    "nir",
                                                            "swir1", "swir2", "thermal"};

std::array<std::string, kRoleCount> roles(std::initializer_list<std::pair<Role, const char*>> l) {
  std::array<std::string, kRoleCount> r;
  for (const auto& [role, band] : l) r[static_cast<std::size_t>(role)] = band;
  return r;
}

const std::vector<SensorPreset>& presets() {
  static const std::vector<SensorPreset> all = [] {
    std::vector<SensorPreset> v;
    SensorPreset s2;
    s2.id = "sentinel2";
    s2.title = "Sentinel-2 MSI Level-2A";
    s2.band_order = {"B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12"};
    s2.roles = roles({{Role::kBlue, "B2"},
                      {Role::kGreen, "B3"},
                      {Role::kRed, "B4"},
                      {Role::kNir, "B8"},
                      {Role::kSwir1, "B11"},
                      {Role::kSwir2, "B12"}});
    s2.scale = 1e-4;  // BOA_QUANTIFICATION_VALUE 10000; BOA_ADD_OFFSET applies from baseline 04.00
    s2.nodata = 0;
    s2.saturated = 65535;
    v.push_back(s2);
    SensorPreset l8;
    l8.id = "landsat89";
    l8.title = "Landsat 8/9 OLI Collection 2 Level-2";
    l8.band_order = {"SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"};
    l8.roles = roles({{Role::kBlue, "SR_B2"},
                      {Role::kGreen, "SR_B3"},
                      {Role::kRed, "SR_B4"},
                      {Role::kNir, "SR_B5"},
                      {Role::kSwir1, "SR_B6"},
                      {Role::kSwir2, "SR_B7"},
                      {Role::kThermal, "ST_B10"}});
    l8.scale = 0.0000275;
    l8.offset = -0.2;
    l8.nodata = 0;
    v.push_back(l8);
    for (const char* id : {"gf1wfv", "gf6wfv", "gf2pms"}) {
      SensorPreset gf;
      gf.id = id;
      gf.title = std::string(id) == "gf2pms"   ? "Gaofen-2 PMS multispectral"
                 : std::string(id) == "gf6wfv" ? "Gaofen-6 WFV"
                                               : "Gaofen-1 WFV";
      gf.band_order = {"B1", "B2", "B3", "B4"};
      if (std::string(id) == "gf6wfv")
        gf.band_order = {"B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"};
      gf.roles = roles(
          {{Role::kBlue, "B1"}, {Role::kGreen, "B2"}, {Role::kRed, "B3"}, {Role::kNir, "B4"}});
      gf.nodata = 0;
      gf.gain_from_user = true;
      v.push_back(gf);
    }
    SensorPreset g;
    g.id = "generic";
    g.title = "any GDAL raster with a band map";
    v.push_back(g);
    return v;
  }();
  return all;
}

}  // namespace

const char* role_name(Role r) {
  return kRoleNames[static_cast<std::size_t>(r)];
}

std::optional<Role> parse_role(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  for (int i = 0; i < kRoleCount; ++i) {
    if (n == kRoleNames[static_cast<std::size_t>(i)]) return static_cast<Role>(i);
  }
  if (n == "swir" || n == "swir16") return Role::kSwir1;
  if (n == "swir22") return Role::kSwir2;
  if (n == "tir" || n == "lst") return Role::kThermal;
  return std::nullopt;
}

const SensorPreset& sensor_preset(const std::string& id) {
  for (const auto& p : presets()) {
    if (p.id == id) return p;
  }
  std::string known;
  for (const auto& p : presets()) known += (known.empty() ? "" : ", ") + p.id;
  throw_usage("unknown sensor '" + id + "' (known: " + known + ", or auto)");
}

std::vector<std::string> sensor_ids() {
  std::vector<std::string> ids;
  for (const auto& p : presets()) ids.push_back(p.id);
  return ids;
}

std::string normalize_band_name(const std::string& name) {
  static const std::regex re(R"(^\s*(SR_|ST_)?B(?:AND)?[_ ]?0*([0-9]{1,2})(A?)\s*$)",
                             std::regex::icase);
  std::smatch m;
  if (!std::regex_match(name, m, re)) return {};
  // "Band 1" style descriptions are generic: no name.
  if (!m[1].matched && name.size() >= 4) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (lower.find("band") != std::string::npos) return {};
  }
  std::string prefix = m[1].str();
  std::transform(prefix.begin(), prefix.end(), prefix.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  std::string digits = m[2].str();
  return prefix + "B" + digits + (m[3].length() ? "A" : "");
}

std::string band_name_from_filename(const std::string& path) {
  const std::string file = path.substr(path.find_last_of('/') + 1);
  static const std::regex s2(R"(_(B(?:0[1-9]|1[0-2]|8A))(?:_[0-9]{2}m)?\.(jp2|tif|tiff)$)",
                             std::regex::icase);
  static const std::regex ls(R"(_((?:SR|ST)_B[0-9]{1,2})\.(tif|tiff)$)", std::regex::icase);
  std::smatch m;
  if (std::regex_search(file, m, ls)) return normalize_band_name(m[1].str());
  if (std::regex_search(file, m, s2)) return normalize_band_name(m[1].str());
  return {};
}

std::vector<std::pair<std::string, std::string>> parse_band_map(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos <= text.size() && !text.empty()) {
    const std::size_t comma = text.find(',', pos);
    const std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 >= item.size()) {
      throw_usage("bad band map entry '" + item + "' in '" + text +
                  "' (expected role=band, for example red=3,nir=8)");
    }
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace fw::rasters
