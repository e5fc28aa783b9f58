// `farmwatch indices`: spectral indices of one date as Cloud-Optimized GeoTIFFs.
#include <cstdio>
#include <filesystem>

#include "cli/commands.hpp"
#include "cli/imagery_options.hpp"
#include "engine/log.hpp"
#include "engine/progress.hpp"
#include "rasters/indices.hpp"

namespace fw::cli {

void add_indices(CLI::App& app, Action& action) {
  auto* cmd =
      app.add_subcommand("indices", "Spectral indices of one date (Cloud-Optimized GeoTIFF)");
  struct Args {
    ImageryArgs im;
    std::string index, out, compress = "DEFLATE", align_to, t_srs;
    double resolution = 0;
    int level = 1;
    bool int16 = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--input", a->im.files,
                  "Input raster(s): one multiband file, several band files, or a VRT")
      ->required();
  add_sensor_options(cmd, a->im);
  cmd->add_option("--mask", a->im.mask, "Cloud/quality mask raster (see --mask-type)");
  cmd->add_option("--index", a->index,
                  "Indices, comma-separated: ndvi, evi, savi, msavi2, ndwi, "
                  "mndwi, ndbi, bsi, nbr")
      ->required();
  cmd->add_option("--out", a->out, "Output folder: one <index>.tif per index")->required();
  cmd->add_flag("--int16", a->int16, "Write Int16 x 10000 instead of Float32");
  cmd->add_option("--compress", a->compress, "DEFLATE, ZSTD, LZW or NONE")
      ->check(CLI::IsMember({"DEFLATE", "ZSTD", "LZW", "NONE"}, CLI::ignore_case))
      ->capture_default_str();
  cmd->add_option("--level", a->level, "Compression level")->capture_default_str();
  cmd->add_option("--align-to", a->align_to, "Compute on this raster's grid (warping if needed)");
  cmd->add_option("--t-srs", a->t_srs, "Analysis CRS (for example EPSG:32650)");
  cmd->add_option("--resolution", a->resolution, "Analysis pixel size, in CRS units");
  cmd->callback([&action, a] {
    action = [a] {
      const auto indices = rasters::parse_index_list(a->index);
      const rasters::Imagery im = rasters::Imagery::open(a->im.options("input"));
      std::vector<const rasters::Imagery*> dates{&im};
      std::optional<rasters::Imagery> ref;
      rasters::GridSpec spec;
      spec.crs = a->t_srs;
      spec.resolution = a->resolution;
      Grid grid;
      if (!a->align_to.empty()) {
        rasters::ImageryOptions ro;
        ro.files = {a->align_to};
        ro.sensor = "generic";
        ro.label = "the --align-to raster";
        ref = rasters::Imagery::open(ro);
        grid = rasters::analysis_grid({&*ref, &im}, spec);
      } else {
        grid = rasters::analysis_grid(dates, spec);
      }
      std::string up = a->compress;
      for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      rasters::IndexJob job;
      job.indices = indices;
      job.out_dir = a->out;
      job.int16 = a->int16;
      job.compress = up;
      job.level = a->level;
      const auto r = run_with_progress(a->out, [&](const SchedulerOptions& so) {
        return rasters::compute_indices(im, grid, job, so);
      });
      const double frac = r.total ? static_cast<double>(r.valid) / r.total : 0.0;
      log::info("valid pixels", {{"input", im.files_text()},
                                 {"valid", std::to_string(r.valid)},
                                 {"total", std::to_string(r.total)}});
      std::printf("%s: %lld of %lld pixels valid (%.2f %%), sensor %s\n", im.files_text().c_str(),
                  static_cast<long long>(r.valid), static_cast<long long>(r.total), 100.0 * frac,
                  im.sensor().id.c_str());
      for (const auto& f : r.files) std::printf("  %s\n", f.c_str());
      return 0;
    };
  });
}

}  // namespace fw::cli
