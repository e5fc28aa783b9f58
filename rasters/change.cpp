#include "rasters/change.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>

#include <tbb/parallel_for.h>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/hash.hpp"
#include "engine/log.hpp"
#include "engine/raster_io.hpp"
#include "rasters/cog.hpp"
#include "rasters/irmad.hpp"
#include "rasters/stats.hpp"

namespace fw::rasters {
namespace {

constexpr std::array<const char*, kChangeCategories> kCategoryNames = {
    "no_change",  "construction",    "bare_soil",      "water_gain",
    "water_loss", "vegetation_loss", "vegetation_gain"};
constexpr std::array<const char*, static_cast<int>(ChangeVar::kCount)> kVarNames = {
    "ndvi0",     "ndvi1",      "dndvi",       "zndvi",    "ndbi0",  "ndbi1", "dndbi",
    "zndbi",     "mndwi0",     "mndwi1",      "dmndwi",   "zmndwi", "bsi0",  "bsi1",
    "dbsi",      "zbsi",       "blue0",       "blue1",    "dblue",  "dnir",  "dswir1",
    "blue_red1", "red_green1", "swir_ratio1", "magnitude"};
// Colours of the categories (QGIS style and colour table), index = class value.
constexpr std::array<std::array<short, 4>, kChangeCategories> kColors = {{
    {230, 230, 230, 255},  // no change
    {220, 30, 30, 255},    // construction
    {160, 100, 40, 255},   // bare soil
    {30, 90, 230, 255},    // water gain
    {120, 200, 230, 255},  // water loss
    {250, 170, 30, 255},   // vegetation loss
    {40, 170, 60, 255},    // vegetation gain
}};
constexpr float kMagNodata = -9999.0f;
constexpr uint8_t kByteNodata = 255;
constexpr double kMu = 10000.0 / 15.0;

constexpr std::array<const char*, kDiffVars> kDiffNames = {
    "ndvi", "ndbi", "mndwi", "bsi", "blue", "green", "red", "nir", "swir1", "swir2"};
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int kP = 6;  // bands per date

const std::array<Role, kP> kRoles = {Role::kBlue, Role::kGreen, Role::kRed,
                                     Role::kNir,  Role::kSwir1, Role::kSwir2};

// Readers of both dates' six bands and masks on the grid; date 2 optionally normalised onto
// date 1 (y' = (y - intercept) / slope per band).
struct PairReader {
  std::array<std::unique_ptr<BandReader>, 2 * kP> bands;
  std::unique_ptr<MaskReader> mask0, mask1;
  Normalization norm;

  PairReader(const Imagery& before, const Imagery& after, const Grid& grid) {
    for (int d = 0; d < 2; ++d) {
      const Imagery& im = d == 0 ? before : after;
      for (std::size_t k = 0; k < kP; ++k) {
        bands[static_cast<std::size_t>(d) * kP + k] = std::make_unique<BandReader>(
            im.band(kRoles[k], std::string("change detection")), grid, Resampling::kBilinear);
      }
    }
    mask0 = std::make_unique<MaskReader>(before.options().mask, grid);
    mask1 = std::make_unique<MaskReader>(after.options().mask, grid);
  }

  void read(const Window& w, std::vector<float>& planes, std::vector<uint8_t>& valid) {
    const std::size_t n = static_cast<std::size_t>(w.pixels());
    planes.resize(2 * kP * n);
    for (std::size_t k = 0; k < 2 * kP; ++k) bands[k]->read_reflectance(w, planes.data() + k * n);
    if (norm.applied) {
      for (std::size_t k = 0; k < kP; ++k) {
        float* y = planes.data() + (kP + k) * n;
        const float a = static_cast<float>(norm.intercept[k]);
        const float inv = static_cast<float>(1.0 / norm.slope[k]);
        for (std::size_t i = 0; i < n; ++i) y[i] = (y[i] - a) * inv;
      }
    }
    valid.assign(n, 1);
    mask0->apply(w, valid.data());
    mask1->apply(w, valid.data());
  }
};

inline float nd(float a, float b) {
  const float d = a + b;
  return d != 0.0f ? (a - b) / d : kNaN;
}

// One window's data: 12 reflectance planes, 8 index planes (ndvi, ndbi, mndwi, bsi of date 1,
// then of date 2), and the pixels valid at both dates with every band and index finite.
struct WindowData {
  std::size_t n = 0;
  std::vector<float> p, idx;
  std::vector<uint8_t> valid;

  void load(PairReader& reader, const Window& w) {
    reader.read(w, p, valid);
    n = valid.size();
    idx.resize(8 * n);
    for (std::size_t d = 0; d < 2; ++d) {
      const float* b = p.data() + d * kP * n;
      const float *B = b, *G = b + n, *R = b + 2 * n, *N = b + 3 * n, *S1 = b + 4 * n;
      float* o = idx.data() + d * 4 * n;
      for (std::size_t i = 0; i < n; ++i) o[i] = nd(N[i], R[i]);
      for (std::size_t i = 0; i < n; ++i) o[n + i] = nd(S1[i], N[i]);
      for (std::size_t i = 0; i < n; ++i) o[2 * n + i] = nd(G[i], S1[i]);
      for (std::size_t i = 0; i < n; ++i) o[3 * n + i] = nd(S1[i] + R[i], N[i] + B[i]);
    }
    uint8_t* v = valid.data();
    for (std::size_t k = 0; k < 2 * kP; ++k) {
      const float* x = p.data() + k * n;
      for (std::size_t i = 0; i < n; ++i) v[i] &= static_cast<uint8_t>(x[i] == x[i]);
    }
    for (std::size_t k = 0; k < 8; ++k) {
      const float* x = idx.data() + k * n;
      for (std::size_t i = 0; i < n; ++i) v[i] &= static_cast<uint8_t>(std::abs(x[i]) < 1e30f);
    }
  }
  // Date 2 minus date 1 of variable `var` (kDiffNames) at pixel i.
  float diff(int var, std::size_t i) const {
    if (var < 4)
      return idx[(4 + static_cast<std::size_t>(var)) * n + i] -
             idx[static_cast<std::size_t>(var) * n + i];
    const std::size_t k = static_cast<std::size_t>(var - 4);
    return p[(kP + k) * n + i] - p[k * n + i];
  }
};

// The MAD transform flattened for the per-pixel loops.
struct MadKernel {
  double a[kP][kP], b[kP][kP], mx[kP], my[kP], inv_sigma[kP];

  explicit MadKernel(const MadTransform& t) {
    for (int k = 0; k < kP; ++k) {
      mx[k] = t.mean_x[k], my[k] = t.mean_y[k], inv_sigma[k] = 1.0 / t.sigma[k];
      for (int i = 0; i < kP; ++i) a[k][i] = t.a(k, i), b[k][i] = t.b(k, i);
    }
  }
  // x, y: one pixel's bands (any stride); mad: kP values or null. Returns the chi-square.
  template <class T>
  double chi2(const T* x, const T* y, std::size_t stride, double* mad = nullptr) const {
    double dx[kP], dy[kP], c = 0;
    for (int k = 0; k < kP; ++k) {
      dx[k] = static_cast<double>(x[static_cast<std::size_t>(k) * stride]) - mx[k];
      dy[k] = static_cast<double>(y[static_cast<std::size_t>(k) * stride]) - my[k];
    }
    for (int i = 0; i < kP; ++i) {
      double m = 0;
      for (int k = 0; k < kP; ++k) m += a[k][i] * dx[k] - b[k][i] * dy[k];
      if (mad) mad[i] = m;
      m *= inv_sigma[i];
      c += m * m;
    }
    return c;
  }
};

// How observations are weighted in a covariance pass.
struct Weighting {
  const MadKernel* kernel = nullptr;  // null: weight 1
  // >= 0: weight 1 where the calibrated no-change probability, chi2_sf(chi2 / scale), exceeds
  // it, else 0.
  double indicator = -1, scale = 1;
  double weight(const float* row) const {
    if (!kernel) return 1.0;
    const double c = kernel->chi2(row, row + kP, 1);
    if (indicator >= 0) return chi2_sf(c / scale, kP) > indicator ? 1.0 : 0.0;
    return chi2_sf(c, kP);
  }
};

// The weighted joint covariance of `m` rows of 2 kP floats: plain sums about the first row
// (shifted, so no cancellation), turned into a mergeable Covariance.
Covariance accumulate(const float* rows, std::size_t m, const Weighting& wt) {
  constexpr int D = 2 * kP;
  if (m == 0) return Covariance(D);
  double shift[D], sw = 0, sx[D] = {}, sxx[D][D] = {};
  for (int k = 0; k < D; ++k) shift[k] = rows[k];
  for (std::size_t r = 0; r < m; ++r) {
    const float* row = rows + r * D;
    const double w = wt.weight(row);
    if (!(w > 0)) continue;
    double z[D];
    for (int k = 0; k < D; ++k) z[k] = static_cast<double>(row[k]) - shift[k];
    sw += w;
    for (int k = 0; k < D; ++k) {
      const double wz = w * z[k];
      sx[k] += wz;
      for (int l = k; l < D; ++l) sxx[k][l] += wz * z[l];
    }
  }
  if (!(sw > 0)) return Covariance(D);
  Eigen::VectorXd mean(D);
  Eigen::MatrixXd m2(D, D);
  for (int k = 0; k < D; ++k) mean[k] = sx[k] / sw;
  for (int k = 0; k < D; ++k) {
    for (int l = k; l < D; ++l) m2(k, l) = m2(l, k) = sxx[k][l] - sw * mean[k] * mean[l];
  }
  for (int k = 0; k < D; ++k) mean[k] += shift[k];
  return Covariance::from_moments(sw, std::move(mean), std::move(m2));
}

// Rows (2 kP floats) of the valid pixels of a window.
void valid_rows(const WindowData& wd, std::vector<float>& rows) {
  rows.clear();
  for (std::size_t i = 0; i < wd.n; ++i) {
    if (!wd.valid[i]) continue;
    for (std::size_t k = 0; k < 2 * kP; ++k) rows.push_back(wd.p[k * wd.n + i]);
  }
}

// The in-memory sample, in fixed chunks accumulated in parallel and merged in chunk order.
Covariance sample_pass(const std::vector<float>& sample, const Weighting& wt) {
  constexpr std::size_t kChunk = 16384, D = 2 * kP;
  const std::size_t m = sample.size() / D, chunks = (m + kChunk - 1) / kChunk;
  std::vector<Covariance> parts(chunks);
  parallel_for_n(chunks, [&](std::size_t c) {
    const std::size_t lo = c * kChunk, hi = std::min(m, lo + kChunk);
    parts[c] = accumulate(sample.data() + lo * D, hi - lo, wt);
  });
  Covariance total(static_cast<int>(D));
  for (const auto& part : parts) total.merge(part);
  return total;
}

// Orthogonal (total least squares) regression of date 2 on date 1 per band, from the joint
// covariance of the no-change pixels (Canty and Nielsen 2008).
Normalization orthogonal_regression(const Covariance& c, int64_t pixels) {
  Normalization n;
  n.applied = true;
  n.pixels = pixels;
  const Eigen::MatrixXd s = c.covariance();
  for (int k = 0; k < kP; ++k) {
    const double sxx = s(k, k), syy = s(kP + k, kP + k), sxy = s(k, kP + k);
    const double mx = c.mean()[k], my = c.mean()[kP + k];
    const double r = sxy / std::sqrt(sxx * syy);
    if (!(r > 0.3)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.3f", r);
      throw Error(ExitCode::kNoData,
                  "cannot normalise date 2: over the " + std::to_string(pixels) +
                      " invariant pixels (IR-MAD) the two dates' " +
                      kDiffNames[4 + static_cast<std::size_t>(k)] +
                      " bands are not correlated (r = " + buf +
                      "); the pair has too little unchanged ground for a relative "
                      "normalisation: run without it");
    }
    const double b = (syy - sxx + std::sqrt((syy - sxx) * (syy - sxx) + 4 * sxy * sxy)) / (2 * sxy);
    n.slope[static_cast<std::size_t>(k)] = b;
    n.intercept[static_cast<std::size_t>(k)] = my - b * mx;
    n.correlation[static_cast<std::size_t>(k)] = sxy / std::sqrt(sxx * syy);
  }
  return n;
}

// Pass 3 (optional): the sub-pixel cover per category from the classes just written and both
// dates' bands, on windows grown by the cover's halo. Returns the path written.
std::string write_cover(PairReader& reader, const Grid& grid, const WindowPlan& plan,
                        const std::string& class_path, const ChangeOptions& opt,
                        const SchedulerOptions& so) {
  constexpr int kCats = kChangeCategories - 1;
  CogOptions co;
  co.type = GDT_Byte;
  co.nodata = kByteNodata;
  co.overview_resampling = "AVERAGE";
  for (int c = 1; c <= kCats; ++c)
    co.descriptions.push_back(std::string(kCategoryNames[static_cast<std::size_t>(c)]) +
                              "_cover_percent");
  CogWriter out(opt.out_dir + "/change_cover.tif", grid, kCats, co);
  DatasetPool classes(class_path);
  const int64_t halo = opt.cover_options.halo();
  const Window full = grid.full_window();
  SchedulerOptions s3 = so;
  s3.label = "sub-pixel change cover";
  BlockScheduler(s3).run<Chunks>(
      plan,
      [&](const Window& w, std::size_t) {
        const Window ew =
            Window{w.x - halo, w.y - halo, w.w + 2 * halo, w.h + 2 * halo}.intersection(full);
        std::vector<uint8_t> cls;
        classes.read(1, ew, cls);
        std::vector<float> planes, diff;
        std::vector<uint8_t> valid;
        reader.read(ew, planes, valid);
        const std::size_t n = valid.size();
        diff.resize(kP * n);
        for (std::size_t k = 0; k < kP; ++k) {
          const float* a = planes.data() + k * n;
          const float* b = planes.data() + (kP + k) * n;
          float* d = diff.data() + k * n;
          for (std::size_t i = 0; i < n; ++i) d[i] = b[i] - a[i];
        }
        const Window core{w.x - ew.x, w.y - ew.y, w.w, w.h};
        const auto nc = static_cast<std::size_t>(w.pixels());
        std::vector<uint8_t> cover(kCats * nc);
        subpixel_cover(cls.data(), diff.data(), planes.data(), kP, ew.w, ew.h, core, kCats,
                       opt.cover_options, cover.data());
        std::vector<std::shared_ptr<CogWriter::Chunk>> chunks;
        for (int c = 0; c < kCats; ++c)
          chunks.push_back(out.encode(c + 1, w, cover.data() + static_cast<std::size_t>(c) * nc));
        return Chunks{std::move(chunks)};
      },
      [&](const Window&, std::size_t, Chunks& c) {
        for (auto& ch : c.chunks) out.add(ch);
      });
  out.commit();
  return out.path();
}

}  // namespace

const char* category_name(ChangeCategory c) {
  if (c == ChangeCategory::kNoData) return "no_data";
  return kCategoryNames[static_cast<std::size_t>(c)];
}

ChangeCategory parse_category(const std::string& name) {
  for (int i = 0; i < kChangeCategories; ++i) {
    if (name == kCategoryNames[static_cast<std::size_t>(i)]) return static_cast<ChangeCategory>(i);
  }
  std::string known;
  for (const char* n : kCategoryNames) known += (known.empty() ? "" : ", ") + std::string(n);
  throw_usage("unknown change category '" + name + "' (known: " + known + ")");
}

const char* var_name(ChangeVar v) {
  return kVarNames[static_cast<std::size_t>(v)];
}

ChangeVar parse_var(const std::string& name) {
  for (int i = 0; i < static_cast<int>(ChangeVar::kCount); ++i) {
    if (name == kVarNames[static_cast<std::size_t>(i)]) return static_cast<ChangeVar>(i);
  }
  std::string known;
  for (const char* n : kVarNames) known += (known.empty() ? "" : ", ") + std::string(n);
  throw_usage("unknown rule variable '" + name + "' (known: " + known + ")");
}

std::vector<ChangeRule> default_rules() {
  return {
      // Water: MNDWI turns positive and NDVI negative-to-low (blue steel roofs raise MNDWI too,
      // but keep a high NIR and an NDVI above 0.2).
      parse_rule("water_gain: mndwi0 < 0, mndwi1 > -0.2, blue1 < 0.12, zmndwi > 1"),
      // A pond partly flooded over a crop: MNDWI stays below -0.2 in a mixed pixel, but NIR and
      // SWIR both fall (vegetation loss and new soil raise SWIR instead).
      parse_rule("water_gain: mndwi0 < 0, mndwi1 > -0.35, blue1 < 0.12, zmndwi > 1, dnir < -0.05, "
                 "dswir1 < -0.03"),
      // A filled pond: the water signature collapses (a partly filled pixel stays near 0).
      parse_rule("water_loss: mndwi0 > 0, mndwi1 < 0.2, ndvi0 < 0.2, zmndwi < -1"),
      // Land changes happen on land: water's indices (ratios of small reflectances) are noisy.
      parse_rule("construction: mndwi0 < 0, dblue > 0.06, blue_red1 > 0.62"),
      // Fired-clay tile roofs: redder than any soil (hematite formed by firing) and with the
      // lower SWIR2/SWIR1 ratio of a ceramic.
      parse_rule("construction: mndwi0 < 0, red_green1 > 1.55, swir_ratio1 < 0.85, zndvi < -1"),
      parse_rule("bare_soil: mndwi0 < 0, zndvi < -1, swir_ratio1 > 0.7"),
      parse_rule("bare_soil: mndwi0 < 0, zbsi > 1, swir_ratio1 > 0.75, ndvi1 < 0.3"),
      parse_rule("vegetation_loss: ndvi0 > 0.3, zndvi < -1"),
      parse_rule("vegetation_gain: ndvi1 > 0.3, zndvi > 1"),
  };
}

ChangeRule parse_rule(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    throw_usage("bad rule '" + text + "' (expected 'category: var > value, var < value')");
  }
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t") + 1);
    return s;
  };
  ChangeRule r;
  r.category = parse_category(trim(text.substr(0, colon)));
  std::stringstream conds(text.substr(colon + 1));
  std::string item;
  while (std::getline(conds, item, ',')) {
    item = trim(item);
    const auto op = item.find_first_of("<>");
    if (op == std::string::npos) throw_usage("bad condition '" + item + "' in rule '" + text + "'");
    Condition c;
    c.var = parse_var(trim(item.substr(0, op)));
    c.greater = item[op] == '>';
    try {
      c.value = std::stod(trim(item.substr(op + 1)));
    } catch (const std::exception&) {
      throw_usage("bad number in condition '" + item + "' of rule '" + text + "'");
    }
    r.all.push_back(c);
  }
  if (r.all.empty()) throw_usage("rule '" + text + "' has no condition");
  return r;
}

Grid change_grid(const Imagery& before, const Imagery& after) {
  const Grid g = analysis_grid({&before, &after});
  const Extent e2 = transform_extent(after.grid().extent(), after.grid().crs(), g.crs());
  const Window w = g.window_of(e2.intersection(g.extent()));
  if (w.empty()) throw_input("the two dates do not overlap");
  return g.subgrid(w);
}

const char* diff_var_name(int var) {
  return kDiffNames[static_cast<std::size_t>(var)];
}

int parse_diff_var(const std::string& name) {
  for (int i = 0; i < kDiffVars; ++i) {
    if (name == kDiffNames[static_cast<std::size_t>(i)]) return i;
  }
  std::string known;
  for (const char* n : kDiffNames) known += (known.empty() ? "" : ", ") + std::string(n);
  throw_usage("unknown change vector variable '" + name + "' (known: " + known + ")");
}

ChangeResult detect_change(const Imagery& before, const Imagery& after, const Grid& grid,
                           const ChangeOptions& opt, const SchedulerOptions& so) {
  if (opt.threshold_method != "mad" && opt.threshold_method != "otsu") {
    throw_usage("unknown threshold method '" + opt.threshold_method + "' (mad or otsu)");
  }
  if (opt.method != "diff" && opt.method != "cva" && opt.method != "irmad") {
    throw_usage("unknown change method '" + opt.method + "' (diff, cva or irmad)");
  }
  const bool cva = opt.method == "cva", irmad_method = opt.method == "irmad";
  const bool need_irmad = irmad_method || opt.normalize;
  std::vector<int> cva_vars;
  if (cva) {
    if (opt.cva_vars.empty()) throw_usage("CVA needs at least one variable");
    for (const auto& v : opt.cva_vars) cva_vars.push_back(parse_diff_var(v));
  }
  if (!(opt.irmad_alpha > 0 && opt.irmad_alpha < 1)) throw_usage("IR-MAD alpha must be in (0, 1)");
  if (opt.irmad_sample < 0) throw_usage("the IR-MAD sample size cannot be negative");
  int nvars = 4;  // histograms: the indices, and the bands when CVA uses them
  for (int v : cva_vars) nvars = std::max(nvars, v + 1);

  PairReader reader(before, after, grid);
  const int bw = CogWriter::kTile, bh = CogWriter::kTile;
  ChangeResult res;
  res.method = opt.method;
  res.pixel_area_m2 = std::abs(grid.transform().pixel_area()) * grid.crs().linear_units_m() *
                      grid.crs().linear_units_m();
  const std::string pair_files = before.files_text() + " / " + after.files_text();
  const double bpp = 2 * kP * 4 + 8 * 4 + 2 + 16;
  SchedulerOptions so_plan = so;
  const WindowPlan plan = BlockScheduler(so_plan).plan(grid.width(), grid.height(), bw, bh, bpp);
  const int64_t W = grid.width();
  const double rate =
      opt.irmad_sample > 0
          ? std::min(1.0, static_cast<double>(opt.irmad_sample) /
                              (static_cast<double>(W) * static_cast<double>(grid.height())))
          : 0.0;

  // A reduction pass: histograms of the differences, and optionally the IR-MAD sample.
  struct Partial {
    std::vector<Histogram> h;
    int64_t valid = 0;
    std::vector<float> sample;
    void write(ByteWriter& b) const {
      b.put<uint64_t>(h.size());
      for (const Histogram& x : h) x.write(b);
      b.put(valid);
      b.put_vector(sample);
    }
    static Partial read(ByteReader& b) {
      Partial p;
      const auto n = b.get<uint64_t>();
      for (uint64_t i = 0; i < n && b.left() > 0; ++i) p.h.push_back(Histogram::read(b));
      p.valid = b.get<int64_t>();
      p.sample = b.get_vector<float>();
      return p;
    }
  };
  auto first_pass = [&](bool hist, bool sample, const char* label) {
    auto empty = [&] {
      Partial x;
      if (hist) x.h.assign(static_cast<std::size_t>(nvars), Histogram(-2.0, 2.0, 8000));
      return x;
    };
    SchedulerOptions s1 = so;
    s1.label = label;
    return BlockScheduler(s1).reduce<Partial>(
        plan,
        [&](const Window& w, std::size_t) {
          WindowData wd;
          wd.load(reader, w);
          Partial x = empty();
          for (std::size_t i = 0; i < wd.n; ++i) x.valid += wd.valid[i];
          if (hist) {
            for (int k = 0; k < nvars; ++k) {
              Histogram& h = x.h[static_cast<std::size_t>(k)];
              for (std::size_t i = 0; i < wd.n; ++i) {
                if (wd.valid[i]) h.add(wd.diff(k, i));
              }
            }
          }
          if (sample) {
            for (std::size_t i = 0; i < wd.n; ++i) {
              if (!wd.valid[i]) continue;
              const auto col = static_cast<uint64_t>(w.x + static_cast<int64_t>(i) % w.w);
              const auto row = static_cast<uint64_t>(w.y + static_cast<int64_t>(i) / w.w);
              if (unit(mix64(row * static_cast<uint64_t>(W) + col + 0x5eed)) >= rate) continue;
              for (std::size_t k = 0; k < 2 * kP; ++k) x.sample.push_back(wd.p[k * wd.n + i]);
            }
          }
          return x;
        },
        empty(),
        [&](Partial& acc, Partial& part) {
          for (std::size_t k = 0; k < acc.h.size(); ++k) acc.h[k].merge(part.h[k]);
          acc.valid += part.valid;
          acc.sample.insert(acc.sample.end(), part.sample.begin(), part.sample.end());
        });
  };
  auto no_valid = [&] {
    return Error(ExitCode::kNoData,
                 "no pixel is valid at both dates (all clouds, nodata, or no overlap): no change "
                 "statistics can be computed",
                 {.file = pair_files});
  };

  // IR-MAD: on the in-memory sample, or window by window over the whole scene.
  Partial stats;
  bool have_hist = false;
  std::optional<MadTransform> mad;
  if (need_irmad) {
    const bool streaming = opt.irmad_sample == 0;
    stats = first_pass(!opt.normalize, !streaming, "change statistics");
    have_hist = !opt.normalize;
    if (stats.valid == 0) throw no_valid();
    std::function<Covariance(const Weighting&)> cov_pass;
    if (streaming) {
      res.irmad_pixels = stats.valid;
      cov_pass = [&](const Weighting& wt) {
        SchedulerOptions s1 = so;
        s1.label = "IR-MAD";
        return BlockScheduler(s1).reduce<Covariance>(
            plan,
            [&](const Window& w, std::size_t) {
              WindowData wd;
              wd.load(reader, w);
              std::vector<float> rows;
              valid_rows(wd, rows);
              return accumulate(rows.data(), rows.size() / (2 * kP), wt);
            },
            Covariance(2 * kP), [](Covariance& acc, const Covariance& part) { acc.merge(part); });
      };
    } else {
      res.irmad_pixels = static_cast<int64_t>(stats.sample.size() / (2 * kP));
      if (res.irmad_pixels < 100) {
        throw Error(ExitCode::kNoData,
                    "too few valid pixels for IR-MAD (" + std::to_string(res.irmad_pixels) +
                        " in the sample)",
                    {.file = pair_files});
      }
      cov_pass = [&](const Weighting& wt) { return sample_pass(stats.sample, wt); };
    }
    const IrMadResult r = irmad(
        [&](const MadTransform* t) {
          Weighting wt;
          std::optional<MadKernel> k;
          if (t) k.emplace(*t), wt.kernel = &*k;
          return cov_pass(wt);
        },
        kP, opt.irmad_max_iterations, opt.irmad_tolerance);
    res.irmad_iterations = r.iterations;
    res.irmad_converged = r.converged;
    for (int i = 0; i < kP; ++i) res.canonical_correlations.push_back(r.transform.rho[i]);
    mad = r.transform;
    // Calibration: the reweighting concentrates the statistics on the most invariant pixels,
    // so the chi-square of the unchanged majority runs above chi2(p); its median against
    // chi2(p)'s gives the scale (an inflation factor, at least 1).
    {
      const MadKernel k(*mad);
      double median = 0;
      if (streaming) {
        SchedulerOptions s1 = so;
        s1.label = "IR-MAD calibration";
        const Histogram h = BlockScheduler(s1).reduce<Histogram>(
            plan,
            [&](const Window& w, std::size_t) {
              WindowData wd;
              wd.load(reader, w);
              Histogram part(-8.0, 8.0, 16000);
              for (std::size_t i = 0; i < wd.n; ++i) {
                if (wd.valid[i])
                  part.add(std::log10(
                      std::max(1e-8, k.chi2(wd.p.data() + i, wd.p.data() + kP * wd.n + i, wd.n))));
              }
              return part;
            },
            Histogram(-8.0, 8.0, 16000),
            [](Histogram& acc, const Histogram& part) { acc.merge(part); });
        median = std::pow(10.0, h.median());
      } else {
        const std::size_t m = stats.sample.size() / (2 * kP);
        std::vector<double> c(m);
        parallel_for_n(m, [&](std::size_t i) {
          const float* row = stats.sample.data() + i * 2 * kP;
          c[i] = k.chi2(row, row + kP, 1);
        });
        std::nth_element(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(m / 2), c.end());
        median = c[m / 2];
      }
      res.chi2_scale = std::max(1.0, median / chi2_isf(0.5, kP));
    }
    log::info("IR-MAD: " + std::to_string(r.iterations) + " iterations" +
              (r.converged ? "" : " (not converged)") + " on " + std::to_string(res.irmad_pixels) +
              " pixels; chi-square scale " + std::to_string(res.chi2_scale));
    if (opt.normalize) {
      const MadKernel k(*mad);
      Weighting wt;
      wt.kernel = &k;
      wt.indicator = opt.normalize_probability;
      wt.scale = res.chi2_scale;
      const Covariance c = cov_pass(wt);
      const auto pixels = static_cast<int64_t>(std::llround(c.weight()));
      if (pixels < 100) {
        throw Error(ExitCode::kNoData,
                    "too few no-change pixels to normalise date 2 (" + std::to_string(pixels) +
                        " with an IR-MAD no-change probability above " +
                        std::to_string(opt.normalize_probability) + ")",
                    {.file = pair_files});
      }
      res.normalization = orthogonal_regression(c, pixels);
      reader.norm = res.normalization;
      // The MAD transform of the normalised date 2: y = a + s y', so B' = diag(s) B and
      // mean_y' = (mean_y - a) / s.
      for (int k2 = 0; k2 < kP; ++k2) {
        const double sl = res.normalization.slope[static_cast<std::size_t>(k2)];
        mad->b.row(k2) *= sl;
        mad->mean_y[k2] =
            (mad->mean_y[k2] - res.normalization.intercept[static_cast<std::size_t>(k2)]) / sl;
      }
    }
    stats.sample.clear();
    stats.sample.shrink_to_fit();
  }
  if (!have_hist) {
    stats = first_pass(true, false, "change statistics");
    if (stats.valid == 0) throw no_valid();
  }

  std::vector<double> med(static_cast<std::size_t>(nvars)), thr(static_cast<std::size_t>(nvars));
  for (int k = 0; k < nvars; ++k) {
    const Histogram& h = stats.h[static_cast<std::size_t>(k)];
    IndexThreshold t;
    t.index = kDiffNames[static_cast<std::size_t>(k)];
    t.median = h.median();
    t.mad = h.mad();
    const double fixed = k < 4 ? opt.fixed[static_cast<std::size_t>(k)] : 0.0;
    if (fixed > 0) {
      t.threshold = fixed;
      t.method = "fixed";
    } else if (opt.threshold_method == "otsu") {
      // Otsu on the distance from the median.
      Histogram dev(0.0, 2.0, 4000);
      for (int b = 0; b < h.bins(); ++b) {
        if (h.count(b)) dev.add(std::abs(h.center(b) - t.median), h.count(b));
      }
      t.threshold = dev.otsu();
      t.method = "otsu";
    } else {
      t.threshold = opt.mad_k * 1.4826 * t.mad;
      t.method = "median +- " + std::to_string(opt.mad_k) + " x 1.4826 MAD";
    }
    // A floor of a few histogram bins keeps a noise-free scene from flagging rounding.
    t.threshold = std::max({t.threshold, 4 * h.width()});
    if (!std::isfinite(t.threshold)) t.threshold = 4 * h.width();
    med[static_cast<std::size_t>(k)] = t.median;
    thr[static_cast<std::size_t>(k)] = t.threshold;
    res.thresholds.push_back(t);
  }
  std::optional<MadKernel> kernel;
  if (irmad_method) {
    kernel.emplace(*mad);
    res.chi2_threshold = res.chi2_scale * chi2_isf(opt.irmad_alpha, kP);
  }
  const double inv_chi2_thr = res.chi2_threshold > 0 ? 1.0 / res.chi2_threshold : 0.0;
  const double inv_scale = 1.0 / res.chi2_scale;

  // Pass 2: classify, grade and write.
  CogOptions cls;
  cls.type = GDT_Byte;
  cls.nodata = kByteNodata;
  cls.overview_resampling = "NEAREST";
  cls.descriptions = {"change_class"};
  for (const auto& c : kColors) cls.colors.push_back(c);
  cls.colors.resize(256, {0, 0, 0, 0});  // no data (255) transparent
  for (const char* n : kCategoryNames) cls.category_names.push_back(n);
  CogOptions inten = cls;
  inten.descriptions = {"change_intensity"};
  inten.colors = {
      {240, 240, 240, 255}, {255, 220, 120, 255}, {250, 140, 40, 255}, {200, 20, 20, 255}};
  inten.category_names = {"none", "slight", "moderate", "severe"};
  CogOptions fl;
  fl.type = GDT_Float32;
  fl.nodata = kMagNodata;
  const std::string dir = opt.out_dir;
  auto float_out = [&](const std::string& name, int bands, std::vector<std::string> desc) {
    CogOptions o = fl;
    o.descriptions = std::move(desc);
    return std::make_unique<CogWriter>(dir + "/" + name, grid, bands, o);
  };
  CogWriter wcls(dir + "/change_class.tif", grid, 1, cls);
  CogWriter wint(dir + "/change_intensity.tif", grid, 1, inten);
  auto wmag = float_out("change_magnitude.tif", 1, {"change_magnitude"});
  std::unique_ptr<CogWriter> wdir, wchi, wprob, wmad;
  const bool direction = cva && cva_vars.size() >= 2;
  if (direction) wdir = float_out("change_direction.tif", 1, {"change_direction_degrees"});
  if (irmad_method) {
    wchi = float_out("irmad_chi2.tif", 1, {"irmad_chi2"});
    wprob = float_out("irmad_no_change.tif", 1, {"irmad_no_change_probability"});
    if (opt.mad_variates) {
      std::vector<std::string> d;
      for (int i = 1; i <= kP; ++i) d.push_back("MAD" + std::to_string(i));
      wmad = float_out("mad_variates.tif", kP, d);
    }
  }
  struct Out {
    std::vector<std::shared_ptr<CogWriter::Chunk>> chunks;
    std::array<std::array<int64_t, 4>, kChangeCategories> counts{};
    int64_t nodata = 0;
    void write(ByteWriter& b) const {
      CogWriter::write_chunks(chunks, b);
      b.put(counts);
      b.put(nodata);
    }
    static Out read(ByteReader& b) {
      Out o;
      o.chunks = CogWriter::read_chunks(b);
      o.counts = b.get<std::array<std::array<int64_t, 4>, kChangeCategories>>();
      o.nodata = b.get<int64_t>();
      return o;
    }
  };
  std::vector<CogWriter*> writers = {&wcls, &wint, wmag.get()};
  if (wdir) writers.push_back(wdir.get());
  if (wchi) writers.push_back(wchi.get()), writers.push_back(wprob.get());
  SchedulerOptions so2 = so;
  so2.label = "change classes";
  BlockScheduler sched2(so2);
  sched2.run<Out>(
      plan,
      [&](const Window& w, std::size_t) {
        WindowData wd;
        wd.load(reader, w);
        const std::size_t n = wd.n;
        std::vector<uint8_t> cat(n), grade(n);
        std::vector<float> magnitude(n), dirn(direction ? n : 0), chi(kernel ? n : 0),
            prob(kernel ? n : 0), madv(wmad ? kP * n : 0);
        Out o;
        std::array<float, static_cast<int>(ChangeVar::kCount)> v{};
        const float* const idx = wd.idx.data();
        const float* const p = wd.p.data();
        for (std::size_t i = 0; i < n; ++i) {
          if (!wd.valid[i]) {
            cat[i] = grade[i] = kByteNodata;
            magnitude[i] = kMagNodata;
            if (direction) dirn[i] = kMagNodata;
            if (kernel) chi[i] = prob[i] = kMagNodata;
            for (std::size_t k = 0; k < madv.size() / std::max<std::size_t>(n, 1); ++k)
              madv[k * n + i] = kMagNodata;
            ++o.nodata;
            continue;
          }
          float z[4], mg = 0;
          for (std::size_t k = 0; k < 4; ++k) {
            const float d = idx[(4 + k) * n + i] - idx[k * n + i];
            z[k] = static_cast<float>((d - med[k]) / thr[k]);
          }
          if (cva) {
            double s2 = 0, zc[2] = {0, 0};
            for (std::size_t j = 0; j < cva_vars.size(); ++j) {
              const auto k = static_cast<std::size_t>(cva_vars[j]);
              const double zz = (wd.diff(cva_vars[j], i) - med[k]) / thr[k];
              s2 += zz * zz;
              if (j < 2) zc[j] = zz;
            }
            mg = static_cast<float>(std::sqrt(s2));
            if (direction) {
              double deg = std::atan2(zc[1], zc[0]) * (180.0 / 3.14159265358979323846);
              if (deg < 0) deg += 360.0;
              dirn[i] = static_cast<float>(deg);
            }
          } else if (kernel) {
            double mads[kP];
            const double c2 = kernel->chi2(p + i, p + kP * n + i, n, wmad ? mads : nullptr);
            chi[i] = static_cast<float>(c2);
            prob[i] = static_cast<float>(chi2_sf(c2 * inv_scale, kP));
            if (wmad) {
              for (std::size_t k = 0; k < kP; ++k) madv[k * n + i] = static_cast<float>(mads[k]);
            }
            mg = static_cast<float>(std::sqrt(c2 * inv_chi2_thr));
          } else {
            for (float zz : z) mg = std::max(mg, std::abs(zz));
          }
          magnitude[i] = mg;
          ChangeCategory c = ChangeCategory::kNoChange;
          if (mg >= 1.0f) {
            auto V = [&v](ChangeVar x) -> float& { return v[static_cast<std::size_t>(x)]; };
            for (std::size_t k = 0; k < 4; ++k) {
              v[4 * k] = idx[k * n + i];
              v[4 * k + 1] = idx[(4 + k) * n + i];
              v[4 * k + 2] = idx[(4 + k) * n + i] - idx[k * n + i];
              v[4 * k + 3] = z[k];
            }
            const float blue0 = p[i], blue1 = p[6 * n + i], red1 = p[8 * n + i];
            const float s1 = p[10 * n + i], s2 = p[11 * n + i];
            V(ChangeVar::kBlue0) = blue0, V(ChangeVar::kBlue1) = blue1,
            V(ChangeVar::kDBlue) = blue1 - blue0;
            V(ChangeVar::kDNir) = p[9 * n + i] - p[3 * n + i];
            V(ChangeVar::kDSwir1) = s1 - p[4 * n + i];
            V(ChangeVar::kBlueRed1) = red1 != 0 ? blue1 / red1 : 0;
            V(ChangeVar::kRedGreen1) = p[7 * n + i] != 0 ? red1 / p[7 * n + i] : 0;
            V(ChangeVar::kSwirRatio1) = s1 != 0 ? s2 / s1 : 0;
            V(ChangeVar::kMagnitude) = mg;
            for (const ChangeRule& r : opt.rules) {
              bool ok = true;
              for (const Condition& cond : r.all) {
                const float x = v[static_cast<std::size_t>(cond.var)];
                ok &= cond.greater ? x > cond.value : x < cond.value;
                if (!ok) break;
              }
              if (ok) {
                c = r.category;
                break;
              }
            }
          }
          uint8_t g = 0;
          if (c != ChangeCategory::kNoChange) {
            g = mg >= opt.intensity_steps[2] ? 3 : mg >= opt.intensity_steps[1] ? 2 : 1;
          }
          cat[i] = static_cast<uint8_t>(c);
          grade[i] = g;
          ++o.counts[static_cast<std::size_t>(c)][g];
        }
        o.chunks.push_back(wcls.encode(1, w, cat.data()));
        o.chunks.push_back(wint.encode(1, w, grade.data()));
        o.chunks.push_back(wmag->encode(1, w, magnitude.data()));
        if (wdir) o.chunks.push_back(wdir->encode(1, w, dirn.data()));
        if (wchi) {
          o.chunks.push_back(wchi->encode(1, w, chi.data()));
          o.chunks.push_back(wprob->encode(1, w, prob.data()));
        }
        if (wmad) {
          for (int k = 0; k < kP; ++k)
            o.chunks.push_back(
                wmad->encode(k + 1, w, madv.data() + static_cast<std::size_t>(k) * n));
        }
        return o;
      },
      [&](const Window&, std::size_t, Out& o) {
        for (std::size_t k = 0; k < writers.size(); ++k) writers[k]->add(o.chunks[k]);
        for (std::size_t k = writers.size(); k < o.chunks.size(); ++k) wmad->add(o.chunks[k]);
        for (int c = 0; c < kChangeCategories; ++c) {
          for (int g = 0; g < 4; ++g)
            res.counts[static_cast<std::size_t>(c)][static_cast<std::size_t>(g)] +=
                o.counts[static_cast<std::size_t>(c)][static_cast<std::size_t>(g)];
        }
        res.nodata += o.nodata;
      });
  res.valid = grid.width() * grid.height() - res.nodata;
  if (wmad) writers.push_back(wmad.get());
  for (CogWriter* wr : writers) {
    wr->commit();
    res.files.push_back(wr->path());
  }
  if (opt.cover) res.files.push_back(write_cover(reader, grid, plan, wcls.path(), opt, so));

  // change_stats.json
  nlohmann::json j;
  j["method"] = opt.method;
  j["grid"] = grid.describe();
  j["pixel_area_m2"] = res.pixel_area_m2;
  j["valid_pixels"] = res.valid;
  j["nodata_pixels"] = res.nodata;
  for (const auto& t : res.thresholds) {
    j["thresholds"][t.index] = {
        {"median", t.median}, {"mad", t.mad}, {"threshold", t.threshold}, {"method", t.method}};
  }
  if (cva) {
    j["cva"] = {{"variables", opt.cva_vars},
                {"magnitude", "sqrt(sum of ((d - median) / threshold)^2)"},
                {"direction", direction ? "degrees, atan2(z of " + opt.cva_vars[1] + ", z of " +
                                              opt.cva_vars[0] + "), 0..360"
                                        : "none (one variable)"}};
  }
  if (need_irmad) {
    j["irmad"] = {{"canonical_correlations", res.canonical_correlations},
                  {"iterations", res.irmad_iterations},
                  {"converged", res.irmad_converged},
                  {"pixels", res.irmad_pixels},
                  {"sample", opt.irmad_sample == 0 ? "every valid pixel, window by window"
                                                   : "position-hashed sample"},
                  {"bands", {"blue", "green", "red", "nir", "swir1", "swir2"}}};
    j["irmad"]["chi2_scale"] = res.chi2_scale;
    j["irmad"]["no_change_probability"] = "chi2_sf(chi2 / chi2_scale, 6)";
    if (irmad_method) {
      j["irmad"]["alpha"] = opt.irmad_alpha;
      j["irmad"]["chi2_threshold"] = res.chi2_threshold;
    }
  }
  if (res.normalization.applied) {
    nlohmann::json nj;
    for (std::size_t k = 0; k < kP; ++k) {
      nj["bands"][kDiffNames[4 + k]] = {{"slope", res.normalization.slope[k]},
                                        {"intercept", res.normalization.intercept[k]},
                                        {"correlation", res.normalization.correlation[k]}};
    }
    nj["pixels"] = res.normalization.pixels;
    nj["min_no_change_probability"] = opt.normalize_probability;
    nj["model"] =
        "date2 = intercept + slope * date1 (orthogonal regression); date 2 is mapped "
        "onto date 1 as (date2 - intercept) / slope";
    j["normalization"] = nj;
  }
  j["intensity_steps"] = opt.intensity_steps;
  const char* grades[4] = {"none", "slight", "moderate", "severe"};
  for (int c = 0; c < kChangeCategories; ++c) {
    nlohmann::json cj;
    int64_t all = 0;
    for (int g = 0; g < 4; ++g) {
      const int64_t n = res.counts[static_cast<std::size_t>(c)][static_cast<std::size_t>(g)];
      all += n;
      if (c != 0 && g > 0) {
        cj["by_intensity"][grades[g]] = {{"pixels", n},
                                         {"area_m2", n * res.pixel_area_m2},
                                         {"area_mu", n * res.pixel_area_m2 / kMu}};
      }
    }
    cj["pixels"] = all;
    cj["area_m2"] = all * res.pixel_area_m2;
    cj["area_mu"] = all * res.pixel_area_m2 / kMu;
    j["categories"][kCategoryNames[static_cast<std::size_t>(c)]] = cj;
  }
  const std::string stats_path = dir + "/change_stats.json";
  write_file_atomic(stats_path, j.dump(2) + "\n");
  res.files.push_back(stats_path);
  return res;
}

}  // namespace fw::rasters
