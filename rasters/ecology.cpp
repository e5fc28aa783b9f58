#include "rasters/ecology.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>

#include "engine/crs.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "rasters/cog.hpp"

namespace fw::rasters {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kFloatNodata = -9999.0f;
constexpr uint16_t kUInt16Nodata = 65535;
constexpr int kNdviBins = 20000;      // 1e-4 over [-1, 1]
constexpr float kWaterSwir1 = 0.15f;  // open water, even turbid, reflects less in SWIR1

// The six reflectance roles the components need, in wetness-coefficient order.
constexpr std::array<Role, 6> kRoles = {Role::kBlue, Role::kGreen, Role::kRed,
                                        Role::kNir,  Role::kSwir1, Role::kSwir2};

// An unlinked scratch file: gone when closed, also after a crash.
class Scratch {
 public:
  explicit Scratch(const std::string& dir) {
    std::string t = dir + "/.fw-ecology-XXXXXX";
    fd_ = mkstemp(t.data());
    if (fd_ < 0)
      throw_output(std::string("cannot create a scratch file: ") + std::strerror(errno),
                   {.file = dir});
    ::unlink(t.c_str());
  }
  ~Scratch() {
    if (fd_ >= 0) ::close(fd_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  void write(int64_t offset, const void* data, std::size_t bytes) const {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t k = ::pwrite(fd_, p, bytes, static_cast<off_t>(offset));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) throw_output(std::string("scratch write failed: ") + std::strerror(errno));
      p += k, bytes -= static_cast<std::size_t>(k), offset += k;
    }
  }
  void read(int64_t offset, void* data, std::size_t bytes) const {
    char* p = static_cast<char*>(data);
    while (bytes > 0) {
      const ssize_t k = ::pread(fd_, p, bytes, static_cast<off_t>(offset));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) throw_internal(std::string("scratch read failed: ") + std::strerror(errno));
      p += k, bytes -= static_cast<std::size_t>(k), offset += k;
    }
  }

 private:
  int fd_ = -1;
};

// The first component's score of pixel i of a window's component planes (n pixels per plane):
// sum_k a_k x_k + b, in one fixed order so that every pass gets the same bits.
struct Score {
  std::array<double, 4> a{};
  double b = 0;
  int nc = 3;
  double operator()(const float* comp, std::size_t n, std::size_t i) const {
    double s = b;
    for (int k = 0; k < nc; ++k)
      s += a[static_cast<std::size_t>(k)] * comp[static_cast<std::size_t>(k) * n + i];
    return s;
  }
};

// RSEI in [0, 1] from a score and the scores' range.
inline float rsei_value(double score, double lo, double inv) {
  return static_cast<float>(std::clamp((score - lo) * inv, 0.0, 1.0));
}

// A pixel's grade move: g1 - g0, 0 when RSEI moved less than min_change, kNoMove without data.
constexpr int8_t kNoMove = -128;
inline int8_t grade_move(float r0, float r1, int g0, int g1, float min_change) {
  if (!g0 || !g1) return kNoMove;
  if (std::abs(r1 - r0) < min_change) return 0;
  return static_cast<int8_t>(g1 - g0);
}

// n values left uninitialised (no memset): every one is written before it is read.
template <class T>
class Uninit {
 public:
  explicit Uninit(std::size_t n) : p_(std::make_unique_for_overwrite<T[]>(n)), n_(n) {}
  T* data() { return p_.get(); }
  std::size_t size() const { return n_; }
  T& operator[](std::size_t i) { return p_[i]; }
  T* begin() { return p_.get(); }
  T* end() { return p_.get() + n_; }

 private:
  std::unique_ptr<T[]> p_;
  std::size_t n_;
};

// Where the heat component of a date comes from.
enum class Heat { kNone, kLst, kThermal };

// The thermal band, with the Landsat Collection 2 surface-temperature scaling (kelvin) when the
// band carries the reflectance scaling of its preset.
BandInfo thermal_band(const Imagery& im) {
  BandInfo b = im.band(Role::kThermal, "RSEI heat");
  if (im.sensor().id == "landsat89" && b.scale == im.sensor().scale &&
      b.offset == im.sensor().offset) {
    b.scale = 0.00341802;
    b.offset = 149.0;
  }
  return b;
}

// Everything a pass reads of one date.
struct DateReaders {
  std::array<std::unique_ptr<BandReader>, 6> bands;
  std::unique_ptr<BandReader> heat;
  std::unique_ptr<MaskReader> mask;
  std::array<double, 6> wet{};
};

// Pass 1's statistics of one window (or, merged, of the scene) for one date.
struct DateAcc {
  Histogram ndvi{-1.0, 1.0, kNdviBins};
  std::vector<double> mn, mx;
  Covariance cov;
  int64_t valid = 0, land = 0;
  explicit DateAcc(int d = 0)
      : mn(static_cast<std::size_t>(d), std::numeric_limits<double>::infinity()),
        mx(static_cast<std::size_t>(d), -std::numeric_limits<double>::infinity()),
        cov(d) {}
  void merge(const DateAcc& o) {
    ndvi.merge(o.ndvi);
    for (std::size_t k = 0; k < mn.size(); ++k) {
      mn[k] = std::min(mn[k], o.mn[k]);
      mx[k] = std::max(mx[k], o.mx[k]);
    }
    cov.merge(o.cov);
    valid += o.valid;
    land += o.land;
  }
  void write(ByteWriter& b) const {
    ndvi.write(b);
    b.put_vector(mn);
    b.put_vector(mx);
    cov.write(b);
    b.put(valid);
    b.put(land);
  }
  static DateAcc read(ByteReader& b) {
    DateAcc a;
    a.ndvi = Histogram::read(b);
    a.mn = b.get_vector<double>();
    a.mx = b.get_vector<double>();
    a.cov = Covariance::read(b);
    a.valid = b.get<int64_t>();
    a.land = b.get<int64_t>();
    return a;
  }
};

std::string join(const std::vector<double>& v, int precision = 6) {
  std::ostringstream s;
  s.precision(precision);
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
  return s.str();
}

}  // namespace

const std::vector<WetnessCoefficients>& wetness_sets() {
  static const std::vector<WetnessCoefficients> v = {
      {"landsat89",
       "Baig et al. 2014, Landsat 8 OLI (B2-B7); also used for Landsat 9",
       {0.1511, 0.1973, 0.3283, 0.3407, -0.7117, -0.4559}},
      {"sentinel2",
       "the Landsat 8 OLI set (Baig et al. 2014) on the equivalent MSI bands B2, B3, B4, B8, B11, "
       "B12, as RSEI studies on Sentinel-2 do (MSI's own published sets need the 13 bands)",
       {0.1511, 0.1973, 0.3283, 0.3407, -0.7117, -0.4559}},
      {"landsat7",
       "Huang et al. 2002, Landsat 7 ETM+ at-satellite reflectance (B1-B5, B7)",
       {0.2626, 0.2141, 0.0926, 0.0656, -0.7629, -0.5388}},
      {"landsat5",
       "Crist 1985, Landsat TM reflectance factors (B1-B5, B7)",
       {0.0315, 0.2021, 0.3102, 0.1594, -0.6806, -0.6109}},
  };
  return v;
}

WetnessCoefficients parse_wetness(const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& s : wetness_sets()) {
    if (s.id == t) return s;
  }
  std::string names;
  for (const auto& s : wetness_sets()) names += (names.empty() ? "" : ", ") + s.id;
  WetnessCoefficients w{"custom", "user-supplied coefficients", {}};
  std::stringstream ss(text);
  std::string item;
  int k = 0;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    while (end && *end == ' ') ++end;
    if (item.empty() || end == item.c_str() || *end || !std::isfinite(v) || k >= 6) {
      k = -1;
      break;
    }
    w.c[static_cast<std::size_t>(k++)] = v;
  }
  if (k != 6) {
    throw_usage("wetness coefficients '" + text + "': expected one of " + names +
                ", or six numbers for blue, green, red, NIR, SWIR1, SWIR2");
  }
  return w;
}

std::optional<WetnessCoefficients> wetness_for_sensor(const std::string& sensor_id) {
  if (sensor_id == "landsat89" || sensor_id == "sentinel2") return parse_wetness(sensor_id);
  return std::nullopt;
}

float ndbsi(float blue, float green, float red, float nir, float swir1) {
  const float a = swir1 + red, b = nir + blue;
  const float si = (a - b) / (a + b);
  const float x = 2.0f * swir1 / (swir1 + nir);
  const float y = nir / (nir + red) + green / (green + swir1);
  const float ibi = (x - y) / (x + y);
  const float v = 0.5f * (si + ibi);
  return std::isfinite(v) ? v : kNaN;
}

float tc_wetness(const std::array<double, 6>& c, float blue, float green, float red, float nir,
                 float swir1, float swir2) {
  return static_cast<float>(c[0] * blue + c[1] * green + c[2] * red + c[3] * nir + c[4] * swir1 +
                            c[5] * swir2);
}

double fvc_of(double ndvi, double soil, double veg) {
  if (std::isnan(ndvi)) return std::nan("");
  if (!(veg > soil)) return ndvi >= veg ? 1.0 : 0.0;
  return std::clamp((ndvi - soil) / (veg - soil), 0.0, 1.0);
}

int grade_of(double v, const std::array<double, 4>& breaks) {
  if (std::isnan(v)) return 0;
  int g = 1;
  for (double b : breaks) g += v >= b;
  return g;
}

const std::array<const char*, 6>& rsei_grade_names() {
  static const std::array<const char*, 6> n = {"", "poor", "fair", "moderate", "good", "excellent"};
  return n;
}

const std::array<const char*, 6>& fvc_level_names() {
  static const std::array<const char*, 6> n = {"",       "very low",    "low",
                                               "medium", "medium-high", "high"};
  return n;
}

const std::array<const char*, 10>& grade_change_names() {
  static const std::array<const char*, 10> n = {
      "no data",   "fell 4 grades", "fell 3 grades", "fell 2 grades", "fell 1 grade",
      "unchanged", "rose 1 grade",  "rose 2 grades", "rose 3 grades", "rose 4 grades"};
  return n;
}

RseiMode parse_rsei_mode(const std::string& text) {
  if (text == "joint") return RseiMode::kJoint;
  if (text == "per_date") return RseiMode::kPerDate;
  throw_usage("RSEI mode '" + text + "': expected joint or per_date");
}

Pca rsei_pca(const Covariance& raw, const std::vector<std::string>& names,
             const std::vector<double>& min, const std::vector<double>& max) {
  const int d = raw.dims();
  Pca p;
  p.components = names;
  p.min = min, p.max = max;
  p.pixels = static_cast<int64_t>(raw.weight());
  // Normalisation is affine per component: x' = (x - min) / range, so the covariance of the
  // normalised components is D C D with D = diag(1 / range) (a constant component: 0).
  Eigen::VectorXd inv(d), mean(d);
  for (int k = 0; k < d; ++k) {
    const double r = max[static_cast<std::size_t>(k)] - min[static_cast<std::size_t>(k)];
    inv[k] = r > 0 ? 1.0 / r : 0.0;
    mean[k] = (raw.mean()[k] - min[static_cast<std::size_t>(k)]) * inv[k];
  }
  const Eigen::MatrixXd c = inv.asDiagonal() * raw.covariance() * inv.asDiagonal();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(c);
  if (es.info() != Eigen::Success) throw_internal("RSEI: the eigen-decomposition failed");
  // Eigen orders eigenvalues ascending.
  Eigen::VectorXd v = es.eigenvectors().col(d - 1);
  if (v[0] < 0 || (v[0] == 0 && d > 1 && v[1] < 0)) v = -v;  // greenness (then wetness) up
  double total = 0;
  for (int k = d - 1; k >= 0; --k) {
    p.eigenvalues.push_back(es.eigenvalues()[k]);
    total += es.eigenvalues()[k];
  }
  p.variance_share = total > 0 ? es.eigenvalues()[d - 1] / total : 0.0;
  for (int k = 0; k < d; ++k) {
    p.loadings.push_back(v[k]);
    p.mean.push_back(mean[k]);
  }
  for (int i = 0; i < d; ++i) {
    for (int j = 0; j < d; ++j) p.covariance.push_back(c(i, j));
  }
  return p;
}

EcologyResult compute_ecology(const EcologyDate& t0, const EcologyDate& t1, const Grid& grid,
                              const EcologyOptions& opt, const SchedulerOptions& so) {
  const std::array<const EcologyDate*, 2> dates = {&t0, &t1};
  EcologyResult res;
  res.mode = opt.mode;

  // --- What each date provides ------------------------------------------------------------
  std::array<WetnessCoefficients, 2> wet;
  std::array<Heat, 2> heat{};
  for (int d = 0; d < 2; ++d) {
    const Imagery& im = *dates[static_cast<std::size_t>(d)]->imagery;
    for (Role r : kRoles) im.band(r, "RSEI (greenness, wetness, dryness)");
    if (opt.wetness == "auto") {
      const auto w = wetness_for_sensor(im.sensor().id);
      if (!w) {
        std::string names;
        for (const auto& s : wetness_sets()) names += (names.empty() ? "" : ", ") + s.id;
        throw_input(im.options().label + ": sensor '" + im.sensor().id +
                        "' has no published tasseled-cap wetness coefficients; choose a set (" +
                        names + ") or give six coefficients (ecology.wetness, --wetness)",
                    {.file = im.files_text()});
      }
      wet[static_cast<std::size_t>(d)] = *w;
    } else {
      wet[static_cast<std::size_t>(d)] = parse_wetness(opt.wetness);
    }
    const EcologyDate& dt = *dates[static_cast<std::size_t>(d)];
    heat[static_cast<std::size_t>(d)] = !dt.lst.empty()          ? Heat::kLst
                                        : im.has(Role::kThermal) ? Heat::kThermal
                                                                 : Heat::kNone;
  }
  res.wetness = wet[0];
  bool use_heat = false;
  if (opt.heat == "none") {
    use_heat = false;
  } else if (heat[0] != Heat::kNone && heat[1] != Heat::kNone) {
    use_heat = true;
  } else if (opt.heat == "required") {
    const int d = heat[0] == Heat::kNone ? 0 : 1;
    const Imagery& im = *dates[static_cast<std::size_t>(d)]->imagery;
    throw_input(im.options().label +
                    ": RSEI needs land surface temperature: give an LST raster (--lst-before, "
                    "--lst-after, inputs.<date>.lst) or a thermal band, or set ecology.heat to "
                    "none for the three-component variant",
                {.file = im.files_text()});
  } else if (heat[0] != Heat::kNone || heat[1] != Heat::kNone) {
    log::warn(
        "RSEI: only one date has a land surface temperature; both use the three-component "
        "variant (greenness, wetness, dryness)");
  }
  res.components = {"ndvi", "wet", "ndbsi"};
  if (use_heat) {
    res.components.push_back("lst");
    res.heat = heat[0] == Heat::kLst ? "lst raster" : "thermal band";
    if (heat[0] != heat[1]) res.heat = "lst raster / thermal band";
  } else {
    res.heat = "none (three-component variant)";
  }
  const int nc = static_cast<int>(res.components.size());

  std::array<DateReaders, 2> rd;
  for (int d = 0; d < 2; ++d) {
    const EcologyDate& dt = *dates[static_cast<std::size_t>(d)];
    const Imagery& im = *dt.imagery;
    DateReaders& r = rd[static_cast<std::size_t>(d)];
    for (std::size_t k = 0; k < 6; ++k)
      r.bands[k] = std::make_unique<BandReader>(im.band(kRoles[k]), grid, Resampling::kBilinear);
    if (use_heat) {
      const BandInfo hb = heat[static_cast<std::size_t>(d)] == Heat::kLst
                              ? external_band(dt.lst, 1, grid, "LST raster")
                              : thermal_band(im);
      r.heat = std::make_unique<BandReader>(hb, grid, Resampling::kBilinear);
    }
    r.mask = std::make_unique<MaskReader>(im.options().mask, grid);
    r.wet = wet[static_cast<std::size_t>(d)].c;
  }

  // --- Plan and scratch -------------------------------------------------------------------
  std::filesystem::create_directories(opt.out_dir);
  int bw = CogWriter::kTile, bh = CogWriter::kTile;
  {
    const BandInfo& first = t0.imagery->band(Role::kRed);
    if (!rd[0].bands[2]->warped() && grid.same_as(first.grid)) {
      DatasetPtr ds = open_raster(first.file);
      ds->GetRasterBand(first.band)->GetBlockSize(&bw, &bh);
    }
  }
  auto align = [](int block, int64_t size) -> int {
    if (block >= size) return static_cast<int>(size);
    return std::lcm(block, CogWriter::kTile);
  };
  SchedulerOptions sopt = so;
  if (sopt.label.empty() || sopt.label == "working") sopt.label = "ecology";
  BlockScheduler sched(sopt);
  // Pass 1 holds 7 bands and a mask per date, and nc components per date.
  const double bytes_per_px = 2.0 * (4.0 * 7 + 1 + 4.0 * nc) + 8;
  const WindowPlan plan = sched.plan(grid.width(), grid.height(), align(bw, grid.width()),
                                     align(bh, grid.height()), bytes_per_px);
  const std::size_t per_px = 2 * static_cast<std::size_t>(nc);  // floats per pixel
  std::vector<int64_t> offset(plan.size() + 1, 0);
  for (std::size_t k = 0; k < plan.size(); ++k)
    offset[k + 1] = offset[k] + plan.windows[k].pixels() * static_cast<int64_t>(per_px * 4);
  Scratch scratch(opt.out_dir);

  // --- Pass 1: components, scene statistics -----------------------------------------------
  // In a sharded run (engine/shard_session.hpp) the passes' results also carry what they
  // leave in the scratch file (the components, the score rims), so that a replay leaves it too.
  const bool sharded = so.shard != nullptr;
  struct Part1 {
    std::array<DateAcc, 2> acc;
    std::vector<float> comp;  // sharded runs: the window's components
    void write(ByteWriter& b) const {
      acc[0].write(b);
      acc[1].write(b);
      b.put_vector(comp);
    }
    static Part1 read(ByteReader& b) {
      Part1 p;
      p.acc[0] = DateAcc::read(b);
      p.acc[1] = DateAcc::read(b);
      p.comp = b.get_vector<float>();
      return p;
    }
  };
  std::array<DateAcc, 2> acc{DateAcc(nc), DateAcc(nc)};
  const bool mask_water = opt.water_mndwi.has_value();
  const float water_at = static_cast<float>(opt.water_mndwi.value_or(0.0));
  sched.run<Part1>(
      plan,
      [&](const Window& w, std::size_t wi) {
        const std::size_t n = static_cast<std::size_t>(w.pixels());
        Part1 part{{DateAcc(nc), DateAcc(nc)}};
        Uninit<float> out(n * per_px);
        Uninit<float> b(n * 7);
        Uninit<uint8_t> valid(n);
        std::vector<uint32_t> ndvi_counts(kNdviBins);
        for (int d = 0; d < 2; ++d) {
          DateReaders& r = rd[static_cast<std::size_t>(d)];
          DateAcc& a = part.acc[static_cast<std::size_t>(d)];
          for (std::size_t k = 0; k < 6; ++k) r.bands[k]->read_reflectance(w, b.data() + k * n);
          if (r.heat) r.heat->read_reflectance(w, b.data() + 6 * n);
          std::fill(valid.begin(), valid.end(), uint8_t{1});
          r.mask->apply(w, valid.data());
          float* comp = out.data() + static_cast<std::size_t>(d * nc) * n;
          std::fill(ndvi_counts.begin(), ndvi_counts.end(), 0u);
          // Per-window moments about a shift (the first land pixel), for precision.
          std::array<double, 4> shift{}, s1{};
          std::array<double, 16> s2{};
          bool shifted = false;
          int64_t land = 0;
          for (std::size_t i = 0; i < n; ++i) {
            const float bl = b[i], gr = b[n + i], re = b[2 * n + i], ni = b[3 * n + i],
                        w1 = b[4 * n + i], w2 = b[5 * n + i];
            const float lst = r.heat ? b[6 * n + i] : 0.0f;
            float x[4] = {kNaN, kNaN, kNaN, kNaN};
            const bool ok = valid[i] && !std::isnan(bl) && !std::isnan(gr) && !std::isnan(re) &&
                            !std::isnan(ni) && !std::isnan(w1) && !std::isnan(w2);
            if (ok) {
              ++a.valid;
              const float nd = (ni - re) / (ni + re);
              x[0] = std::isfinite(nd) ? nd : kNaN;
              const float mndwi = (gr - w1) / (gr + w1);
              // Water: MNDWI above the threshold and above NDVI, and dark in SWIR1 (blue steel
              // roofs have a positive MNDWI too, but a higher NDVI; white steel roofs a positive
              // MNDWI above their NDVI, but a bright SWIR1).
              const bool water = mask_water && mndwi > water_at && mndwi > nd && w1 < kWaterSwir1;
              // FVC's end members come from the land: open water is not bare soil.
              if (!std::isnan(x[0]) && !water) {
                const auto bin = static_cast<int>((x[0] + 1.0f) * (kNdviBins / 2));
                ++ndvi_counts[static_cast<std::size_t>(std::clamp(bin, 0, kNdviBins - 1))];
              }
              if (!water) {
                x[1] = tc_wetness(r.wet, bl, gr, re, ni, w1, w2);
                x[2] = ndbsi(bl, gr, re, ni, w1);
                if (nc == 4) x[3] = std::isfinite(lst) ? lst : kNaN;
              }
            }
            bool is_land = ok;
            for (int k = 0; k < nc; ++k) is_land = is_land && std::isfinite(x[k]);
            if (!is_land) x[1] = kNaN;  // the mark of a pixel outside the RSEI
            for (int k = 0; k < nc; ++k) comp[static_cast<std::size_t>(k) * n + i] = x[k];
            if (!is_land) continue;
            ++land;
            if (!shifted) {
              for (int k = 0; k < nc; ++k) shift[static_cast<std::size_t>(k)] = x[k];
              shifted = true;
            }
            double dx[4];
            for (int k = 0; k < nc; ++k) {
              const auto kk = static_cast<std::size_t>(k);
              a.mn[kk] = std::min(a.mn[kk], static_cast<double>(x[k]));
              a.mx[kk] = std::max(a.mx[kk], static_cast<double>(x[k]));
              dx[k] = x[k] - shift[kk];
              s1[kk] += dx[k];
            }
            for (int p = 0; p < nc; ++p) {
              for (int q = p; q < nc; ++q) s2[static_cast<std::size_t>(p * 4 + q)] += dx[p] * dx[q];
            }
          }
          a.land = land;
          for (int k = 0; k < kNdviBins; ++k) {
            if (ndvi_counts[static_cast<std::size_t>(k)])
              a.ndvi.add(a.ndvi.center(k), ndvi_counts[static_cast<std::size_t>(k)]);
          }
          if (land > 0) {
            const double wn = static_cast<double>(land);
            Eigen::VectorXd mean(nc);
            Eigen::MatrixXd m2(nc, nc);
            for (int p = 0; p < nc; ++p) mean[p] = s1[static_cast<std::size_t>(p)] / wn;
            for (int p = 0; p < nc; ++p) {
              for (int q = p; q < nc; ++q) {
                const double v = s2[static_cast<std::size_t>(p * 4 + q)] - wn * mean[p] * mean[q];
                m2(p, q) = m2(q, p) = v;
              }
            }
            for (int p = 0; p < nc; ++p) mean[p] += shift[static_cast<std::size_t>(p)];
            a.cov = Covariance::from_moments(wn, mean, m2);
          }
        }
        scratch.write(offset[wi], out.data(), out.size() * sizeof(float));
        if (sharded) part.comp.assign(out.data(), out.data() + out.size());
        return part;
      },
      [&](const Window&, std::size_t wi, Part1& p) {
        acc[0].merge(p.acc[0]);
        acc[1].merge(p.acc[1]);
        if (!p.comp.empty())  // replayed: the scratch file gets what compute() wrote elsewhere
          scratch.write(offset[wi], p.comp.data(), p.comp.size() * sizeof(float));
      });

  for (int d = 0; d < 2; ++d) {
    const DateAcc& a = acc[static_cast<std::size_t>(d)];
    const Imagery& im = *dates[static_cast<std::size_t>(d)]->imagery;
    if (a.land == 0) {
      throw Error(ExitCode::kNoData,
                  im.options().label +
                      ": no valid land pixel for the RSEI (every pixel is masked, nodata, "
                      "saturated or water)",
                  {.file = im.files_text()});
    }
    EcologyDateStats& st = res.dates[static_cast<std::size_t>(d)];
    st.valid = a.valid;
    st.land = a.land;
    st.ndvi_soil =
        opt.fvc.ndvi_soil ? *opt.fvc.ndvi_soil : a.ndvi.quantile(opt.fvc.low_percent / 100);
    st.ndvi_veg =
        opt.fvc.ndvi_veg ? *opt.fvc.ndvi_veg : a.ndvi.quantile(opt.fvc.high_percent / 100);
  }

  // --- PCA --------------------------------------------------------------------------------
  if (opt.mode == RseiMode::kJoint) {
    DateAcc j = acc[0];
    j.merge(acc[1]);
    res.pca.push_back(rsei_pca(j.cov, res.components, j.mn, j.mx));
  } else {
    for (int d = 0; d < 2; ++d) {
      const DateAcc& a = acc[static_cast<std::size_t>(d)];
      res.pca.push_back(rsei_pca(a.cov, res.components, a.mn, a.mx));
    }
  }
  auto pca_of = [&](int d) -> const Pca& {
    return res.pca[opt.mode == RseiMode::kJoint ? 0 : static_cast<std::size_t>(d)];
  };
  // Scores: sum_k loading_k (x_k - min_k) / range_k = sum_k a_k x_k + b.
  std::array<Score, 2> score;
  for (int d = 0; d < 2; ++d) {
    const Pca& p = pca_of(d);
    Score& sc = score[static_cast<std::size_t>(d)];
    sc.nc = nc;
    for (int k = 0; k < nc; ++k) {
      const auto kk = static_cast<std::size_t>(k);
      const double r = p.max[kk] - p.min[kk];
      const double a = r > 0 ? p.loadings[kk] / r : 0.0;
      sc.a[kk] = a;
      sc.b -= a * p.min[kk];
    }
  }

  // The rim of every window: its scores on its first and last rows and columns (double, NaN
  // outside the RSEI), written by pass 2 after the components, so that pass 3 sees its
  // neighbours' pixels across window borders (the majority rule for mixed pixels).
  std::vector<int64_t> rim_at(plan.size() + 1, offset[plan.size()]);
  for (std::size_t k = 0; k < plan.size(); ++k) {
    const Window& w = plan.windows[k];
    rim_at[k + 1] = rim_at[k] + 4 * (w.w + w.h) * static_cast<int64_t>(sizeof(double));
  }
  // Element (date d, side, i) of a window's rim: the top and bottom rows, the left and right
  // columns.
  enum Side { kTop, kBottom, kLeft, kRight };
  auto rim_index = [](const Window& w, int d, Side side, int64_t i) -> std::size_t {
    const int64_t start = side == kTop      ? 0
                          : side == kBottom ? w.w
                          : side == kLeft   ? 2 * w.w
                                            : 2 * w.w + w.h;
    return static_cast<std::size_t>(d * 2 * (w.w + w.h) + start + i);
  };

  // --- Pass 2: the range of the first component ---------------------------------------------
  struct Range {
    std::array<double, 2> lo{std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::infinity()};
    std::array<double, 2> hi{-std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity()};
    std::vector<double> rim;  // sharded runs: the window's score rim
    void write(ByteWriter& b) const {
      b.put(lo);
      b.put(hi);
      b.put_vector(rim);
    }
    static Range read(ByteReader& b) {
      Range r;
      r.lo = b.get<std::array<double, 2>>();
      r.hi = b.get<std::array<double, 2>>();
      r.rim = b.get_vector<double>();
      return r;
    }
  };
  sopt.label = "ecology (scores)";
  BlockScheduler sched2(sopt);
  Range range;
  sched2.run<Range>(
      plan,
      [&](const Window& w, std::size_t wi) {
        const std::size_t n = static_cast<std::size_t>(w.pixels());
        Uninit<float> in(n * per_px);
        scratch.read(offset[wi], in.data(), in.size() * sizeof(float));
        std::vector<double> rim(static_cast<std::size_t>(4 * (w.w + w.h)));
        Range r;
        for (int d = 0; d < 2; ++d) {
          const float* comp = in.data() + static_cast<std::size_t>(d * nc) * n;
          const Score& sc = score[static_cast<std::size_t>(d)];
          double lo = r.lo[static_cast<std::size_t>(d)], hi = r.hi[static_cast<std::size_t>(d)];
          for (std::size_t i = 0; i < n; ++i) {
            if (std::isnan(comp[n + i])) continue;
            const double s = sc(comp, n, i);
            lo = std::min(lo, s), hi = std::max(hi, s);
          }
          r.lo[static_cast<std::size_t>(d)] = lo, r.hi[static_cast<std::size_t>(d)] = hi;
          auto at = [&](int64_t x, int64_t y) {
            const auto i = static_cast<std::size_t>(y * w.w + x);
            return std::isnan(comp[n + i]) ? std::numeric_limits<double>::quiet_NaN()
                                           : sc(comp, n, i);
          };
          for (int64_t x = 0; x < w.w; ++x) {
            rim[rim_index(w, d, kTop, x)] = at(x, 0);
            rim[rim_index(w, d, kBottom, x)] = at(x, w.h - 1);
          }
          for (int64_t y = 0; y < w.h; ++y) {
            rim[rim_index(w, d, kLeft, y)] = at(0, y);
            rim[rim_index(w, d, kRight, y)] = at(w.w - 1, y);
          }
        }
        scratch.write(rim_at[wi], rim.data(), rim.size() * sizeof(double));
        if (sharded) r.rim = std::move(rim);
        return r;
      },
      [&](const Window&, std::size_t wi, Range& b) {
        for (std::size_t d = 0; d < 2; ++d) {
          range.lo[d] = std::min(range.lo[d], b.lo[d]);
          range.hi[d] = std::max(range.hi[d], b.hi[d]);
        }
        if (!b.rim.empty())  // replayed
          scratch.write(rim_at[wi], b.rim.data(), b.rim.size() * sizeof(double));
      });
  std::array<double, 2> lo = range.lo, hi = range.hi;
  if (opt.mode == RseiMode::kJoint) {
    lo[0] = lo[1] = std::min(range.lo[0], range.lo[1]);
    hi[0] = hi[1] = std::max(range.hi[0], range.hi[1]);
    res.pca[0].pc1_min = lo[0], res.pca[0].pc1_max = hi[0];
  } else {
    for (std::size_t d = 0; d < 2; ++d) res.pca[d].pc1_min = lo[d], res.pca[d].pc1_max = hi[d];
  }

  // --- Pass 3: the outputs --------------------------------------------------------------------
  const char* tag[2] = {"t0", "t1"};
  std::vector<std::unique_ptr<CogWriter>> writers;  // fvc t0, fvc t1, rsei t0, rsei t1, change
  for (int kind = 0; kind < 2; ++kind) {
    for (int d = 0; d < 2; ++d) {
      const EcologyDateStats& st = res.dates[static_cast<std::size_t>(d)];
      const Pca& p = pca_of(d);
      CogOptions co;
      co.type = opt.uint16 ? GDT_UInt16 : GDT_Float32;
      co.nodata = opt.uint16 ? kUInt16Nodata : kFloatNodata;
      co.scale = opt.uint16 ? 1e-4 : 1.0;
      co.compress = opt.compress;
      co.level = opt.level;
      const std::string name = std::string(kind == 0 ? "fvc_" : "rsei_") + tag[d];
      co.descriptions = {kind == 0 ? "fvc" : "rsei"};
      if (kind == 0) {
        co.metadata = {{"INDICATOR", "fractional vegetation cover (dimidiate pixel model)"},
                       {"NDVI_SOIL", std::to_string(st.ndvi_soil)},
                       {"NDVI_VEG", std::to_string(st.ndvi_veg)},
                       {"LEVEL_BREAKS", join({opt.fvc.breaks.begin(), opt.fvc.breaks.end()})}};
      } else {
        std::string comps;
        for (const auto& c : res.components) comps += (comps.empty() ? "" : ",") + c;
        co.metadata = {{"INDICATOR", "remote-sensing ecological index (RSEI, Xu 2013)"},
                       {"COMPONENTS", comps},
                       {"PC1_LOADINGS", join(p.loadings)},
                       {"PC1_VARIANCE_SHARE", std::to_string(p.variance_share)},
                       {"MODE", opt.mode == RseiMode::kJoint ? "joint" : "per_date"},
                       {"WETNESS", wet[static_cast<std::size_t>(d)].id},
                       {"GRADE_BREAKS", join({opt.rsei_breaks.begin(), opt.rsei_breaks.end()})}};
      }
      const std::string path = opt.out_dir + "/" + name + ".tif";
      writers.push_back(std::make_unique<CogWriter>(path, grid, 1, co));
      res.files.push_back(path);
    }
  }
  {
    CogOptions co;
    co.type = GDT_Byte;
    co.nodata = kGradeChangeNodata;
    co.compress = opt.compress;
    co.level = opt.level;
    co.overview_resampling = "NEAREST";
    co.descriptions = {"rsei grade change"};
    co.colors = {{0, 0, 0, 0},         {165, 0, 38, 255},   {215, 48, 39, 255},
                 {244, 109, 67, 255},  {253, 174, 97, 255}, {224, 224, 224, 255},
                 {166, 217, 106, 255}, {102, 189, 99, 255}, {26, 152, 80, 255},
                 {0, 104, 55, 255}};
    // The names go into the metadata (and the QGIS style), not GDAL's category names: those
    // live in a .aux.xml sidecar and would send the file through GDAL's slower COG path.
    std::string names;
    for (int k = 1; k < 10; ++k)
      names += std::to_string(k) + "=" + grade_change_names()[static_cast<std::size_t>(k)] +
               (k < 9 ? ";" : "");
    co.metadata = {{"INDICATOR", "RSEI grade change, t1 minus t0 (5 = unchanged)"},
                   {"CLASS_NAMES", names},
                   {"MIN_CHANGE", std::to_string(opt.min_change)},
                   {"MIXED_PIXELS", opt.majority_rule ? "majority" : "whole"}};
    const std::string path = opt.out_dir + "/rsei_grade_change.tif";
    writers.push_back(std::make_unique<CogWriter>(path, grid, 1, co));
    res.files.push_back(path);
  }
  struct Part3 {
    std::vector<std::shared_ptr<CogWriter::Chunk>> chunks;
    std::array<double, 2> fvc_sum{}, rsei_sum{};
    std::array<int64_t, 2> fvc_n{}, rsei_n{};
    std::array<std::array<int64_t, 6>, 2> grades{}, levels{};
    std::array<int64_t, 10> change{};
    void write(ByteWriter& b) const {
      CogWriter::write_chunks(chunks, b);
      b.put(fvc_sum), b.put(rsei_sum), b.put(fvc_n), b.put(rsei_n);
      b.put(grades), b.put(levels), b.put(change);
    }
    static Part3 read(ByteReader& b) {
      Part3 p;
      p.chunks = CogWriter::read_chunks(b);
      p.fvc_sum = b.get<std::array<double, 2>>();
      p.rsei_sum = b.get<std::array<double, 2>>();
      p.fvc_n = b.get<std::array<int64_t, 2>>();
      p.rsei_n = b.get<std::array<int64_t, 2>>();
      p.grades = b.get<std::array<std::array<int64_t, 6>, 2>>();
      p.levels = b.get<std::array<std::array<int64_t, 6>, 2>>();
      p.change = b.get<std::array<int64_t, 10>>();
      return p;
    }
  };
  std::array<double, 2> rlo = lo, rinv{};
  for (std::size_t d = 0; d < 2; ++d) rinv[d] = hi[d] > lo[d] ? 1.0 / (hi[d] - lo[d]) : 0.0;
  Part3 total;
  sopt.label = "ecology (outputs)";
  BlockScheduler sched3(sopt);
  sched3.run<Part3>(
      plan,
      [&](const Window& w, std::size_t wi) {
        const std::size_t n = static_cast<std::size_t>(w.pixels());
        Uninit<float> in(n * per_px);
        scratch.read(offset[wi], in.data(), in.size() * sizeof(float));
        Uninit<float> fvc(2 * n), rsei(2 * n);
        Uninit<uint8_t> change(n), grade(2 * n);
        Part3 p;
        const auto& fb = opt.fvc.breaks;
        const auto& rb = opt.rsei_breaks;
        for (int d = 0; d < 2; ++d) {
          const auto dd = static_cast<std::size_t>(d);
          const float* comp = in.data() + static_cast<std::size_t>(d * nc) * n;
          const EcologyDateStats& st = res.dates[dd];
          float* f = fvc.data() + dd * n;
          float* r = rsei.data() + dd * n;
          uint8_t* g = grade.data() + dd * n;
          const bool spread = st.ndvi_veg > st.ndvi_soil;
          const double inv = spread ? 1.0 / (st.ndvi_veg - st.ndvi_soil) : 0.0;
          const Score& sc = score[dd];
          const double lo_d = rlo[dd], inv_d = rinv[dd];
          double fsum = 0, rsum = 0;
          int64_t fn = 0, rn = 0;
          for (std::size_t i = 0; i < n; ++i) {
            const float nd = comp[i];
            if (std::isnan(nd)) {
              f[i] = kFloatNodata;
            } else {
              const double v = spread ? std::clamp((nd - st.ndvi_soil) * inv, 0.0, 1.0)
                                      : fvc_of(nd, st.ndvi_soil, st.ndvi_veg);
              f[i] = static_cast<float>(v);
              fsum += v;
              ++fn;
              const double fv = f[i];
              ++p.levels[dd][static_cast<std::size_t>(grade_of(fv, fb))];
            }
            if (std::isnan(comp[n + i])) {
              r[i] = kFloatNodata;
              g[i] = 0;
              continue;
            }
            r[i] = rsei_value(sc(comp, n, i), lo_d, inv_d);
            rsum += r[i];
            ++rn;
            const double rv = r[i];
            g[i] = static_cast<uint8_t>(grade_of(rv, rb));
            ++p.grades[dd][g[i]];
          }
          p.fvc_sum[dd] = fsum, p.fvc_n[dd] = fn;
          p.rsei_sum[dd] = rsum, p.rsei_n[dd] = rn;
        }
        const float* r0 = rsei.data();
        const float* r1 = rsei.data() + n;
        const uint8_t* g0 = grade.data();
        const uint8_t* g1 = grade.data() + n;
        const float min_change = static_cast<float>(opt.min_change);
        if (!opt.majority_rule) {
          for (std::size_t i = 0; i < n; ++i) {
            const int8_t m = grade_move(r0[i], r1[i], g0[i], g1[i], min_change);
            change[i] =
                m == kNoMove ? kGradeChangeNodata : static_cast<uint8_t>(kGradeUnchanged + m);
          }
        } else {
          // Grade moves and RSEI moves on the window plus a one-pixel halo taken from the
          // neighbouring windows' rims.
          const int64_t hw = w.w + 2, hh = w.h + 2;
          Uninit<int8_t> mv(static_cast<std::size_t>(hw * hh));
          Uninit<float> mag(static_cast<std::size_t>(hw * hh));
          auto cell = [&](int64_t hx, int64_t hy) {
            return static_cast<std::size_t>(hy * hw + hx);
          };
          for (int64_t hx = 0; hx < hw; ++hx) {
            mv[cell(hx, 0)] = mv[cell(hx, hh - 1)] = kNoMove;
            mag[cell(hx, 0)] = mag[cell(hx, hh - 1)] = 0.0f;
          }
          for (int64_t hy = 0; hy < hh; ++hy) {
            mv[cell(0, hy)] = mv[cell(hw - 1, hy)] = kNoMove;
            mag[cell(0, hy)] = mag[cell(hw - 1, hy)] = 0.0f;
          }
          for (int64_t y = 0; y < w.h; ++y) {
            for (int64_t x = 0; x < w.w; ++x) {
              const auto i = static_cast<std::size_t>(y * w.w + x);
              mv[cell(x + 1, y + 1)] = grade_move(r0[i], r1[i], g0[i], g1[i], min_change);
              mag[cell(x + 1, y + 1)] = std::abs(r1[i] - r0[i]);
            }
          }
          // A halo pixel from its window's rim: (gx, gy) lies on that window's `side`.
          std::vector<double> rim;
          int64_t rim_of = -1;
          auto halo = [&](int64_t gx, int64_t gy, Side side, int64_t hx, int64_t hy) {
            if (gx < 0 || gy < 0 || gx >= grid.width() || gy >= grid.height()) return;
            const int64_t k = (gy / plan.win_h) * ((grid.width() + plan.win_w - 1) / plan.win_w) +
                              gx / plan.win_w;
            const Window& nw = plan.windows[static_cast<std::size_t>(k)];
            if (k != rim_of) {
              rim.resize(static_cast<std::size_t>(4 * (nw.w + nw.h)));
              scratch.read(rim_at[static_cast<std::size_t>(k)], rim.data(),
                           rim.size() * sizeof(double));
              rim_of = k;
            }
            const int64_t along = side == kTop || side == kBottom ? gx - nw.x : gy - nw.y;
            float rv[2];
            int gv[2];
            for (int d = 0; d < 2; ++d) {
              const double s = rim[rim_index(nw, d, side, along)];
              rv[d] = std::isnan(s) ? kFloatNodata : rsei_value(s, rlo[d], rinv[d]);
              gv[d] = std::isnan(s) ? 0 : grade_of(static_cast<double>(rv[d]), rb);
            }
            mv[cell(hx, hy)] = grade_move(rv[0], rv[1], gv[0], gv[1], min_change);
            mag[cell(hx, hy)] = std::abs(rv[1] - rv[0]);
          };
          for (int64_t hx = 0; hx < hw; ++hx) halo(w.x - 1 + hx, w.y - 1, kBottom, hx, 0);
          for (int64_t hx = 0; hx < hw; ++hx) halo(w.x - 1 + hx, w.y + w.h, kTop, hx, hh - 1);
          for (int64_t y = 0; y < w.h; ++y) {
            halo(w.x - 1, w.y + y, kRight, 0, y + 1);
            halo(w.x + w.w, w.y + y, kLeft, hw - 1, y + 1);
          }
          // A moved pixel next to an unmoved one keeps its move when it moved at least half as
          // much as its strongest neighbour moving the same way.
          for (int64_t y = 0; y < w.h; ++y) {
            for (int64_t x = 0; x < w.w; ++x) {
              const auto i = static_cast<std::size_t>(y * w.w + x);
              int8_t m = mv[cell(x + 1, y + 1)];
              if (m != kNoMove && m != 0) {
                bool rim_px = false;
                float strongest = 0;
                for (int64_t dy = 0; dy < 3; ++dy) {
                  for (int64_t dx = 0; dx < 3; ++dx) {
                    if (dx == 1 && dy == 1) continue;
                    const int8_t q = mv[cell(x + dx, y + dy)];
                    if (q == 0) {
                      rim_px = true;
                    } else if (q != kNoMove && (q > 0) == (m > 0)) {
                      strongest = std::max(strongest, mag[cell(x + dx, y + dy)]);
                    }
                  }
                }
                if (rim_px && mag[cell(x + 1, y + 1)] < 0.5f * strongest) m = 0;
              }
              change[i] =
                  m == kNoMove ? kGradeChangeNodata : static_cast<uint8_t>(kGradeUnchanged + m);
            }
          }
        }
        for (std::size_t i = 0; i < n; ++i) ++p.change[change[i]];
        if (opt.uint16) {
          // x 10000, rounded; nodata 65535.
          // The integers as float: the writer takes them without another conversion.
          Uninit<float> packed(n);
          const float* planes[4] = {fvc.data(), fvc.data() + n, rsei.data(), rsei.data() + n};
          for (std::size_t k = 0; k < 4; ++k) {
            const float* v = planes[k];
            for (std::size_t i = 0; i < n; ++i) {
              packed[i] = v[i] == kFloatNodata
                              ? static_cast<float>(kUInt16Nodata)
                              : static_cast<float>(static_cast<uint16_t>(v[i] * 1e4f + 0.5f));
            }
            p.chunks.push_back(writers[k]->encode_values(1, w, packed.data()));
          }
        } else {
          p.chunks.push_back(writers[0]->encode(1, w, fvc.data()));
          p.chunks.push_back(writers[1]->encode(1, w, fvc.data() + n));
          p.chunks.push_back(writers[2]->encode(1, w, rsei.data()));
          p.chunks.push_back(writers[3]->encode(1, w, rsei.data() + n));
        }
        p.chunks.push_back(writers[4]->encode(1, w, change.data()));
        return p;
      },
      [&](const Window&, std::size_t, Part3& p) {
        for (std::size_t k = 0; k < writers.size(); ++k) writers[k]->add(p.chunks[k]);
        for (std::size_t d = 0; d < 2; ++d) {
          total.fvc_sum[d] += p.fvc_sum[d];
          total.rsei_sum[d] += p.rsei_sum[d];
          total.fvc_n[d] += p.fvc_n[d];
          total.rsei_n[d] += p.rsei_n[d];
          for (std::size_t g = 0; g < 6; ++g) {
            total.grades[d][g] += p.grades[d][g];
            total.levels[d][g] += p.levels[d][g];
          }
        }
        for (std::size_t c = 0; c < 10; ++c) total.change[c] += p.change[c];
      });
  for (std::size_t d = 0; d < 2; ++d) {
    EcologyDateStats& st = res.dates[d];
    st.fvc_mean = total.fvc_n[d] ? total.fvc_sum[d] / static_cast<double>(total.fvc_n[d]) : 0.0;
    st.rsei_mean = total.rsei_n[d] ? total.rsei_sum[d] / static_cast<double>(total.rsei_n[d]) : 0.0;
    st.rsei_grades = total.grades[d];
    st.fvc_levels = total.levels[d];
  }
  res.grade_change = total.change;
  for (int c = 1; c < kGradeUnchanged; ++c)
    res.degraded += total.change[static_cast<std::size_t>(c)];
  for (int c = kGradeUnchanged + 1; c < 10; ++c)
    res.improved += total.change[static_cast<std::size_t>(c)];
  for (auto& w : writers) w->commit();
  return res;
}

}  // namespace fw::rasters
