// The ecology stage: FVC and RSEI of both dates and their grade change (rasters/ecology.hpp),
// slope when a DEM is given (rasters/terrain.hpp), per-zone indicators and alerts and per-parcel
// terrain (vectors/ecozones.hpp), and their files. `farmwatch ecology` and the monitoring run
// call this.
#pragma once

#include <optional>
#include <string>

#include "rasters/ecology.hpp"
#include "rasters/terrain.hpp"
#include "vectors/ecozones.hpp"

namespace fw::pipelines {

struct EcologyRun {
  const rasters::Imagery* before = nullptr;
  const rasters::Imagery* after = nullptr;
  Grid grid;
  std::string lst_before, lst_after;            // LST rasters ("" = the thermal band, if any)
  rasters::EcologyOptions eco;                  // out_dir is set from out_dir
  rasters::SlopeOptions slope;                  // dem "" = no terrain; out is set from out_dir
  const vectors::ParcelSet* zones = nullptr;    // or null
  const vectors::ParcelSet* parcels = nullptr;  // for terrain (or null)
  vectors::ZoneIndicatorOptions zone;  // rules, fields, default sensitivity; rasters are set here
  std::string change_class;            // change_class.tif ("" = none)
  double steep_share = 0.5;            // a parcel is steep farmland from this share above 25 deg
  std::string out_dir;
};

struct EcologyRunResult {
  rasters::EcologyResult eco;
  std::optional<rasters::SlopeResult> slope;
  std::optional<vectors::ZoneIndicators> zones;
  std::optional<vectors::Terrain> terrain;  // per parcel
  std::vector<std::string> files;
};

EcologyRunResult run_ecology(const EcologyRun& run, const SchedulerOptions& scheduler = {});

// ecology.json: the components, the PCA (loadings, share of variance), FVC end members and
// per-date statistics, the grade changes and the slope summary.
std::string ecology_json(const EcologyRunResult& r);

}  // namespace fw::pipelines
