#include "pipelines/ecology_run.hpp"

#include <nlohmann/json.hpp>

#include "engine/atomic_file.hpp"
#include "rasters/change.hpp"

namespace fw::pipelines {

EcologyRunResult run_ecology(const EcologyRun& run, const SchedulerOptions& so) {
  EcologyRunResult r;
  rasters::EcologyOptions eo = run.eco;
  eo.out_dir = run.out_dir;
  r.eco = rasters::compute_ecology({run.before, run.lst_before}, {run.after, run.lst_after},
                                   run.grid, eo, so);
  r.files = r.eco.files;
  if (!run.slope.dem.empty()) {
    rasters::SlopeOptions s = run.slope;
    s.out = run.out_dir + "/slope.tif";
    r.slope = rasters::compute_slope(s, run.grid, so);
    r.files.push_back(s.out);
    if (run.parcels) {
      r.terrain = vectors::parcel_terrain(*run.parcels, s.out, run.steep_share, run.zone.mode, so);
    }
  }
  if (run.zones) {
    vectors::ZoneIndicatorOptions z = run.zone;
    z.fvc = {r.eco.files[0], r.eco.files[1]};
    z.rsei = {r.eco.files[2], r.eco.files[3]};
    z.grade_change = r.eco.files[4];
    z.rsei_breaks = eo.rsei_breaks;
    z.grade_names.clear();
    for (int g = 1; g <= 5; ++g) z.grade_names.push_back(rasters::rsei_grade_names()[g]);
    z.unchanged_code = rasters::kGradeUnchanged;
    z.change_class = run.change_class;
    z.category_names.clear();
    for (int k = 0; k < rasters::kChangeCategories; ++k)
      z.category_names.push_back(
          k == 0 ? "" : rasters::category_name(static_cast<rasters::ChangeCategory>(k)));
    if (r.slope) z.slope = r.slope->file;
    r.zones = vectors::zone_indicators(*run.zones, z, so);
    vectors::write_zone_indicators(run.out_dir, *run.zones, *r.zones, run.grid.crs());
    for (const char* n : {"zones.geojson", "zones.gpkg", "zones.csv"})
      r.files.push_back(run.out_dir + "/" + n);
  }
  write_file_atomic(run.out_dir + "/ecology.json", ecology_json(r));
  r.files.push_back(run.out_dir + "/ecology.json");
  return r;
}

std::string ecology_json(const EcologyRunResult& r) {
  using nlohmann::json;
  const auto& e = r.eco;
  json j;
  j["components"] = e.components;
  j["heat"] = e.heat;
  j["wetness"] = {
      {"set", e.wetness.id}, {"source", e.wetness.source}, {"coefficients", e.wetness.c}};
  j["mode"] = e.mode == rasters::RseiMode::kJoint ? "joint" : "per_date";
  json pcas = json::array();
  for (const auto& p : e.pca) {
    pcas.push_back({{"loadings", p.loadings},
                    {"variance_share", p.variance_share},
                    {"eigenvalues", p.eigenvalues},
                    {"min", p.min},
                    {"max", p.max},
                    {"pc1_min", p.pc1_min},
                    {"pc1_max", p.pc1_max},
                    {"pixels", p.pixels}});
  }
  j["pca"] = pcas;
  json dates = json::array();
  for (const auto& d : e.dates) {
    json g = json::object(), l = json::object();
    for (int k = 1; k <= 5; ++k) {
      g[rasters::rsei_grade_names()[k]] = d.rsei_grades[static_cast<std::size_t>(k)];
      l[rasters::fvc_level_names()[k]] = d.fvc_levels[static_cast<std::size_t>(k)];
    }
    dates.push_back({{"valid_pixels", d.valid},
                     {"land_pixels", d.land},
                     {"ndvi_soil", d.ndvi_soil},
                     {"ndvi_veg", d.ndvi_veg},
                     {"fvc_mean", d.fvc_mean},
                     {"rsei_mean", d.rsei_mean},
                     {"rsei_grades", g},
                     {"fvc_levels", l}});
  }
  j["dates"] = dates;
  json gc = json::object();
  for (int c = 1; c <= 9; ++c)
    gc[rasters::grade_change_names()[c]] = e.grade_change[static_cast<std::size_t>(c)];
  j["grade_change"] = gc;
  j["degraded_pixels"] = e.degraded;
  j["improved_pixels"] = e.improved;
  if (r.slope) {
    j["slope"] = {{"valid_pixels", r.slope->valid},
                  {"min", r.slope->min},
                  {"max", r.slope->max},
                  {"mean", r.slope->mean}};
  }
  if (r.zones) {
    int alerts[4] = {0, 0, 0, 0};
    for (int a : r.zones->alert) ++alerts[a];
    j["zone_alerts"] = {{"alarm", alerts[3]}, {"warning", alerts[2]}, {"watch", alerts[1]}};
  }
  return j.dump(2) + "\n";
}

}  // namespace fw::pipelines
