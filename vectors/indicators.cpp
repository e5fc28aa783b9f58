#include "vectors/indicators.hpp"

#include <ogrsf_frmts.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"

namespace fw::vectors {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kMu = 10000.0 / 15.0;  // m2 per mu
// Change classes (rasters/change.hpp; vectors/ does not depend on rasters/): 1 construction,
// 2 bare soil, 3 water gain, 4 water loss, 5 vegetation loss, 6 vegetation gain.
constexpr std::array<const char*, 6> kClassCols = {"construction_m2",    "bare_soil_m2",
                                                   "water_gain_m2",      "water_loss_m2",
                                                   "vegetation_loss_m2", "vegetation_gain_m2"};

std::string fmt(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

}  // namespace

const std::vector<std::string>& indicator_columns() {
  static const std::vector<std::string> c = {
      "area_m2",      "area_mu",          "valid_fraction_t0",  "valid_fraction_t1",
      "ndvi_mean_t0", "ndvi_mean_t1",     "ndvi_delta",         "ndvi_p10",
      "ndvi_p50",     "ndvi_p90",         "vegetated_fraction", kClassCols[0],
      kClassCols[1],  kClassCols[2],      kClassCols[3],        kClassCols[4],
      kClassCols[5],  "encroach_area_m2", "encroach_ratio"};
  return c;
}

const char* alert_name(int level) {
  static const char* names[] = {"none", "watch", "warning", "alarm"};
  return level >= 0 && level <= 3 ? names[level] : "?";
}

Indicators compute_indicators(const ParcelSet& set, const IndicatorOptions& opt,
                              const SchedulerOptions& so) {
  std::vector<ZonalRaster> rasters;
  const std::string above = "above" + fmt(opt.vegetated_ndvi);
  int r0 = -1, r1 = -1, rc = -1;
  if (!opt.ndvi_before.empty()) {
    r0 = static_cast<int>(rasters.size());
    rasters.push_back({opt.ndvi_before, 1, "ndvi0", {"count", "coverage", "mean"}});
  }
  if (!opt.ndvi_after.empty()) {
    r1 = static_cast<int>(rasters.size());
    rasters.push_back(
        {opt.ndvi_after, 1, "ndvi1", {"count", "coverage", "mean", "p10", "p50", "p90", above}});
  }
  if (!opt.change_class.empty()) {
    rc = static_cast<int>(rasters.size());
    rasters.push_back({opt.change_class, 1, "cls", {"count", "coverage", "frac"}});
  }
  int rcov = -1;
  if (!opt.change_cover.empty()) {
    rcov = static_cast<int>(rasters.size());
    for (int k = 1; k <= 6; ++k)
      rasters.push_back({opt.change_cover, k, "cover" + std::to_string(k), {"sum"}});
  }
  if (rasters.empty()) throw_usage("no raster for the parcel indicators (NDVI or change classes)");
  ZonalOptions zo;
  zo.mode = opt.mode;
  const ZonalTable t = zonal_stats(set, rasters, zo, so);
  const Grid grid = zonal_grid(rasters);
  const double px_m2 =
      grid.transform().pixel_area() * grid.crs().linear_units_m() * grid.crs().linear_units_m();
  std::map<std::string, std::size_t> col;
  for (std::size_t c = 0; c < t.columns.size(); ++c) col[t.columns[c]] = c;
  auto get = [&](std::size_t i, const std::string& name) {
    auto it = col.find(name);
    return it == col.end() ? kNaN : t.rows[i][it->second];
  };
  Indicators ind;
  ind.columns = indicator_columns();
  const std::size_t np = set.parcels.size();
  ind.rows.resize(np);
  ind.alert.assign(np, kAlertNone);
  ind.flags.resize(np);
  for (std::size_t i = 0; i < np; ++i) {
    const Parcel& p = set.parcels[i];
    std::vector<double>& row = ind.rows[i];
    row.assign(ind.columns.size(), kNaN);
    auto put = [&](const std::string& name, double v) {
      for (std::size_t c = 0; c < ind.columns.size(); ++c) {
        if (ind.columns[c] == name) row[c] = v;
      }
    };
    put("area_m2", p.area_m2);
    put("area_mu", p.area_m2 / kMu);
    auto share = [&](const std::string& r) {
      const double cov = get(i, r + "_coverage");
      return cov > 0 ? get(i, r + "_count") / cov : kNaN;
    };
    double v0 = kNaN, v1 = kNaN, delta = kNaN;
    if (r0 >= 0) {
      v0 = share("ndvi0");
      put("valid_fraction_t0", v0);
      put("ndvi_mean_t0", get(i, "ndvi0_mean"));
    }
    if (r1 >= 0) {
      v1 = share("ndvi1");
      put("valid_fraction_t1", v1);
      put("ndvi_mean_t1", get(i, "ndvi1_mean"));
      put("ndvi_p10", get(i, "ndvi1_p10"));
      put("ndvi_p50", get(i, "ndvi1_p50"));
      put("ndvi_p90", get(i, "ndvi1_p90"));
      put("vegetated_fraction", get(i, "ndvi1_" + above));
    }
    if (r0 >= 0 && r1 >= 0) {
      delta = get(i, "ndvi1_mean") - get(i, "ndvi0_mean");
      put("ndvi_delta", delta);
    }
    double encroach = kNaN;
    if (rc >= 0 || rcov >= 0) {
      const double valid_w = get(i, "cls_count");
      encroach = 0;
      for (int k = 1; k <= 6; ++k) {
        double m2 = 0;
        if (rcov >= 0) {
          const double s = get(i, "cover" + std::to_string(k) + "_sum");
          m2 = std::isnan(s) ? 0.0 : s / 100.0 * px_m2;
        } else {
          const double f = get(i, "cls_frac_" + std::to_string(k));
          m2 = valid_w > 0 ? (std::isnan(f) ? 0.0 : f) * valid_w * px_m2 : 0.0;
        }
        put(kClassCols[static_cast<std::size_t>(k - 1)], m2);
        if (k <= 3) encroach += m2;
      }
      put("encroach_area_m2", encroach);
      put("encroach_ratio", p.area_m2 > 0 ? encroach / p.area_m2 : kNaN);
      if (std::isnan(v1) && rc >= 0) v1 = share("cls");
    }
    // Alert level.
    const AlertRules& a = opt.alerts;
    const double ratio = p.area_m2 > 0 ? encroach / p.area_m2 : 0.0;
    int level = kAlertNone;
    if (!std::isnan(encroach)) {
      if (p.basic_farmland && (encroach >= a.alarm_mu * kMu || ratio >= a.alarm_ratio)) {
        level = kAlertAlarm;
      } else if (encroach >= a.warning_mu * kMu || ratio >= a.warning_ratio ||
                 (p.basic_farmland &&
                  (encroach >= 0.5 * a.alarm_mu * kMu || ratio >= 0.5 * a.alarm_ratio))) {
        level = kAlertWarning;
      } else if (encroach >= a.watch_m2) {
        level = kAlertWatch;
      }
    }
    if (level == kAlertNone && !std::isnan(delta) && delta < a.watch_ndvi_drop) level = kAlertWatch;
    ind.alert[i] = level;
    std::string flags;
    auto flag = [&flags](const char* f) { flags += (flags.empty() ? "" : ",") + std::string(f); };
    if (p.outside) flag("outside");
    if (!p.outside && !std::isnan(v1) && v1 < opt.cloudy_below) flag("cloudy");
    if (p.repaired) flag("repaired");
    if (p.partly_outside) flag("partly_outside");
    ind.flags[i] = flags;
  }
  return ind;
}

void write_indicators(const std::string& path, const ParcelSet& set, const Indicators& ind,
                      const Crs& crs) {
  ParcelColumns cols;
  cols.numeric = ind.columns;
  cols.numeric.push_back("basic_farmland");
  cols.text = {"alert_level", "flags"};
  for (std::size_t i = 0; i < set.parcels.size(); ++i) {
    cols.values.push_back(ind.rows[i]);
    cols.values.back().push_back(set.parcels[i].basic_farmland ? 1.0 : 0.0);
    cols.text_values.push_back({alert_name(ind.alert[i]), ind.flags[i]});
  }
  write_parcels(path, set, cols, crs);
}

void write_summary_csv(const std::string& path, const ParcelSet& set, const Indicators& ind,
                       const IndicatorOptions& opt) {
  int ti = -1, vi = -1;
  for (std::size_t a = 0; a < set.fields.size(); ++a) {
    if (set.fields[a].name == opt.township_field) ti = static_cast<int>(a);
    if (set.fields[a].name == opt.village_field) vi = static_cast<int>(a);
  }
  struct Sum {
    int64_t parcels = 0, basic = 0;
    double area = 0, changed = 0, encroach = 0;
    std::array<int64_t, 4> alerts{};
  };
  std::map<std::pair<std::string, std::string>, Sum> by;
  auto col = [&](const std::string& name) {
    for (std::size_t c = 0; c < ind.columns.size(); ++c)
      if (ind.columns[c] == name) return c;
    return std::size_t{0};
  };
  const std::size_t ce = col("encroach_area_m2");
  for (std::size_t i = 0; i < set.parcels.size(); ++i) {
    const Parcel& p = set.parcels[i];
    const std::string town = ti >= 0 ? p.attrs[static_cast<std::size_t>(ti)] : "";
    const std::string vil = vi >= 0 ? p.attrs[static_cast<std::size_t>(vi)] : "";
    for (const auto& key : {std::pair{town, vil}, std::pair{town, std::string("*")}}) {
      Sum& s = by[key];
      ++s.parcels;
      s.basic += p.basic_farmland;
      s.area += p.area_m2;
      double changed = 0;
      for (const char* c : kClassCols) {
        const double v = ind.rows[i][col(c)];
        if (std::isfinite(v)) changed += v;
      }
      s.changed += changed;
      if (std::isfinite(ind.rows[i][ce])) s.encroach += ind.rows[i][ce];
      ++s.alerts[static_cast<std::size_t>(ind.alert[i])];
    }
  }
  auto quote = [](const std::string& v) {
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  std::string out =
      "township,village,parcels,basic_farmland_parcels,area_m2,area_mu,changed_m2,encroach_m2,"
      "encroach_mu,alerts_watch,alerts_warning,alerts_alarm\n";
  for (const auto& [key, s] : by) {
    out += quote(key.first) + "," + quote(key.second) + "," + std::to_string(s.parcels) + "," +
           std::to_string(s.basic) + "," + fmt(s.area) + "," + fmt(s.area / kMu) + "," +
           fmt(s.changed) + "," + fmt(s.encroach) + "," + fmt(s.encroach / kMu) + "," +
           std::to_string(s.alerts[1]) + "," + std::to_string(s.alerts[2]) + "," +
           std::to_string(s.alerts[3]) + "\n";
  }
  write_file_atomic(path, out);
}

}  // namespace fw::vectors
