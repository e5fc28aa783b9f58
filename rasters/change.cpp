#include "rasters/change.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "rasters/cog.hpp"
#include "rasters/stats.hpp"

namespace fw::rasters {
namespace {

constexpr std::array<const char*, kChangeCategories> kCategoryNames = {
    "no_change",  "construction",    "bare_soil",      "water_gain",
    "water_loss", "vegetation_loss", "vegetation_gain"};
constexpr std::array<const char*, static_cast<int>(ChangeVar::kCount)> kVarNames = {
    "ndvi0",  "ndvi1",  "dndvi",  "zndvi",     "ndbi0",       "ndbi1",    "dndbi", "zndbi",
    "mndwi0", "mndwi1", "dmndwi", "zmndwi",    "bsi0",        "bsi1",     "dbsi",  "zbsi",
    "blue0",  "blue1",  "dblue",  "blue_red1", "swir_ratio1", "magnitude"};
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

inline float nd(float a, float b) {
  const float d = a + b;
  return d != 0.0f ? (a - b) / d : std::numeric_limits<float>::quiet_NaN();
}

const std::array<Role, 6> kRoles = {Role::kBlue, Role::kGreen, Role::kRed,
                                    Role::kNir,  Role::kSwir1, Role::kSwir2};

// Readers of both dates' six bands and masks on the grid.
struct PairReader {
  std::array<std::unique_ptr<BandReader>, 12> bands;
  std::unique_ptr<MaskReader> mask0, mask1;

  PairReader(const Imagery& before, const Imagery& after, const Grid& grid) {
    for (int d = 0; d < 2; ++d) {
      const Imagery& im = d == 0 ? before : after;
      for (std::size_t k = 0; k < 6; ++k) {
        bands[static_cast<std::size_t>(d) * 6 + k] = std::make_unique<BandReader>(
            im.band(kRoles[k], std::string("change detection")), grid, Resampling::kBilinear);
      }
    }
    mask0 = std::make_unique<MaskReader>(before.options().mask, grid);
    mask1 = std::make_unique<MaskReader>(after.options().mask, grid);
  }

  // 12 planes of reflectance and the valid flags (valid at both dates, every band finite).
  void read(const Window& w, std::vector<float>& planes, std::vector<uint8_t>& valid) {
    const std::size_t n = static_cast<std::size_t>(w.pixels());
    planes.resize(12 * n);
    for (std::size_t k = 0; k < 12; ++k) bands[k]->read_reflectance(w, planes.data() + k * n);
    valid.assign(n, 1);
    mask0->apply(w, valid.data());
    mask1->apply(w, valid.data());
    for (std::size_t i = 0; i < n; ++i) {
      if (!valid[i]) continue;
      for (std::size_t k = 0; k < 12 && valid[i]; ++k) valid[i] = !std::isnan(planes[k * n + i]);
    }
  }
};

struct Indices {
  float ndvi, ndbi, mndwi, bsi;
};

Indices indices_of(const float* p, std::size_t n, std::size_t i, int date) {
  const float* b = p + static_cast<std::size_t>(date) * 6 * n;
  const float B = b[i], G = b[n + i], R = b[2 * n + i], N = b[3 * n + i], S1 = b[4 * n + i];
  return {nd(N, R), nd(S1, N), nd(G, S1), nd(S1 + R, N + B)};
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
      parse_rule("water_loss: mndwi0 > 0, mndwi1 < 0, ndvi0 < 0.2, zmndwi < -1"),
      // Land changes happen on land: water's indices (ratios of small reflectances) are noisy.
      parse_rule("construction: mndwi0 < 0, dblue > 0.06, blue_red1 > 0.62"),
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

ChangeResult detect_change(const Imagery& before, const Imagery& after, const Grid& grid,
                           const ChangeOptions& opt, const SchedulerOptions& so) {
  if (opt.threshold_method != "mad" && opt.threshold_method != "otsu") {
    throw_usage("unknown threshold method '" + opt.threshold_method + "' (mad or otsu)");
  }
  PairReader reader(before, after, grid);
  const int bw = CogWriter::kTile, bh = CogWriter::kTile;
  ChangeResult res;
  res.pixel_area_m2 = std::abs(grid.transform().pixel_area()) * grid.crs().linear_units_m() *
                      grid.crs().linear_units_m();

  // Pass 1: histograms of the four index differences over pixels valid at both dates.
  struct Hists {
    std::array<Histogram, 4> h;
    int64_t valid = 0;
  };
  auto empty_hists = [] {
    Hists x;
    for (auto& h : x.h) h = Histogram(-2.0, 2.0, 8000);
    return x;
  };
  SchedulerOptions so1 = so;
  so1.label = "change statistics";
  BlockScheduler sched1(so1);
  const double bpp = 12 * 4 + 2 + 16;
  const WindowPlan plan = sched1.plan(grid.width(), grid.height(), bw, bh, bpp);
  Hists total = sched1.reduce<Hists>(
      plan,
      [&](const Window& w, std::size_t) {
        std::vector<float> p;
        std::vector<uint8_t> valid;
        reader.read(w, p, valid);
        Hists x = empty_hists();
        const std::size_t n = valid.size();
        for (std::size_t i = 0; i < n; ++i) {
          if (!valid[i]) continue;
          const Indices a = indices_of(p.data(), n, i, 0), b = indices_of(p.data(), n, i, 1);
          const float d[4] = {b.ndvi - a.ndvi, b.ndbi - a.ndbi, b.mndwi - a.mndwi, b.bsi - a.bsi};
          bool ok = true;
          for (float v : d) ok &= std::isfinite(v);
          if (!ok) continue;
          for (int k = 0; k < 4; ++k) x.h[static_cast<std::size_t>(k)].add(d[k]);
          ++x.valid;
        }
        return x;
      },
      empty_hists(),
      [](Hists& acc, const Hists& part) {
        for (int k = 0; k < 4; ++k)
          acc.h[static_cast<std::size_t>(k)].merge(part.h[static_cast<std::size_t>(k)]);
        acc.valid += part.valid;
      });
  if (total.valid == 0) {
    throw Error(ExitCode::kNoData,
                "no pixel is valid at both dates (all clouds, nodata, or no overlap): no change "
                "statistics can be computed",
                {.file = before.files_text() + " / " + after.files_text()});
  }
  const char* names[4] = {"ndvi", "ndbi", "mndwi", "bsi"};
  std::array<double, 4> med{}, thr{};
  for (int k = 0; k < 4; ++k) {
    const Histogram& h = total.h[static_cast<std::size_t>(k)];
    IndexThreshold& t = res.thresholds[static_cast<std::size_t>(k)];
    t.index = names[k];
    t.median = h.median();
    t.mad = h.mad();
    if (opt.fixed[static_cast<std::size_t>(k)] > 0) {
      t.threshold = opt.fixed[static_cast<std::size_t>(k)];
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
  }

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
  CogOptions mag;
  mag.type = GDT_Float32;
  mag.nodata = kMagNodata;
  mag.descriptions = {"change_magnitude"};
  const std::string dir = opt.out_dir;
  CogWriter wcls(dir + "/change_class.tif", grid, 1, cls);
  CogWriter wint(dir + "/change_intensity.tif", grid, 1, inten);
  CogWriter wmag(dir + "/change_magnitude.tif", grid, 1, mag);
  struct Out {
    std::shared_ptr<CogWriter::Chunk> c, i, m;
    std::array<std::array<int64_t, 4>, kChangeCategories> counts{};
    int64_t nodata = 0;
  };
  SchedulerOptions so2 = so;
  so2.label = "change classes";
  BlockScheduler sched2(so2);
  sched2.run<Out>(
      plan,
      [&](const Window& w, std::size_t) {
        std::vector<float> p;
        std::vector<uint8_t> valid;
        reader.read(w, p, valid);
        const std::size_t n = valid.size();
        std::vector<uint8_t> cat(n), grade(n);
        std::vector<float> magnitude(n);
        Out o;
        std::array<float, static_cast<int>(ChangeVar::kCount)> v{};
        for (std::size_t i = 0; i < n; ++i) {
          const Indices a = indices_of(p.data(), n, i, 0), b = indices_of(p.data(), n, i, 1);
          if (!valid[i] || !std::isfinite(a.ndvi + a.ndbi + a.mndwi + a.bsi + b.ndvi + b.ndbi +
                                          b.mndwi + b.bsi)) {
            cat[i] = grade[i] = kByteNodata;
            magnitude[i] = kMagNodata;
            ++o.nodata;
            continue;
          }
          auto V = [&v](ChangeVar x) -> float& { return v[static_cast<std::size_t>(x)]; };
          V(ChangeVar::kNdvi0) = a.ndvi, V(ChangeVar::kNdvi1) = b.ndvi;
          V(ChangeVar::kNdbi0) = a.ndbi, V(ChangeVar::kNdbi1) = b.ndbi;
          V(ChangeVar::kMndwi0) = a.mndwi, V(ChangeVar::kMndwi1) = b.mndwi;
          V(ChangeVar::kBsi0) = a.bsi, V(ChangeVar::kBsi1) = b.bsi;
          const float d[4] = {b.ndvi - a.ndvi, b.ndbi - a.ndbi, b.mndwi - a.mndwi, b.bsi - a.bsi};
          float mg = 0;
          for (int k = 0; k < 4; ++k) {
            const float z = static_cast<float>((d[k] - med[static_cast<std::size_t>(k)]) /
                                               thr[static_cast<std::size_t>(k)]);
            v[static_cast<std::size_t>(4 * k + 2)] = d[k];
            v[static_cast<std::size_t>(4 * k + 3)] = z;
            mg = std::max(mg, std::abs(z));
          }
          const float blue0 = p[i], blue1 = p[6 * n + i], red1 = p[8 * n + i];
          const float s1 = p[10 * n + i], s2 = p[11 * n + i];
          V(ChangeVar::kBlue0) = blue0, V(ChangeVar::kBlue1) = blue1,
          V(ChangeVar::kDBlue) = blue1 - blue0;
          V(ChangeVar::kBlueRed1) = red1 != 0 ? blue1 / red1 : 0;
          V(ChangeVar::kSwirRatio1) = s1 != 0 ? s2 / s1 : 0;
          V(ChangeVar::kMagnitude) = mg;
          ChangeCategory c = ChangeCategory::kNoChange;
          if (mg >= 1.0f) {
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
          magnitude[i] = mg;
          ++o.counts[static_cast<std::size_t>(c)][g];
        }
        o.c = wcls.encode(1, w, cat.data());
        o.i = wint.encode(1, w, grade.data());
        o.m = wmag.encode(1, w, magnitude.data());
        return o;
      },
      [&](const Window&, std::size_t, Out& o) {
        wcls.add(o.c);
        wint.add(o.i);
        wmag.add(o.m);
        for (int c = 0; c < kChangeCategories; ++c) {
          for (int g = 0; g < 4; ++g)
            res.counts[static_cast<std::size_t>(c)][static_cast<std::size_t>(g)] +=
                o.counts[static_cast<std::size_t>(c)][static_cast<std::size_t>(g)];
        }
        res.nodata += o.nodata;
      });
  res.valid = grid.width() * grid.height() - res.nodata;
  wcls.commit();
  wint.commit();
  wmag.commit();
  res.files = {wcls.path(), wint.path(), wmag.path()};

  // change_stats.json
  nlohmann::json j;
  j["grid"] = grid.describe();
  j["pixel_area_m2"] = res.pixel_area_m2;
  j["valid_pixels"] = res.valid;
  j["nodata_pixels"] = res.nodata;
  for (const auto& t : res.thresholds) {
    j["thresholds"][t.index] = {
        {"median", t.median}, {"mad", t.mad}, {"threshold", t.threshold}, {"method", t.method}};
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
  const std::string stats = dir + "/change_stats.json";
  write_file_atomic(stats, j.dump(2) + "\n");
  res.files.push_back(stats);
  return res;
}

}  // namespace fw::rasters
