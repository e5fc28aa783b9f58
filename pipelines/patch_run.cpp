#include "pipelines/patch_run.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "engine/error.hpp"
#include "engine/log.hpp"

namespace fw::pipelines {

PatchRunResult run_patches(const PatchRun& run, const SchedulerOptions& so) {
  PatchRunResult res;
  std::filesystem::create_directories(run.out_dir);
  res.set = vectors::extract_patches(run.patches, run.parcels, run.zones, run.zone_options, so);
  auto& patches = res.set.patches;
  const Grid& grid = res.set.grid;
  if (run.before && run.after) {
    const std::string chips = run.out_dir + "/chips";
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < patches.size(); ++i) {
      if (patches[i].priority <= 2) todo.push_back(i);
    }
    if (!todo.empty()) std::filesystem::create_directories(chips);
    const rasters::ChipSource before(*run.before, grid), after(*run.after, grid);
    parallel_for_n(todo.size(), [&](std::size_t t) {
      vectors::Patch& p = patches[todo[t]];
      const Window box = grid.window_of({p.xmin, p.ymin, p.xmax, p.ymax});
      const int64_t m = std::max<int64_t>(run.chip_margin, std::max(box.w, box.h) / 2);
      const Window win = Window{box.x - m, box.y - m, box.w + 2 * m, box.h + 2 * m}.intersection(
          grid.full_window());
      const auto outline = vectors::outline_rings(*p.geom, grid, win);
      std::string names;
      const struct {
        const rasters::ChipSource* im;
        rasters::ChipKind kind;
        const char* suffix;
      } kinds[] = {{&before, rasters::ChipKind::kTrueColour, "before"},
                   {&after, rasters::ChipKind::kTrueColour, "after"},
                   {&before, rasters::ChipKind::kNdvi, "ndvi_before"},
                   {&after, rasters::ChipKind::kNdvi, "ndvi_after"}};
      for (const auto& k : kinds) {
        const std::string name = p.id + "_" + k.suffix + ".png";
        rasters::write_chip(*k.im, win, outline, k.kind, chips + "/" + name, run.chip_options);
        names += (names.empty() ? "" : ";") + std::string("chips/") + name;
      }
      p.chips = names;
    });
    res.chips = static_cast<int64_t>(todo.size()) * 4;
  }
  if (run.write) {
    vectors::write_patches(run.out_dir, res.set);
    for (const char* f : {"/patches.geojson", "/patches.gpkg", "/patches.csv"})
      res.files.push_back(run.out_dir + f);
  }
  int counts[4] = {0, 0, 0, 0};
  for (const auto& p : patches) ++counts[std::clamp(p.priority, 1, 3)];
  log::info(run.write ? "patches written" : "patches found",
            {{"dir", run.out_dir},
             {"patches", std::to_string(patches.size())},
             {"P1", std::to_string(counts[1])},
             {"P2", std::to_string(counts[2])},
             {"P3", std::to_string(counts[3])},
             {"chips", std::to_string(res.chips)}});
  return res;
}

}  // namespace fw::pipelines
