// `farmwatch zonal`: exact (or centre / all-touched) zonal statistics of rasters per parcel.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/commands.hpp"
#include "cli/imagery_options.hpp"
#include "cli/parcel_options.hpp"
#include "engine/hash.hpp"
#include "engine/log.hpp"
#include "engine/scheduler.hpp"
#include "engine/shard.hpp"
#include "engine/versions.hpp"
#include "pipelines/run.hpp"
#include "pipelines/shards.hpp"
#include "vectors/zonal.hpp"

namespace fw::cli {

void add_zonal(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "zonal", "Zonal statistics of one or more rasters (one grid) per parcel, in one pass");
  struct Args {
    std::vector<std::string> rasters, stats{"count", "mean"};
    ParcelArgs parcels;
    std::string coverage = "exact", out;
    std::string shard, run_dir, merge;
    int shards = 0;
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
  cmd->add_option("--out", a->out, "Output: .csv, .geojson or .gpkg");
  cmd->add_option("--shard", a->shard,
                  "Compute only shard i of N (i/N, 0-based) into --run-dir (docs/scale-out.md)");
  cmd->add_option("--run-dir", a->run_dir, "Shared run folder of a sharded run");
  cmd->add_option("--merge", a->merge,
                  "Merge the shards of this run folder (with --shards N) into --out");
  cmd->add_option("--shards", a->shards, "The shard count, for --merge")
      ->check(CLI::Range(1, 1000000));
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
      // The run's key: the inputs' contents, the options and the window budget, so that shards
      // and the merge of different runs or configurations are told apart.
      std::string what = farmwatch_version() + "|zonal|" + a->coverage + "|" +
                         std::to_string(default_memory_mib());
      for (const auto& st : a->stats) what += "|" + st;
      for (const auto& r : rasters)
        what += "|" + pipelines::hash_file(r.path) + ":" + std::to_string(r.band);
      what += "|" + pipelines::hash_file(po.file) + "|" + po.layer + "|" + po.id_field;
      uint64_t h = 0;
      for (const char ch : what) h = mix64(h ^ static_cast<unsigned char>(ch));
      char key[17];
      std::snprintf(key, sizeof key, "%016llx", static_cast<unsigned long long>(h));
      if (!a->shard.empty()) {
        // One shard: its windows' accumulators into <run-dir>/shards/<i>, published at once.
        if (a->run_dir.empty()) throw_usage("--shard needs --run-dir (the shared run folder)");
        const ShardSpec spec = ShardSpec::parse(a->shard);
        pipelines::ShardOutput out(a->run_dir, spec, key);
        const auto t0 = std::chrono::steady_clock::now();
        try {
          run_with_progress(a->run_dir, [&](const SchedulerOptions& so) {
            vectors::zonal_stats_shard(set, rasters, zo, spec, out.staging() + "/zonal.part", key,
                                       so);
            return 0;
          });
        } catch (const Error& e) {
          out.fail(e.message());
          throw;
        }
        out.publish(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        std::printf("shard %s of run %s: %s\n", spec.text().c_str(), key,
                    pipelines::shard_folder(a->run_dir, spec.index).c_str());
        return 0;
      }
      if (a->out.empty()) throw_usage("--out is required (or --shard i/N --run-dir DIR)");
      const std::string dir = std::filesystem::path(a->out).parent_path().string();
      vectors::ZonalTable table;
      if (!a->merge.empty()) {
        // Every shard checked before anything is read; one merge at a time per run folder.
        if (a->shards < 1) throw_usage("--merge needs --shards N");
        pipelines::RunLock lock(a->merge);
        pipelines::check_shards(a->merge, a->shards, key);
        std::vector<std::string> files;
        for (int i = 0; i < a->shards; ++i)
          files.push_back(pipelines::shard_folder(a->merge, i) + "/zonal.part");
        table = run_with_progress(dir.empty() ? "." : dir, [&](const SchedulerOptions& so) {
          return vectors::zonal_stats_merge(set, rasters, zo, files, key, so);
        });
      } else {
        table = run_with_progress(dir.empty() ? "." : dir, [&](const SchedulerOptions& so) {
          return vectors::zonal_stats(set, rasters, zo, so);
        });
      }
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
