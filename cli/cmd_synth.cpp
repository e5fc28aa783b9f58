// `farmwatch synth`: a deterministic synthetic two-date scene with its truth.
#include <cstdio>

#include "cli/commands.hpp"
#include "engine/progress.hpp"
#include "pipelines/synth.hpp"

namespace fw::cli {

void add_synth(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "synth", "Write a synthetic two-date Sentinel-2-like scene, parcels, zones and truth.json");
  struct Args {
    std::string out, size = "1024";
    int parcels = 200;
    uint64_t seed = 1;
    bool lst = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--out", a->out, "Output folder")->required();
  cmd->add_option("--size", a->size, "Scene size in 10 m pixels: W or WxH")->capture_default_str();
  cmd->add_option("--parcels", a->parcels, "Number of parcels")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  cmd->add_option("--seed", a->seed, "Random seed")->capture_default_str();
  cmd->add_flag("--lst", a->lst, "Also write a land surface temperature raster per date");
  cmd->callback([&action, a] {
    action = [a] {
      synth::Options o;
      o.out = a->out;
      synth::parse_size(a->size, o.width, o.height);
      o.parcels = a->parcels;
      o.seed = a->seed;
      o.lst = a->lst;
      ProgressReporter progress(stderr_is_terminal());
      SchedulerOptions so;
      so.progress = progress.fn();
      const synth::Result r = synth::generate(o, so);
      progress.finish();
      std::printf("wrote %d parcels, %d zones, %d planted changes, %d clouds:\n", r.parcels,
                  r.zones, r.changes, r.clouds);
      for (const auto& f : r.files) std::printf("  %s\n", f.c_str());
      return 0;
    };
  });
}

}  // namespace fw::cli
