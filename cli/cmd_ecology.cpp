// `farmwatch ecology`: FVC, RSEI and their grade change for two dates, slope from a DEM, and
// per-zone indicators with eco_alert (pipelines/ecology_run.hpp).
#include <cstdio>
#include <optional>

#include "cli/commands.hpp"
#include "cli/imagery_options.hpp"
#include "cli/parcel_options.hpp"
#include "pipelines/ecology_run.hpp"
#include "pipelines/styles.hpp"
#include "rasters/change.hpp"
#include "vectors/patches.hpp"

namespace fw::cli {

void add_ecology(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "ecology",
      "Ecological indicators: vegetation cover (FVC) and RSEI of two dates, RSEI grade change, "
      "slope from a DEM; per ecological zone: areas per grade, degraded area, eco_alert");
  struct Args {
    ImageryArgs before, after;
    std::string zones, zones_layer, zone_id = "zone_id", lst_before, lst_after, dem, out;
    std::string wetness = "auto", heat = "auto", mode = "joint", default_sensitivity = "medium";
    vectors::ZoneOptions zo;
    ParcelArgs parcels;
    double min_change = 0.1;
    std::string mixed_pixels = "majority";
    bool float32 = false;
    std::optional<double> ndvi_soil, ndvi_veg;
    std::vector<std::string> rules;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--before", a->before.files, "Date 1 raster(s)")->required();
  cmd->add_option("--after", a->after.files, "Date 2 raster(s)")->required();
  add_sensor_options(cmd, a->before);
  cmd->add_option("--mask-before", a->before.mask, "Date 1 cloud/quality mask");
  cmd->add_option("--mask-after", a->after.mask, "Date 2 cloud/quality mask");
  cmd->add_option("--zones", a->zones, "Ecological zones (any OGR vector)");
  cmd->add_option("--zones-layer", a->zones_layer, "Layer of the zones file");
  cmd->add_option("--zone-id-field", a->zone_id, "Zone id field (else the FID)")
      ->capture_default_str();
  cmd->add_option("--zone-type-field", a->zo.type_field)->capture_default_str();
  cmd->add_option("--zone-sensitivity-field", a->zo.sensitivity_field,
                  "Zone sensitivity: none, low, medium, high, red_line (or 低, 中, 高); '' = none")
      ->capture_default_str();
  cmd->add_option("--default-sensitivity", a->default_sensitivity,
                  "Sensitivity of zones without one")
      ->check(CLI::IsMember({"none", "low", "medium", "high", "red_line"}))
      ->capture_default_str();
  cmd->add_option("--alert-rule", a->rules,
                  "Replace the eco_alert rules: 'alarm: sensitivity >= 4, built_up_m2 > 0'");
  cmd->add_option("--dem", a->dem,
                  "Digital elevation model (any GDAL raster): slope.tif; with --parcels, "
                  "parcel_terrain.csv and .geojson (mean slope, area above 15 and 25 degrees)");
  add_parcel_options(cmd, a->parcels, false);
  cmd->add_option("--lst-before", a->lst_before, "Land surface temperature of date 1");
  cmd->add_option("--lst-after", a->lst_after, "Land surface temperature of date 2");
  cmd->add_option("--wetness", a->wetness,
                  "Tasseled-cap wetness: auto, landsat89, sentinel2, landsat7, landsat5, or six "
                  "coefficients")
      ->capture_default_str();
  cmd->add_option("--heat", a->heat, "auto, none (three components) or required")
      ->check(CLI::IsMember({"auto", "none", "required"}))
      ->capture_default_str();
  cmd->add_option("--mode", a->mode, "joint or per_date normalisation and PCA")
      ->check(CLI::IsMember({"joint", "per_date"}))
      ->capture_default_str();
  cmd->add_option("--min-change", a->min_change, "Least RSEI move for a grade change")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--mixed-pixels", a->mixed_pixels,
                  "majority: a pixel at the rim of a changed area keeps its grade change only "
                  "when mostly changed; whole: every pixel whose grade moved")
      ->check(CLI::IsMember({"majority", "whole"}))
      ->capture_default_str();
  cmd->add_flag("--float32", a->float32,
                "FVC and RSEI as Float32 instead of UInt16 x 10000 (GDAL scale 1e-4)");
  cmd->add_option("--ndvi-soil", a->ndvi_soil, "Fixed NDVI of bare soil (FVC)");
  cmd->add_option("--ndvi-veg", a->ndvi_veg, "Fixed NDVI of full vegetation (FVC)");
  cmd->add_option("--out", a->out, "Output folder")->required();
  cmd->callback([&action, a] {
    action = [a] {
      ImageryArgs b = a->before, f = a->before;
      f.files = a->after.files;
      f.mask = a->after.mask;
      const rasters::Imagery before = rasters::Imagery::open(b.options("date 1 (--before)"));
      const rasters::Imagery after = rasters::Imagery::open(f.options("date 2 (--after)"));
      pipelines::EcologyRun run;
      run.before = &before;
      run.after = &after;
      run.grid = rasters::change_grid(before, after);
      run.lst_before = a->lst_before;
      run.lst_after = a->lst_after;
      run.eco.wetness = a->wetness;
      run.eco.heat = a->heat;
      run.eco.mode = rasters::parse_rsei_mode(a->mode);
      run.eco.min_change = a->min_change;
      run.eco.majority_rule = a->mixed_pixels == "majority";
      run.eco.uint16 = !a->float32;
      run.eco.fvc.ndvi_soil = a->ndvi_soil;
      run.eco.fvc.ndvi_veg = a->ndvi_veg;
      run.slope.dem = a->dem;
      std::optional<vectors::ParcelSet> zones, parcels;
      if (!a->zones.empty()) {
        vectors::ZoneOptions zo = a->zo;
        zo.name_field.clear();  // passed through, not needed
        zo.layer.file = a->zones;
        zo.layer.layer = a->zones_layer;
        zo.layer.id_field = a->zone_id;
        zo.layer.label = "zones";
        zones = vectors::load_zones(zo, run.grid);
        run.zones = &*zones;
        run.zone.type_field = zo.type_field;
        run.zone.sensitivity_field = zo.sensitivity_field;
      }
      if (!a->parcels.file.empty()) {
        vectors::ParcelOptions po = a->parcels.options();
        po.land_class_optional = true;
        parcels = vectors::load_parcels(po, run.grid);
        run.parcels = &*parcels;
      }
      run.zone.default_sensitivity = vectors::parse_sensitivity_name(a->default_sensitivity);
      if (!a->rules.empty()) {
        run.zone.rules.clear();
        for (const auto& r : a->rules) run.zone.rules.push_back(vectors::parse_eco_rule(r));
      }
      run.out_dir = a->out;
      const auto r = run_with_progress(
          a->out, [&](const SchedulerOptions& so) { return pipelines::run_ecology(run, so); });
      std::vector<std::string> files = r.files;
      if (r.terrain) {
        // Per-parcel terrain (the pipeline puts these columns on parcels.geojson instead).
        vectors::ParcelColumns cols;
        cols.numeric = r.terrain->columns;
        cols.values = r.terrain->rows;
        cols.text = {"flags"};
        for (bool steep : r.terrain->steep)
          cols.text_values.push_back({steep ? "steep_over_25" : ""});
        for (const char* name : {"/parcel_terrain.csv", "/parcel_terrain.geojson"}) {
          vectors::write_parcels(a->out + name, *parcels, cols, run.grid.crs());
          files.push_back(a->out + name);
        }
      }
      pipelines::write_styles(a->out);
      const auto& e = r.eco;
      std::printf("RSEI (%s; %s): PC1 variance share", e.heat.c_str(),
                  e.mode == rasters::RseiMode::kJoint ? "joint" : "per date");
      for (const auto& p : e.pca) std::printf(" %.3f", p.variance_share);
      std::printf("; mean %.3f -> %.3f; degraded %lld px, improved %lld px\n", e.dates[0].rsei_mean,
                  e.dates[1].rsei_mean, static_cast<long long>(e.degraded),
                  static_cast<long long>(e.improved));
      if (r.zones) {
        int n[4] = {0, 0, 0, 0};
        for (int l : r.zones->alert) ++n[l];
        std::printf("%zu zones: %d alarm, %d warning, %d watch\n", r.zones->alert.size(), n[3],
                    n[2], n[1]);
      }
      for (const auto& file : files) std::printf("  %s\n", file.c_str());
      return 0;
    };
  });
}

}  // namespace fw::cli
