// `farmwatch indicators`: per-parcel vegetation and encroachment indicators and alert levels.
#include <cstdio>
#include <filesystem>

#include "cli/commands.hpp"
#include "cli/imagery_options.hpp"
#include "cli/parcel_options.hpp"
#include "vectors/indicators.hpp"

namespace fw::cli {

void add_indicators(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "indicators", "Per-parcel NDVI, change and encroachment indicators, alert levels, summary");
  struct Args {
    ParcelArgs parcels;
    std::string out, summary;
    std::string land_class_field = "land_class", coverage = "exact";
    std::vector<std::string> basic{"permanent_basic_farmland", "永久基本农田"};
    vectors::IndicatorOptions o;
  };
  auto a = std::make_shared<Args>();
  add_parcel_options(cmd, a->parcels);
  CLI::Option* land_class =
      cmd->add_option("--land-class-field", a->land_class_field,
                      "Field whose values mark permanent basic farmland ('' = none)")
          ->capture_default_str();
  cmd->add_option("--basic-farmland", a->basic, "Values of that field meaning basic farmland")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--ndvi-before", a->o.ndvi_before, "NDVI of date 1 (farmwatch indices)");
  cmd->add_option("--ndvi-after", a->o.ndvi_after, "NDVI of date 2");
  cmd->add_option("--change-class", a->o.change_class, "change_class.tif (farmwatch change)");
  cmd->add_option("--change-cover", a->o.change_cover,
                  "change_cover.tif (farmwatch change --cover): changed areas from the "
                  "sub-pixel cover instead of whole pixels");
  cmd->add_option("--vegetated-ndvi", a->o.vegetated_ndvi, "NDVI above which a cell is vegetated")
      ->capture_default_str();
  cmd->add_option("--alarm-mu", a->o.alerts.alarm_mu, "Alarm: encroachment on basic farmland, mu")
      ->capture_default_str();
  cmd->add_option("--alarm-ratio", a->o.alerts.alarm_ratio, "Alarm: encroached share of the parcel")
      ->capture_default_str();
  cmd->add_option("--coverage", a->coverage, "exact, center or all_touched")
      ->check(CLI::IsMember({"exact", "center", "all_touched"}))
      ->capture_default_str();
  cmd->add_option("--out", a->out, "Parcels with indicators: .geojson, .gpkg or .csv")->required();
  cmd->add_option("--summary", a->summary, "Summary CSV by township and village");
  cmd->callback([&action, a, land_class] {
    action = [a, land_class] {
      std::vector<vectors::ZonalRaster> rasters;
      for (const auto* f :
           {&a->o.ndvi_before, &a->o.ndvi_after, &a->o.change_class, &a->o.change_cover}) {
        if (!f->empty()) rasters.push_back({*f, 1, "", {}});
      }
      if (rasters.empty()) throw_usage("give --ndvi-before, --ndvi-after or --change-class");
      const Grid grid = vectors::zonal_grid(rasters);
      vectors::ParcelOptions po = a->parcels.options();
      po.land_class_field = a->land_class_field;
      po.basic_farmland_values = a->basic;
      // The default land-class field is optional; one named by the user must exist.
      po.land_class_optional = land_class->count() == 0;
      const vectors::ParcelSet set = vectors::load_parcels(po, grid);
      a->o.mode = vectors::parse_coverage_mode(a->coverage);
      const std::string dir = std::filesystem::path(a->out).parent_path().string();
      const auto ind = run_with_progress(dir.empty() ? "." : dir, [&](const SchedulerOptions& so) {
        return vectors::compute_indicators(set, a->o, so);
      });
      vectors::write_indicators(a->out, set, ind, grid.crs());
      if (!a->summary.empty()) vectors::write_summary_csv(a->summary, set, ind, a->o);
      int counts[4] = {0, 0, 0, 0};
      for (int l : ind.alert) ++counts[l];
      std::printf("%zu parcels: %d alarm, %d warning, %d watch\n  %s\n", set.parcels.size(),
                  counts[3], counts[2], counts[1], a->out.c_str());
      if (!a->summary.empty()) std::printf("  %s\n", a->summary.c_str());
      return 0;
    };
  });
}

}  // namespace fw::cli
