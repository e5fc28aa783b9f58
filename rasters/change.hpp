// Change detection between two dates: index differencing with automatic thresholds (median +-
// k MAD, or Otsu), change categories from data-driven rules over the before/after indices and
// bands (docs/change.md), intensity grades, and the outputs change_class.tif,
// change_intensity.tif, change_magnitude.tif and change_stats.json.
//
// Two passes over the rasters: a reduction (histograms of the index differences over the pixels
// valid at both dates, merged in window order), then classification with the thresholds.
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include "engine/scheduler.hpp"
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
  kBlueRed1,
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

struct ChangeOptions {
  std::string threshold_method = "mad";  // mad or otsu
  double mad_k = 5.0;                    // threshold = k * 1.4826 * MAD from the median
  // Fixed thresholds (> 0) replace the automatic ones: ndvi, ndbi, mndwi, bsi.
  std::array<double, 4> fixed{0, 0, 0, 0};
  std::array<double, 3> intensity_steps{1.0, 2.0, 3.0};  // slight, moderate, severe
  std::vector<ChangeRule> rules = default_rules();
  std::string out_dir;
};

struct IndexThreshold {
  std::string index;
  double median = 0, mad = 0, threshold = 0;  // threshold on |d - median|
  std::string method;
};

struct ChangeResult {
  std::array<IndexThreshold, 4> thresholds;  // ndvi, ndbi, mndwi, bsi
  int64_t valid = 0, nodata = 0;
  std::array<std::array<int64_t, 4>, kChangeCategories> counts{};  // [category][intensity 0..3]
  double pixel_area_m2 = 0;
  std::vector<std::string> files;
};

// Two dates on one analysis grid (their overlap on the first date's lattice).
Grid change_grid(const Imagery& before, const Imagery& after);

ChangeResult detect_change(const Imagery& before, const Imagery& after, const Grid& grid,
                           const ChangeOptions& options, const SchedulerOptions& scheduler = {});

}  // namespace fw::rasters
