#include "vectors/ecozones.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>

#include "engine/error.hpp"
#include "vectors/rules.hpp"

namespace fw::vectors {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const std::vector<std::string>& eco_vars() {
  static const std::vector<std::string> v = {
      "sensitivity", "area_m2",        "area_ha",     "valid_fraction", "degraded_m2",
      "degraded_ha", "degraded_share", "improved_m2", "improved_ha",    "rsei_t0",
      "rsei_t1",     "rsei_change",    "fvc_t0",      "fvc_t1",         "fvc_change",
      "built_up_m2", "changed_m2",     "slope_mean",  "steep25_m2"};
  return v;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

int field_index(const ParcelSet& set, const std::string& name) {
  for (std::size_t i = 0; i < set.fields.size(); ++i) {
    if (set.fields[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// A zonal table's column by name.
struct Columns {
  const ZonalTable& t;
  std::map<std::string, std::size_t> at;
  explicit Columns(const ZonalTable& table) : t(table) {
    for (std::size_t c = 0; c < t.columns.size(); ++c) at[t.columns[c]] = c;
  }
  // `missing` when the column does not exist (a class never seen, a raster not given).
  double get(std::size_t row, const std::string& name, double missing = kNaN) const {
    auto it = at.find(name);
    return it == at.end() ? missing : t.rows[row][it->second];
  }
};

}  // namespace

int parse_sensitivity_name(const std::string& n) {
  if (n == "none" || n == "无") return 0;
  if (n == "low" || n == "低") return 1;
  if (n == "medium" || n == "中") return 2;
  if (n == "high" || n == "高") return 3;
  if (n == "red_line" || n == "生态保护红线" || n == "ecological_red_line") return 4;
  return -1;
}

int sensitivity_level(const std::string& type, const std::string& sensitivity, int fallback) {
  if (type == "ecological_red_line" || type == "生态保护红线") return 4;
  const std::string s = trim(sensitivity);
  if (s.size() == 1 && s[0] >= '0' && s[0] <= '4') return s[0] - '0';
  const int k = parse_sensitivity_name(s);
  return k >= 0 ? k : fallback;
}

const char* eco_alert_name(int level) {
  static const char* n[] = {"none", "watch", "warning", "alarm"};
  return n[std::clamp(level, 0, 3)];
}

EcoAlertRule parse_eco_rule(const std::string& text) {
  static const RuleSyntax syntax{
      .what = "eco_alert rule",
      .example = "alarm: sensitivity >= 4, built_up_m2 > 0",
      .levels = {{"watch", kEcoWatch}, {"warning", kEcoWarning}, {"alarm", kEcoAlarm}},
      .member_var = "type",
      .vars = eco_vars(),
      .also = [](const std::string& v) {
        return v.size() > 3 && v.compare(v.size() - 3, 3, "_m2") == 0;  // <category>_m2
      }};
  return parse_rule(text, syntax);
}

std::vector<EcoAlertRule> default_eco_rules() {
  return {parse_eco_rule("alarm: sensitivity >= 4, built_up_m2 > 0"),
          parse_eco_rule("alarm: sensitivity >= 4, degraded_ha >= 1"),
          parse_eco_rule("warning: type in wetland|湿地, degraded_ha > 1"),
          parse_eco_rule("warning: sensitivity >= 3, built_up_m2 > 0"),
          parse_eco_rule("warning: sensitivity >= 3, degraded_ha >= 1"),
          parse_eco_rule("watch: degraded_ha >= 0.1"),
          parse_eco_rule("watch: built_up_m2 > 0")};
}

double ZoneIndicators::value(std::size_t zone, const std::string& column) const {
  for (std::size_t c = 0; c < cols.numeric.size(); ++c) {
    if (cols.numeric[c] == column) return cols.values[zone][c];
  }
  return kNaN;
}

ZoneIndicators zone_indicators(const ParcelSet& zones, const ZoneIndicatorOptions& o,
                               const SchedulerOptions& so) {
  if (o.grade_names.size() != 5) throw_internal("zone indicators need five grade names");
  std::vector<std::string> above;
  for (double b : o.rsei_breaks) above.push_back("above" + fmt(b));
  std::vector<ZonalRaster> rs;
  for (int d = 0; d < 2; ++d) {
    const std::string t = d == 0 ? "t0" : "t1";
    rs.push_back({o.fvc[static_cast<std::size_t>(d)], 1, "fvc_" + t, {"mean"}});
    std::vector<std::string> st = {"count", "mean"};
    st.insert(st.end(), above.begin(), above.end());
    rs.push_back({o.rsei[static_cast<std::size_t>(d)], 1, "rsei_" + t, st});
  }
  rs.push_back({o.grade_change, 1, "gc", {"count", "coverage", "frac"}});
  if (!o.change_class.empty()) rs.push_back({o.change_class, 1, "cc", {"count", "frac"}});
  if (!o.slope.empty())
    rs.push_back({o.slope, 1, "slope", {"count", "mean", "above15", "above25"}});
  ZonalOptions zo;
  zo.mode = o.mode;
  zo.stats = {};
  const double px = zonal_grid(rs).transform().pixel_area();
  const ZonalTable table = zonal_stats(zones, rs, zo, so);
  const Columns col(table);

  ZoneIndicators ind;
  ind.cols.layer = "zones";
  ind.cols.id_field = "zone_id";
  auto& names = ind.cols.numeric;
  names = {"sensitivity_level", "area_m2", "area_in_image_m2", "valid_fraction", "fvc_t0", "fvc_t1",
           "fvc_change",        "rsei_t0", "rsei_t1",          "rsei_change"};
  for (const char* t : {"t0", "t1"}) {
    for (const auto& g : o.grade_names) names.push_back(std::string(t) + "_" + g + "_m2");
  }
  for (const char* n : {"degraded_m2", "improved_m2", "degraded_share"}) names.push_back(n);
  std::vector<std::pair<int, std::string>> cats;  // change class code, name
  for (std::size_t k = 1; k < o.category_names.size(); ++k) {
    if (!o.change_class.empty() && !o.category_names[k].empty())
      cats.push_back({static_cast<int>(k), o.category_names[k]});
  }
  for (const auto& [k, n] : cats) names.push_back(n + "_m2");
  if (!o.change_class.empty()) names.push_back("built_up_m2"), names.push_back("changed_m2");
  if (!o.slope.empty()) {
    for (const char* n : {"slope_mean", "steep15_m2", "steep25_m2"}) names.push_back(n);
  }
  names.push_back("rank");
  ind.cols.text = {"eco_alert", "alert_rule", "note"};

  const int ti = o.type_field.empty() ? -1 : field_index(zones, o.type_field);
  const int si = o.sensitivity_field.empty() ? -1 : field_index(zones, o.sensitivity_field);
  const std::size_t nz = zones.parcels.size();
  ind.cols.values.resize(nz);
  ind.cols.text_values.resize(nz);
  ind.alert.assign(nz, kEcoNone);
  ind.rule.assign(nz, "");
  std::vector<double> degraded(nz, 0), sens(nz, 0);
  for (std::size_t i = 0; i < nz; ++i) {
    const Parcel& z = zones.parcels[i];
    const std::string type = ti >= 0 ? z.attrs[static_cast<std::size_t>(ti)] : "";
    const std::string stext = si >= 0 ? z.attrs[static_cast<std::size_t>(si)] : "";
    std::map<std::string, double> v;
    v["sensitivity"] = sensitivity_level(type, stext, o.default_sensitivity);
    v["sensitivity_level"] = v["sensitivity"];
    v["area_m2"] = z.area_m2;
    v["area_ha"] = z.area_m2 / 10000.0;
    const double gcount = col.get(i, "gc_count", 0.0);
    const double covered = col.get(i, "gc_coverage", 0.0);
    v["area_in_image_m2"] = covered * px;
    v["valid_fraction"] = covered > 0 ? gcount / covered : kNaN;
    for (const char* t : {"t0", "t1"}) {
      const std::string T(t);
      v["fvc_" + T] = col.get(i, "fvc_" + T + "_mean");
      v["rsei_" + T] = col.get(i, "rsei_" + T + "_mean");
      const double cnt = col.get(i, "rsei_" + T + "_count", 0.0);
      double prev = 1.0;  // share at or above the previous break
      for (std::size_t g = 0; g < 5; ++g) {
        const double next =
            g < 4 ? col.get(i, "rsei_" + T + "_" + above[g], 0.0) : 0.0;  // share above
        v[T + "_" + o.grade_names[g] + "_m2"] = cnt > 0 ? cnt * (prev - next) * px : 0.0;
        prev = next;
      }
    }
    v["fvc_change"] = v["fvc_t1"] - v["fvc_t0"];
    v["rsei_change"] = v["rsei_t1"] - v["rsei_t0"];
    double down = 0, up = 0;
    for (int c = 1; c <= 9; ++c) {
      const double f = col.get(i, "gc_frac_" + std::to_string(c), 0.0);
      if (std::isnan(f)) continue;
      if (c < o.unchanged_code) down += f;
      if (c > o.unchanged_code) up += f;
    }
    v["degraded_m2"] = gcount * down * px;
    v["improved_m2"] = gcount * up * px;
    v["degraded_ha"] = v["degraded_m2"] / 10000.0;
    v["improved_ha"] = v["improved_m2"] / 10000.0;
    v["degraded_share"] = gcount > 0 ? down : kNaN;
    if (!o.change_class.empty()) {
      const double ccount = col.get(i, "cc_count", 0.0);
      double built = 0, changed = 0;
      for (const auto& [k, n] : cats) {
        double f = col.get(i, "cc_frac_" + std::to_string(k), 0.0);
        if (std::isnan(f)) f = 0;
        const double a = ccount * f * px;
        v[n + "_m2"] = a;
        changed += a;
        if (n == "construction" || n == "bare_soil") built += a;
      }
      v["built_up_m2"] = built;
      v["changed_m2"] = changed;
    }
    if (!o.slope.empty()) {
      const double scount = col.get(i, "slope_count", 0.0);
      v["slope_mean"] = col.get(i, "slope_mean");
      v["steep15_m2"] = scount * col.get(i, "slope_above15", 0.0) * px;
      v["steep25_m2"] = scount * col.get(i, "slope_above25", 0.0) * px;
    }
    // The most severe rule that holds.
    for (const auto& r : o.rules) {
      if (r.level <= ind.alert[i]) continue;
      const bool ok = rule_holds(
          r,
          [&](const std::string& name) {
            auto it = v.find(name);
            return it == v.end() ? kNaN : it->second;
          },
          type);
      if (ok) ind.alert[i] = r.level, ind.rule[i] = r.text;
    }
    std::string note;
    if (covered <= 0) {
      note = "outside the image";
    } else if (gcount <= 0) {
      note = "no valid pixel at both dates";
    }
    degraded[i] = v["degraded_m2"];
    sens[i] = v["sensitivity"];
    auto& row = ind.cols.values[i];
    for (const auto& n : names) {
      auto it = v.find(n);
      row.push_back(it == v.end() ? kNaN : it->second);
    }
    ind.cols.text_values[i] = {eco_alert_name(ind.alert[i]), ind.rule[i], note};
  }
  // Rank: alert, then sensitivity, then degraded area, then id.
  std::vector<std::size_t> order(nz);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (ind.alert[a] != ind.alert[b]) return ind.alert[a] > ind.alert[b];
    if (sens[a] != sens[b]) return sens[a] > sens[b];
    if (degraded[a] != degraded[b]) return degraded[a] > degraded[b];
    return zones.parcels[a].id < zones.parcels[b].id;
  });
  ind.rank.assign(nz, 0);
  for (std::size_t r = 0; r < nz; ++r) ind.rank[order[r]] = static_cast<int>(r) + 1;
  for (std::size_t i = 0; i < nz; ++i) ind.cols.values[i].back() = ind.rank[i];
  return ind;
}

void write_zone_indicators(const std::string& dir, const ParcelSet& zones,
                           const ZoneIndicators& ind, const Crs& crs) {
  for (const char* name : {"zones.geojson", "zones.gpkg", "zones.csv"})
    write_parcels(dir + "/" + name, zones, ind.cols, crs);
}

Terrain parcel_terrain(const ParcelSet& parcels, const std::string& slope, double flag_share,
                       CoverageMode mode, const SchedulerOptions& so) {
  const std::vector<ZonalRaster> rs = {
      {slope, 1, "slope", {"count", "mean", "above15", "above25"}}};
  ZonalOptions zo;
  zo.mode = mode;
  const double px = zonal_grid(rs).transform().pixel_area();
  const ZonalTable t = zonal_stats(parcels, rs, zo, so);
  const Columns col(t);
  Terrain out;
  out.columns = {"slope_mean", "steep15_m2", "steep25_m2", "steep25_share"};
  for (std::size_t i = 0; i < parcels.parcels.size(); ++i) {
    const double n = col.get(i, "slope_count", 0.0);
    const double a15 = col.get(i, "slope_above15"), a25 = col.get(i, "slope_above25");
    out.rows.push_back({col.get(i, "slope_mean"), n > 0 ? n * a15 * px : kNaN,
                        n > 0 ? n * a25 * px : kNaN, n > 0 ? a25 : kNaN});
    out.steep.push_back(n > 0 && a25 >= flag_share);
  }
  return out;
}

}  // namespace fw::vectors
