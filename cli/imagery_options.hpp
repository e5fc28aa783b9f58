// Command-line options that describe one date of imagery, shared by the subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/progress.hpp"
#include "engine/scheduler.hpp"
#include "rasters/imagery.hpp"

namespace fw::cli {

struct ImageryArgs {
  std::vector<std::string> files;
  std::string sensor = "auto", bands, mask, mask_type = "scl";
  std::optional<double> scale, offset, boa_offset, nodata;
  int mask_buffer = 0;
  bool snow = false;

  rasters::ImageryOptions options(const std::string& label) const {
    rasters::ImageryOptions o;
    o.files = files;
    o.sensor = sensor;
    o.band_map = bands;
    o.scale = scale;
    o.offset = offset;
    o.boa_offset = boa_offset;
    o.nodata = nodata;
    o.label = label;
    if (!mask.empty()) {
      o.mask.file = mask;
      o.mask.type = rasters::parse_mask_type(mask_type);
      o.mask.buffer = mask_buffer;
      o.mask.snow_invalid = snow;
    }
    return o;
  }
};

// Adds --sensor, --bands, --scale, --offset, --boa-offset, --nodata, --mask-type, --mask-buffer,
// --snow-invalid (the per-file options are added by each command).
inline void add_sensor_options(CLI::App* cmd, ImageryArgs& a) {
  cmd->add_option("--sensor", a.sensor,
                  "sentinel2, landsat89, gf1wfv, gf6wfv, gf2pms, generic, or auto (from band names "
                  "and metadata)")
      ->capture_default_str();
  cmd->add_option("--bands", a.bands,
                  "Band map: role=band, for example red=3,nir=8 (roles: blue, "
                  "green, red, nir, swir1, swir2; band: 1-based index or name)");
  cmd->add_option("--scale", a.scale,
                  "Reflectance = DN * scale + offset (overrides sensor and file)");
  cmd->add_option("--offset", a.offset, "Reflectance offset (with --scale)");
  cmd->add_option("--boa-offset", a.boa_offset,
                  "Sentinel-2 BOA_ADD_OFFSET in DN (-1000 from processing baseline 04.00)");
  cmd->add_option("--nodata", a.nodata, "DN that means no data (overrides file and sensor)");
  cmd->add_option("--mask-type", a.mask_type, "scl, qa_pixel or binary")
      ->check(CLI::IsMember({"scl", "qa_pixel", "binary"}))
      ->capture_default_str();
  cmd->add_option("--mask-buffer", a.mask_buffer, "Pixels masked around clouds and shadows")
      ->check(CLI::Range(0, 100));
  cmd->add_flag("--snow-invalid", a.snow, "Mask snow too (SCL 11, QA_PIXEL bit 5)");
}

// Creates the output folder (a clear error when it cannot) and runs `work` with a progress bar on
// a terminal, periodic log lines otherwise.
template <class Work>
auto run_with_progress(const std::string& out_dir, Work&& work) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw_output("cannot create folder: " + ec.message(), {.file = out_dir});
  ProgressReporter progress(stderr_is_terminal());
  SchedulerOptions so;
  so.progress = progress.fn();
  auto result = work(so);
  progress.finish();
  return result;
}

}  // namespace fw::cli
