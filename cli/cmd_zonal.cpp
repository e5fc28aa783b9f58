// `farmwatch zonal`: exact (or centre / all-touched) zonal statistics of rasters per parcel.
#include <cstdio>
#include <filesystem>

#include "cli/commands.hpp"
#include "cli/imagery_options.hpp"
#include "cli/parcel_options.hpp"
#include "engine/log.hpp"
#include "vectors/zonal.hpp"

namespace fw::cli {

void add_zonal(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "zonal", "Zonal statistics of one or more rasters (one grid) per parcel, in one pass");
  struct Args {
    std::vector<std::string> rasters, stats{"count", "mean"};
    ParcelArgs parcels;
    std::string coverage = "exact", out;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--raster", a->rasters, "Raster(s), on one grid (band 1; FILE:BAND for another)")
      ->required();
  add_parcel_options(cmd, a->parcels);
  cmd->add_option("--stats", a->stats,
                  "count sum mean min max variance stdev median pNN majority minority variety "
                  "frac coverage valid_fraction cells")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--coverage", a->coverage, "exact, center or all_touched")
      ->check(CLI::IsMember({"exact", "center", "all_touched"}))
      ->capture_default_str();
  cmd->add_option("--out", a->out, "Output: .csv, .geojson or .gpkg")->required();
  cmd->callback([&action, a] {
    action = [a] {
      std::vector<vectors::ZonalRaster> rasters;
      for (const auto& r : a->rasters) {
        vectors::ZonalRaster z;
        z.path = r;
        const auto colon = r.rfind(':');
        if (colon != std::string::npos && colon + 1 < r.size() &&
            r.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
            !std::filesystem::exists(r)) {
          z.path = r.substr(0, colon);
          z.band = std::stoi(r.substr(colon + 1));
          z.name = std::filesystem::path(z.path).stem().string() + "_b" + std::to_string(z.band);
        }
        rasters.push_back(z);
      }
      const Grid grid = vectors::zonal_grid(rasters);
      const vectors::ParcelOptions po = a->parcels.options();
      const vectors::ParcelSet set = vectors::load_parcels(po, grid);
      vectors::ZonalOptions zo;
      zo.mode = vectors::parse_coverage_mode(a->coverage);
      zo.stats = a->stats;
      const std::string dir = std::filesystem::path(a->out).parent_path().string();
      const auto table = run_with_progress(
          dir.empty() ? "." : dir,
          [&](const SchedulerOptions& so) { return vectors::zonal_stats(set, rasters, zo, so); });
      vectors::write_zonal(a->out, set, table, grid.crs());
      const auto& r = set.report;
      std::printf(
          "%lld parcels of %lld features from layer %s (%lld repaired, %lld dropped, "
          "%lld outside, %lld partly outside)\n  %s\n",
          static_cast<long long>(r.loaded), static_cast<long long>(r.features), set.layer.c_str(),
          static_cast<long long>(r.repaired), static_cast<long long>(r.dropped),
          static_cast<long long>(r.outside), static_cast<long long>(r.partly_outside),
          a->out.c_str());
      return 0;
    };
  });
}

}  // namespace fw::cli
