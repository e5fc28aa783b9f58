// The patch stage: change patches with their overlays and priority (vectors/patches.hpp), evidence
// chips for the P1 and P2 patches (rasters/chips.hpp), and the patch outputs. `farmwatch patches`
// and the monitoring run call this.
#pragma once

#include <string>
#include <vector>

#include "rasters/chips.hpp"
#include "rasters/imagery.hpp"
#include "vectors/patches.hpp"

namespace fw::pipelines {

struct PatchRun {
  vectors::PatchOptions patches;
  const vectors::ParcelSet* parcels = nullptr;  // loaded on the change grid (or null)
  const vectors::ParcelSet* zones = nullptr;
  vectors::ZoneOptions zone_options;
  const rasters::Imagery* before = nullptr;  // for chips (both, or no chips)
  const rasters::Imagery* after = nullptr;
  rasters::ChipOptions chip_options;
  int chip_margin = 8;  // cells around the patch's box (at least)
  std::string out_dir;
  bool write = true;  // write patches.geojson, .gpkg and .csv (false: the caller writes them)
};

struct PatchRunResult {
  vectors::PatchSet set;
  int64_t chips = 0;  // PNG files written
  std::vector<std::string> files;
};

PatchRunResult run_patches(const PatchRun& run, const SchedulerOptions& scheduler = {});

}  // namespace fw::pipelines
