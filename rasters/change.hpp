// Change detection between two dates: index differencing with automatic thresholds (median +-
// k MAD, or Otsu), change vector analysis, IR-MAD, relative radiometric normalisation, change
// categories from data-driven rules over the before/after indices and bands (docs/change.md),
// intensity grades, and the outputs change_class.tif, change_intensity.tif,
// change_magnitude.tif (plus change_direction.tif for CVA, irmad_chi2.tif, irmad_no_change.tif
// and optionally mad_variates.tif for IR-MAD) and change_stats.json.
//
// Passes over the rasters: a reduction (histograms of the differences over the pixels valid at
// both dates, merged in window order; for IR-MAD also a fixed, hash-selected sample of pixels),
// IR-MAD iterations (on the sample in memory, or window by window over the whole scene), then
// classification with the thresholds. Normalisation adds one reduction pass.
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include "engine/scheduler.hpp"
#include "rasters/cover.hpp"
#include "rasters/imagery.hpp"

namespace fw::rasters {

enum class ChangeCategory : uint8_t {
  kNoChange = 0,
  kConstruction = 1,
  kBareSoil = 2,
  kWaterGain = 3,
  kWaterLoss = 4,
  kVegetationLoss = 5,
  kVegetationGain = 6,
  kNoData = 255,
};
constexpr int kChangeCategories = 7;  // 0..6
const char* category_name(ChangeCategory c);
ChangeCategory parse_category(const std::string& name);  // throws fw::Error (usage)

// The per-pixel variables rules can use (see docs/change.md).
enum class ChangeVar {
  kNdvi0,
  kNdvi1,
  kDNdvi,
  kZNdvi,
  kNdbi0,
  kNdbi1,
  kDNdbi,
  kZNdbi,
  kMndwi0,
  kMndwi1,
  kDMndwi,
  kZMndwi,
  kBsi0,
  kBsi1,
  kDBsi,
  kZBsi,
  kBlue0,
  kBlue1,
  kDBlue,
  kDNir,
  kDSwir1,
  kBlueRed1,
  kRedGreen1,
  kSwirRatio1,
  kMagnitude,
  kCount
};
const char* var_name(ChangeVar v);
ChangeVar parse_var(const std::string& name);  // throws fw::Error (usage) listing the variables

struct Condition {
  ChangeVar var;
  bool greater;  // var > value, else var < value
  double value;
};

struct ChangeRule {
  ChangeCategory category;
  std::vector<Condition> all;  // every condition must hold
};

// The default rules, in order (first match wins), grounded in published spectra (docs/change.md).
std::vector<ChangeRule> default_rules();
// "water_gain: mndwi1 > 0, zmndwi > 1" -> a rule; throws fw::Error (usage) naming the text.
ChangeRule parse_rule(const std::string& text);

// Variables whose difference (date 2 - date 1) gets a scene-wide threshold: the four indices,
// then the six reflectance bands (CVA can use any of them).
constexpr int kDiffVars = 10;
const char* diff_var_name(int var);
int parse_diff_var(const std::string& name);  // throws fw::Error (usage) listing the names

struct ChangeOptions {
  std::string method = "diff";           // diff (index differencing), cva or irmad
  std::string threshold_method = "mad";  // mad or otsu
  double mad_k = 5.0;                    // threshold = k * 1.4826 * MAD from the median
  // Fixed thresholds (> 0) replace the automatic ones: ndvi, ndbi, mndwi, bsi.
  std::array<double, 4> fixed{0, 0, 0, 0};
  std::array<double, 3> intensity_steps{1.0, 2.0, 3.0};  // slight, moderate, severe
  std::vector<ChangeRule> rules = default_rules();
  // CVA: the variables of the change vector (indices or bands); the direction is the angle of
  // the first two.
  std::vector<std::string> cva_vars = {"ndvi", "ndbi", "mndwi", "bsi"};
  // IR-MAD: a pixel is a change candidate when its no-change probability is below alpha.
  double irmad_alpha = 1e-3;
  int irmad_max_iterations = 100;
  double irmad_tolerance = 1e-6;
  // Pixels the IR-MAD iterations use: a fixed sample of about this many pixels selected by a
  // hash of their position (independent of windows and threads); 0 = every valid pixel, each
  // iteration streaming the scene window by window.
  int64_t irmad_sample = 1 << 20;
  bool mad_variates = false;  // write mad_variates.tif
  // Relative radiometric normalisation of date 2 onto date 1 (orthogonal regression per band
  // over the pixels whose IR-MAD no-change probability exceeds normalize_probability).
  bool normalize = false;
  double normalize_probability = 0.95;
  // Sub-pixel change cover (rasters/cover.hpp): change_cover.tif, one band per change category,
  // the share of each pixel it covers in per cent. One more pass over both dates.
  bool cover = false;
  CoverOptions cover_options;
  std::string out_dir;
};

struct IndexThreshold {
  std::string index;
  double median = 0, mad = 0, threshold = 0;  // threshold on |d - median|
  std::string method;
};

struct Normalization {
  bool applied = false;
  std::array<double, 6> slope{1, 1, 1, 1, 1, 1}, intercept{}, correlation{};  // date 2 on date 1
  int64_t pixels = 0;  // no-change pixels the regression used
};

struct ChangeResult {
  std::string method;
  std::vector<IndexThreshold> thresholds;  // ndvi, ndbi, mndwi, bsi, then any CVA band
  int64_t valid = 0, nodata = 0;
  std::array<std::array<int64_t, 4>, kChangeCategories> counts{};  // [category][intensity 0..3]
  double pixel_area_m2 = 0;
  // IR-MAD (method irmad, or normalisation).
  std::vector<double> canonical_correlations;  // ascending
  int irmad_iterations = 0;
  bool irmad_converged = false;
  int64_t irmad_pixels = 0;  // pixels the iterations used
  // The unchanged pixels' chi-square runs above chi2(p) after reweighting: scale = median
  // chi-square / chi2(p)'s median (>= 1); the no-change probability is chi2_sf(chi2 / scale).
  double chi2_scale = 1;
  double chi2_threshold = 0;  // scale x chi2(p) at alpha: magnitude 1
  Normalization normalization;
  std::vector<std::string> files;
};

// Two dates on one analysis grid (their overlap on the first date's lattice).
Grid change_grid(const Imagery& before, const Imagery& after);

ChangeResult detect_change(const Imagery& before, const Imagery& after, const Grid& grid,
                           const ChangeOptions& options, const SchedulerOptions& scheduler = {});

}  // namespace fw::rasters
