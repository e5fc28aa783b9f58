// One date of imagery: its files, sensor, bands resolved to spectral roles, reflectance scaling,
// nodata, and its cloud/quality mask; and readers that put any band on the analysis grid.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/grid.hpp"
#include "engine/scheduler.hpp"
#include "rasters/sensor.hpp"

namespace fw::rasters {

enum class MaskType { kNone, kScl, kQaPixel, kBinary };
MaskType parse_mask_type(const std::string& name);  // scl, qa_pixel, binary, none
const char* mask_type_name(MaskType t);

struct MaskOptions {
  std::string file;  // "" = no mask raster
  MaskType type = MaskType::kNone;
  int band = 1;
  bool snow_invalid = false;  // SCL 11 / QA_PIXEL snow bit also invalid
  int buffer = 0;             // pixels of the analysis grid around clouds and shadows
};

struct ImageryOptions {
  std::vector<std::string> files;  // one multiband file, several single-band files, or a VRT
  std::string sensor = "auto";     // sentinel2, landsat89, gf1wfv, gf6wfv, gf2pms, generic, auto
  std::string band_map;            // "red=3,nir=8" (roles or band names = 1-based index or name)
  std::optional<double> scale;     // reflectance = DN * scale + offset (overrides everything)
  std::optional<double> offset;
  std::optional<double> boa_offset;  // Sentinel-2 DN offset (-1000 from processing baseline 04.00)
  std::optional<double> nodata;      // DN meaning no data (overrides the file and the sensor)
  MaskOptions mask;
  std::string label = "input";  // for messages: "date 1", "before"...
};

struct BandInfo {
  std::string name;         // canonical band name ("B4", "SR_B4"), or ""
  std::string description;  // the file's band description
  std::string file;
  int band = 1;         // in the file
  int stack_index = 1;  // across all input files, 1-based
  Grid grid;
  GDALDataType type = GDT_Unknown;
  double scale = 1.0, offset = 0.0;
  std::optional<double> nodata, saturated;
};

class Imagery {
 public:
  static Imagery open(const ImageryOptions& options);

  const ImageryOptions& options() const { return options_; }
  const SensorPreset& sensor() const { return *sensor_; }
  const std::vector<BandInfo>& bands() const { return bands_; }
  bool has(Role r) const { return role_band_[static_cast<std::size_t>(r)] >= 0; }
  // The band for a role; throws fw::Error (input) naming the files and listing their bands.
  const BandInfo& band(Role r, const std::string& needed_by = {}) const;
  // The grid of the finest band among those with a role (the native analysis grid).
  const Grid& grid() const { return grid_; }
  // "band 1 'B2' (blue), band 2 'B3' (green), ..."
  std::string describe_bands() const;
  std::string files_text() const;

 private:
  ImageryOptions options_;
  const SensorPreset* sensor_ = nullptr;
  std::vector<BandInfo> bands_;
  std::array<int, kRoleCount> role_band_{};
  Grid grid_;
};

enum class Resampling { kNearest, kBilinear, kAverage };

// One band of a raster of its own (a DEM, an LST raster) as the band readers want it: its grid,
// type, scale, offset and nodata. Throws fw::Error (input) naming the file when it cannot be read,
// lacks the band or a CRS, or does not overlap `analysis`; `what` names it in messages ("DEM").
BandInfo external_band(const std::string& file, int band, const Grid& analysis,
                       const std::string& what);

// Reads one band on the analysis grid: directly when the grids are the same, by offset when they
// share the lattice, through GDAL's warper (a warped VRT, window by window) otherwise. Safe to
// call from several threads (each has its own dataset handle).
class BandReader {
 public:
  BandReader(const BandInfo& band, const Grid& analysis, Resampling resampling);
  // Surface reflectance; NaN where the pixel is nodata, saturated or outside the band's raster.
  void read_reflectance(const Window& win, float* out);
  // Raw values as `type`; `fill` outside the raster.
  void read_raw(const Window& win, GDALDataType type, void* out, double fill);
  bool warped() const { return mode_ == Mode::kWarp; }

 private:
  enum class Mode { kDirect, kOffset, kReplicate, kWarp };
  BandInfo band_;
  Mode mode_ = Mode::kDirect;
  int64_t dcol_ = 0, drow_ = 0;
  int factor_ = 1;  // kReplicate: source pixel = factor x factor analysis pixels
  int src_band_ = 1;
  std::unique_ptr<DatasetPool> pool_;
};

// Valid-pixel mask of one date on the analysis grid (1 = valid, 0 = masked), from SCL classes,
// Landsat QA_PIXEL bits or a binary mask, with an optional buffer around clouds and shadows.
class MaskReader {
 public:
  MaskReader(const MaskOptions& options, const Grid& analysis);
  // ANDs the mask into `valid` (win.pixels() values).
  void apply(const Window& win, uint8_t* valid);
  int halo() const { return options_.buffer; }

 private:
  MaskOptions options_;
  std::unique_ptr<BandReader> reader_;
  int64_t width_, height_;
};

// The dates' masks sampled on a coarse copy of `grid` (cells of `factor` x `factor` pixels,
// at most `max_side` cells a side), at each cell's centre by nearest neighbour: 1 where every
// date's mask calls it valid (a date without a mask is valid everywhere). Cheap (one coarse read
// per mask) and deterministic: what sharded runs weigh their windows by.
struct ValidSamples {
  int64_t factor = 1;
  Grid coarse;
  std::vector<uint8_t> valid;  // coarse.width() x coarse.height(), row-major
  // The valid pixels of `w` (a window of `grid`), each coarse cell's pixels counted by their
  // overlap with `w`.
  int64_t valid_pixels(const Window& w) const;
};
ValidSamples sample_valid(const std::vector<const Imagery*>& dates, const Grid& grid,
                          int64_t max_side = 1024);

// The analysis grid: by default the first date's grid; or a chosen CRS, resolution and extent.
struct GridSpec {
  std::string crs;               // "" = the first date's CRS
  double resolution = 0;         // 0 = the first date's
  std::optional<Extent> extent;  // in the analysis CRS; default: the first date's extent
};
// Checks that every date overlaps the analysis grid; throws fw::Error (input) naming the date
// that does not.
Grid analysis_grid(const std::vector<const Imagery*>& dates, const GridSpec& spec = {});

}  // namespace fw::rasters
