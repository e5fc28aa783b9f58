// Ecological zones (red lines, wetlands, water-source areas...) and terrain per parcel: one
// zonal pass (vectors/zonal.hpp, exact coverage) over the ecological rasters of a date pair
// gives, per zone, its area and valid share, mean FVC and RSEI at both dates, the area per
// RSEI grade at both dates, the degraded and improved areas, the change categories inside it,
// the slope when a DEM was given, and an eco_alert (none, watch, warning, alarm) from rules
// that are data and weigh the zone's sensitivity.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "engine/scheduler.hpp"
#include "vectors/coverage.hpp"
#include "vectors/parcels.hpp"
#include "vectors/rules.hpp"
#include "vectors/zonal.hpp"

namespace fw::vectors {

// A zone's sensitivity level: 4 ecological red line (its type ecological_red_line or
// 生态保护红线, or sensitivity red_line), 3 high (高), 2 medium (中), 1 low (低), a number 0..4
// as it is; `fallback` when the text is empty or unknown.
int sensitivity_level(const std::string& type, const std::string& sensitivity, int fallback);
// "none", "low", "medium", "high", "red_line"; -1 for an unknown name.
int parse_sensitivity_name(const std::string& name);

// An alert rule (vectors/rules.hpp): every condition must hold. Variables (per zone): sensitivity
// (0..4), area_m2, area_ha, valid_fraction, degraded_m2, degraded_ha, degraded_share (of the valid
// area), improved_m2, improved_ha, rsei_t0, rsei_t1, rsei_change, fvc_t0, fvc_t1, fvc_change,
// <category>_m2 for every change category, built_up_m2 (construction + bare_soil), changed_m2,
// slope_mean, steep25_m2; and `type in a|b|c` (the zone's type).
using EcoAlertRule = Rule;  // vectors/rules.hpp; level 1 watch, 2 warning, 3 alarm
constexpr int kEcoNone = 0, kEcoWatch = 1, kEcoWarning = 2, kEcoAlarm = 3;
const char* eco_alert_name(int level);
// "alarm: sensitivity >= 4, built_up_m2 > 0". Throws fw::Error (usage) naming the rule.
EcoAlertRule parse_eco_rule(const std::string& text);
// alarm: any construction or bare soil in an ecological red line; alarm: 1 ha degraded in a
// red line; warning: more than 1 ha degraded in a wetland; warning: construction or bare soil,
// or 1 ha degraded, in a high-sensitivity zone; watch: 0.1 ha degraded, or any construction or
// bare soil. The most severe rule that holds wins.
std::vector<EcoAlertRule> default_eco_rules();

struct ZoneIndicatorOptions {
  std::array<std::string, 2> fvc, rsei;     // fvc_t0/t1.tif, rsei_t0/t1.tif (one grid)
  std::string grade_change;                 // rsei_grade_change.tif: 1..9 = -4..+4 grades
  std::string change_class;                 // change_class.tif ("" = none)
  std::vector<std::string> category_names;  // change_class code -> category ("" = none)
  std::string slope;                        // slope.tif ("" = none)
  std::array<double, 4> rsei_breaks = {0.2, 0.4, 0.6, 0.8};
  std::vector<std::string> grade_names;  // five names, for the area columns
  int unchanged_code = 5;
  std::string type_field = "zone_type", sensitivity_field = "sensitivity";
  int default_sensitivity = 2;  // zones without a sensitivity value
  std::vector<EcoAlertRule> rules = default_eco_rules();
  CoverageMode mode = CoverageMode::kExact;
};

struct ZoneIndicators {
  ParcelColumns cols;             // numeric and text columns per zone (ParcelSet order)
  std::vector<int> alert;         // per zone
  std::vector<int> rank;          // 1 = most urgent: alert, sensitivity, degraded area
  std::vector<std::string> rule;  // the rule that set the alert ("" none)
  // The value of a numeric column for a zone (NaN when the column is absent).
  double value(std::size_t zone, const std::string& column) const;
};

// Throws fw::Error: input (rasters on different grids), usage (bad rules).
ZoneIndicators zone_indicators(const ParcelSet& zones, const ZoneIndicatorOptions& options,
                               const SchedulerOptions& scheduler = {});

// zones.geojson (RFC 7946), zones.gpkg (layer "zones") and zones.csv in `dir`, atomically.
void write_zone_indicators(const std::string& dir, const ParcelSet& zones,
                           const ZoneIndicators& ind, const Crs& crs);

// Per-parcel terrain from slope.tif: slope_mean (degrees), steep15_m2, steep25_m2 (area above
// 15 and 25 degrees) and steep25_share; `steep` is true for farmland whose share above 25
// degrees is at least `flag_share` (to be returned to forest or grassland).
struct Terrain {
  std::vector<std::string> columns;       // slope_mean, steep15_m2, steep25_m2, steep25_share
  std::vector<std::vector<double>> rows;  // per parcel
  std::vector<bool> steep;
};
Terrain parcel_terrain(const ParcelSet& parcels, const std::string& slope, double flag_share,
                       CoverageMode mode, const SchedulerOptions& scheduler = {});

}  // namespace fw::vectors
