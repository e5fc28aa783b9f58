// Per-parcel vegetation and encroachment indicators, from one zonal pass over the NDVI of both
// dates and the change classes: cloud-free shares, NDVI means, change and quantiles, vegetated
// share, changed area per category, encroachment (construction + bare soil + new water) and an
// alert level from configurable rules; flags; a summary by township and village.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "engine/scheduler.hpp"
#include "vectors/parcels.hpp"
#include "vectors/zonal.hpp"

namespace fw::vectors {

struct AlertRules {
  // alarm: on permanent basic farmland, encroachment of at least alarm_mu or alarm_ratio.
  double alarm_mu = 1.0, alarm_ratio = 0.10;
  // warning: the same thresholds elsewhere, or on basic farmland half of them.
  double warning_mu = 1.0, warning_ratio = 0.10;
  // watch: any encroachment of at least watch_m2, or an NDVI fall below watch_ndvi_drop.
  double watch_m2 = 100.0, watch_ndvi_drop = -0.2;
};

struct IndicatorOptions {
  std::string ndvi_before, ndvi_after, change_class;  // rasters on one grid ("" = absent)
  // change_cover.tif (rasters/cover.hpp): when given, the changed areas per category come from
  // the sub-pixel cover (band k = class k, per cent) instead of whole classified pixels.
  std::string change_cover;
  double vegetated_ndvi = 0.3;
  double cloudy_below = 0.5;  // flag a parcel cloudy when its cloud-free share is below this
  CoverageMode mode = CoverageMode::kExact;
  AlertRules alerts;
  std::string township_field = "township", village_field = "village";
};

// Column names of the indicators, in output order.
const std::vector<std::string>& indicator_columns();
constexpr int kAlertNone = 0, kAlertWatch = 1, kAlertWarning = 2, kAlertAlarm = 3;
const char* alert_name(int level);

struct Indicators {
  std::vector<std::string> columns;  // numeric columns (indicator_columns())
  std::vector<std::vector<double>> rows;
  std::vector<int> alert;          // per parcel
  std::vector<std::string> flags;  // per parcel: "cloudy,outside,repaired" or ""
};

Indicators compute_indicators(const ParcelSet& parcels, const IndicatorOptions& options,
                              const SchedulerOptions& scheduler = {});

// Parcels with their attributes and indicators: .geojson (RFC 7946), .gpkg or .csv.
void write_indicators(const std::string& path, const ParcelSet& parcels, const Indicators& ind,
                      const Crs& crs);
// The summary by township and village: parcels, areas, changed and encroached areas, alerts.
void write_summary_csv(const std::string& path, const ParcelSet& parcels, const Indicators& ind,
                       const IndicatorOptions& options);

}  // namespace fw::vectors
