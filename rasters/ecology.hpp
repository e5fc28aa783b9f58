// Ecological indicators of two dates: fractional vegetation cover (FVC) and the remote-sensing
// ecological index (RSEI, Xu 2013), per pixel, streamed window by window.
//
// FVC, dimidiate pixel model: (NDVI - NDVI_soil) / (NDVI_veg - NDVI_soil), clipped to [0, 1];
// NDVI_soil and NDVI_veg are each date's 5 % and 95 % cumulative percentiles of valid NDVI
// (configurable), or fixed values.
//
// RSEI combines four components, each min-max normalised over the valid land pixels (water is
// masked):
//  - greenness: NDVI;
//  - wetness: the tasseled-cap wetness, with published coefficients per sensor;
//  - dryness: NDBSI = (SI + IBI) / 2, the bare-soil index and the index-based built-up index;
//  - heat: land surface temperature from a supplied LST raster or the thermal band (Landsat
//    C2 L2 ST_B10, kelvin); without one, the three-component variant (greenness, wetness,
//    dryness), as documented.
// Water is MNDWI above a threshold (0) and above NDVI, and dark in SWIR1 (below 0.15): blue steel
// roofs have a positive MNDWI but a higher NDVI, white steel roofs a positive MNDWI above their
// NDVI but a bright SWIR1. The normalised components are combined by principal component analysis of
// their covariance (accumulated window by window, merged in window order: bounded memory, the same
// bits for any thread count); the first component, oriented so that greenness loads positively
// (higher is better), is min-max normalised to [0, 1] and graded poor, fair, moderate, good,
// excellent.
//
// In the joint mode (the default) both dates share one normalisation and one PCA, so that an
// unchanged pixel keeps its RSEI and grade changes are comparable; the per-date mode is Xu's
// single-date index applied to each date.
//
// Three passes: (1) the bands are read once, the components written to an unlinked scratch file
// and their statistics accumulated; (2) the first component's range; (3) the outputs.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/grid.hpp"
#include "engine/scheduler.hpp"
#include "rasters/imagery.hpp"
#include "rasters/stats.hpp"

namespace fw::rasters {

// Tasseled-cap wetness coefficients for blue, green, red, NIR, SWIR1 and SWIR2 reflectance.
struct WetnessCoefficients {
  std::string id;      // landsat89, sentinel2, landsat7, landsat5, custom
  std::string source;  // the publication
  std::array<double, 6> c{};
};
const std::vector<WetnessCoefficients>& wetness_sets();
// "landsat89", "sentinel2", "landsat7", "landsat5", or six numbers "0.15,0.20,...". Throws
// fw::Error (usage) listing the sets.
WetnessCoefficients parse_wetness(const std::string& text);
// The published set for a sensor preset id (landsat89, sentinel2); none for the others.
std::optional<WetnessCoefficients> wetness_for_sensor(const std::string& sensor_id);

// Per-pixel formulas (reflectance; NaN when undefined).
float ndbsi(float blue, float green, float red, float nir, float swir1);
float tc_wetness(const std::array<double, 6>& c, float blue, float green, float red, float nir,
                 float swir1, float swir2);
// Clipped to [0, 1]; NaN for NaN NDVI.
double fvc_of(double ndvi, double ndvi_soil, double ndvi_veg);
// 1..5: the number of breaks at or below v, plus one (v NaN: 0).
int grade_of(double v, const std::array<double, 4>& breaks);

// Grade names (index 1..5) of RSEI and FVC.
const std::array<const char*, 6>& rsei_grade_names();
const std::array<const char*, 6>& fvc_level_names();
// rsei_grade_change.tif: 1..9 = the grade moved by -4..+4 (5 unchanged), 0 = no data.
constexpr int kGradeChangeNodata = 0, kGradeUnchanged = 5;
const std::array<const char*, 10>& grade_change_names();

struct FvcOptions {
  double low_percent = 5, high_percent = 95;            // NDVI_soil and NDVI_veg percentiles
  std::optional<double> ndvi_soil, ndvi_veg;            // fixed values instead
  std::array<double, 4> breaks = {0.2, 0.4, 0.6, 0.8};  // five cover levels
};

enum class RseiMode { kJoint, kPerDate };
RseiMode parse_rsei_mode(const std::string& text);  // joint, per_date

struct EcologyDate {
  const Imagery* imagery = nullptr;
  std::string lst;  // a land-surface-temperature raster ("" = the thermal band, if any)
};

struct EcologyOptions {
  FvcOptions fvc;
  std::string wetness = "auto";  // auto (the sensor's set), a set id, or six coefficients
  std::string heat = "auto";     // auto (LST raster or thermal band when both dates have one),
                                 // none (three components), required (an error without)
  std::optional<double> water_mndwi = 0.0;  // water (masked in RSEI) above; none = no mask
  RseiMode mode = RseiMode::kJoint;
  std::array<double, 4> rsei_breaks = {0.2, 0.4, 0.6, 0.8};
  double min_change = 0.1;  // a grade change counts when RSEI moved at least this much
  // Mixed pixels at the rim of a changed area: with the majority rule (the default) a changed
  // pixel next to an unchanged one keeps its change only when its RSEI moved at least half as
  // much as its strongest neighbour moving the same way (the pixel is mostly changed), so that
  // areas come out unbiased; false: every pixel whose grade moved counts whole.
  bool majority_rule = true;
  std::string out_dir;
  std::string compress = "DEFLATE";
  int level = 1;
  // FVC and RSEI as UInt16 x 10000 (GDAL scale 1e-4, nodata 65535; QGIS and farmwatch's zonal
  // statistics apply the scale) instead of Float32: half the bytes to compress and store.
  bool uint16 = false;
};

// One principal component analysis: of both dates (joint) or of one.
struct Pca {
  std::vector<std::string> components;  // ndvi, wet, ndbsi[, lst]
  std::vector<double> min, max;         // normalisation of each component
  std::vector<double> mean;             // of the normalised components
  std::vector<double> covariance;       // of the normalised components, row-major d x d
  std::vector<double> eigenvalues;      // descending
  std::vector<double> loadings;         // the first component, greenness loading positive
  double variance_share = 0;            // eigenvalue 1 / sum
  double pc1_min = 0, pc1_max = 0;      // the range of the first component's scores
  int64_t pixels = 0;                   // valid land pixels that entered it
};

struct EcologyDateStats {
  int64_t valid = 0;  // pixels valid in the bands and the mask
  int64_t land = 0;   // of which not water, with every component defined (RSEI pixels)
  double ndvi_soil = 0, ndvi_veg = 0;
  double fvc_mean = 0, rsei_mean = 0;
  std::array<int64_t, 6> rsei_grades{};  // pixels per grade 1..5
  std::array<int64_t, 6> fvc_levels{};   // pixels per level 1..5
};

struct EcologyResult {
  std::vector<std::string> components;
  std::string heat;  // "lst raster", "thermal band" or "none (three-component variant)"
  WetnessCoefficients wetness;
  RseiMode mode = RseiMode::kJoint;
  std::array<EcologyDateStats, 2> dates;
  std::vector<Pca> pca;                    // one (joint) or two (per date)
  std::array<int64_t, 10> grade_change{};  // pixels per code 1..9
  int64_t degraded = 0, improved = 0;      // pixels whose grade fell / rose
  std::vector<std::string> files;          // fvc_t0, fvc_t1, rsei_t0, rsei_t1, grade change
};

// Writes fvc_t0.tif, fvc_t1.tif, rsei_t0.tif, rsei_t1.tif (Float32, nodata -9999, or UInt16) and
// rsei_grade_change.tif (Byte, colour table and names) into options.out_dir, atomically.
// Throws fw::Error: input (missing bands, no wetness coefficients for the sensor, no heat
// source when required), no_data (a date without a valid land pixel).
EcologyResult compute_ecology(const EcologyDate& t0, const EcologyDate& t1, const Grid& grid,
                              const EcologyOptions& options,
                              const SchedulerOptions& scheduler = {});

// The PCA of d components from their (weighted) covariance and ranges; exposed for tests.
Pca rsei_pca(const Covariance& raw, const std::vector<std::string>& names,
             const std::vector<double>& min, const std::vector<double>& max);

}  // namespace fw::rasters
