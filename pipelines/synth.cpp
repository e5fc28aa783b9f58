#include "pipelines/synth.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/hash.hpp"
#include "engine/log.hpp"
#include "engine/raster_io.hpp"
#include "engine/versions.hpp"
#include "rasters/change.hpp"
#include "rasters/spectra.hpp"
#include "vectors/vector_writer.hpp"

namespace fw::synth {
namespace {

using spectra::Material;
using spectra::Spectrum;
using json = nlohmann::json;
constexpr double kPixel = 10.0;         // metres
constexpr double kMu = 10000.0 / 15.0;  // 1 mu = 666.67 m2
constexpr double kPi = 3.14159265358979323846;

enum class Use : uint8_t {
  kWheat,
  kRice,
  kVegetables,
  kFallow,
  kOrchard,
  kWood,
  kVillage,
  kPond,
  kGrass
};
const char* use_name(Use u) {
  static const char* names[] = {"wheat",    "rice",    "vegetables", "fallow",   "orchard",
                                "woodland", "village", "pond",       "grassland"};
  return names[static_cast<int>(u)];
}
bool is_crop(Use u) {
  return u == Use::kWheat || u == Use::kRice || u == Use::kVegetables;
}

enum class LandClass : uint8_t { kBasic, kGeneral, kOther };
const char* land_class_name(LandClass c) {
  static const char* names[] = {"permanent_basic_farmland", "general_farmland", "other"};
  return names[static_cast<int>(c)];
}

// The planted categories are the change categories of rasters/change.hpp (1..6).
using Category = rasters::ChangeCategory;
constexpr int kCategories = 6;
Category planted(int k) {
  return static_cast<Category>(k + 1);
}
std::size_t slot(Category c) {
  return static_cast<std::size_t>(c) - 1;
}
const char* intensity_name(int i) {
  static const char* names[] = {"slight", "moderate", "severe"};
  return names[i];
}
// Share of the new surface in a changed pixel, per intensity.
constexpr std::array<double, 3> kIntensityMix = {0.7, 0.85, 1.0};
// Planted change areas (m2), from below to well above 1 mu.
constexpr std::array<double, 10> kSizes = {150, 300, 500, 700, 1000, 1600, 2500, 4000, 8000, 15000};

struct P2 {
  double x, y;
};

double cross(const P2& o, const P2& a, const P2& b) {
  return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

struct Cell {
  Use use = Use::kGrass;
  LandClass land_class = LandClass::kOther;
  bool has_parcel = false;
  bool in_lake = false;
  std::array<P2, 4> q{};  // TL, TR, BR, BL in pixel coordinates (y down)
  bool hole = false, hole_trees = false;
  double hx0 = 0, hy0 = 0, hx1 = 0, hy1 = 0;
  bool split = false;
  double split_x = 0;
  bool invalid = false;
  int change = -1;
  float fc_shift = 0;
  bool turbid = false;
  int township = 0, village = 0;
  int zone = -1;

  bool in_quad(double x, double y) const {
    // Convex quad, TL-TR-BR-BL: clockwise on screen, so every cross product is >= 0 inside.
    const P2 p{x, y};
    for (int k = 0; k < 4; ++k) {
      if (cross(q[k], q[(k + 1) % 4], p) < 0) return false;
    }
    return true;
  }
};

struct Change {
  int id = 0;
  Category cat{};
  int intensity = 0;
  double mix = 1;
  Material material{};
  double cx = 0, cy = 0, a = 0, b = 0, cos_t = 1, sin_t = 0;  // rotated rectangle, pixels
  int cell = -1;

  bool contains(double x, double y) const {
    const double dx = x - cx, dy = y - cy;
    const double u = dx * cos_t + dy * sin_t, v = -dx * sin_t + dy * cos_t;
    return std::abs(u) <= a && std::abs(v) <= b;
  }
  std::array<P2, 4> corners() const {
    std::array<P2, 4> c;
    const double su[4] = {-1, 1, 1, -1}, sv[4] = {-1, -1, 1, 1};
    for (int k = 0; k < 4; ++k) {
      const double u = su[k] * a, v = sv[k] * b;
      c[k] = {cx + u * cos_t - v * sin_t, cy + u * sin_t + v * cos_t};
    }
    return c;
  }
  double half_extent_x() const { return a * std::abs(cos_t) + b * std::abs(sin_t); }
  double half_extent_y() const { return a * std::abs(sin_t) + b * std::abs(cos_t); }
};

struct Cloud {
  double cx, cy, r;
};

struct Zone {
  std::string id, name, type, sensitivity;
  std::vector<P2> ring;  // pixel coordinates, closed implicitly
  bool contains(double x, double y) const {
    bool in = false;
    for (std::size_t i = 0, j = ring.size() - 1; i < ring.size(); j = i++) {
      if ((ring[i].y > y) != (ring[j].y > y) &&
          x < (ring[j].x - ring[i].x) * (y - ring[i].y) / (ring[j].y - ring[i].y) + ring[i].x) {
        in = !in;
      }
    }
    return in;
  }
};

// SCL codes (ESA Sentinel-2 L2A scene classification).
enum Scl : uint8_t {
  kSclNoData = 0,
  kSclDark = 2,
  kSclShadow = 3,
  kSclVeg = 4,
  kSclNotVeg = 5,
  kSclWater = 6,
  kSclUnclassified = 7,
  kSclCloudMed = 8,
  kSclCloudHigh = 9,
  kSclCirrus = 10
};

struct SurfaceInfo {
  bool water = false;
};

class Scene {
 public:
  explicit Scene(const Options& o);

  // Reflectance (before atmosphere and noise) of the point (x, y) in pixel coordinates.
  Spectrum surface(double x, double y, int date, float vigor, SurfaceInfo* info) const;
  // Whether a planted change's outline crosses the pixel centred at (cx, cy).
  bool change_edge(double cx, double cy) const;
  // Full pixel value (2x2 supersampled surface, atmosphere, noise, clouds), reflectance.
  void pixel(int64_t col, int64_t row, int date, const std::vector<int>& clouds,
             std::array<float, 6>& out) const;
  // Land surface temperature (kelvin) of the pixel: the 2 x 2 samples' energy-balance proxy,
  // noise, clouds' tops.
  float lst(int64_t col, int64_t row, int date, const std::vector<int>& clouds) const;
  uint8_t scl(int64_t col20, int64_t row20, int date, const std::vector<int>& clouds) const;
  void cloud_at(double x, double y, const std::vector<int>& clouds, double& op, double& sh) const;
  std::vector<int> clouds_near(const Extent& px_box) const;

  double vnoise(double x, double y, uint64_t salt) const;

  const Options& opt;
  int64_t W, H;
  int nx = 1, ny = 1;
  double cw = 1, ch = 1;
  std::vector<Cell> cells;
  std::vector<Change> changes;
  std::vector<Cloud> clouds;
  std::vector<Zone> zones;
  double lake_cx = 0, lake_cy = 0, lake_rx = 1, lake_ry = 1;
  double shadow_dx = 0, shadow_dy = 0;
  std::vector<std::string> township_names, village_names;
  int tx = 1, ty = 1, vx = 1, vy = 1;

 private:
  uint64_t h(std::initializer_list<uint64_t> parts) const;
  bool road_v(int i) const { return i > 0 && i % 4 == 0; }
  bool road_h(int j) const { return j > 0 && j % 5 == 0; }
  bool in_lake(double x, double y) const {
    const double dx = (x - lake_cx) / lake_rx, dy = (y - lake_cy) / lake_ry;
    return dx * dx + dy * dy <= 1.0;
  }
  Spectrum use_spectrum(const Cell& c, int ci, double x, double y, int date, float vigor,
                        SurfaceInfo* info) const;
  Spectrum change_spectrum(const Change& ch, const Spectrum& before, double x, double y,
                           SurfaceInfo* info) const;
  void build_cells();
  void build_zones();
  void build_changes();
  void build_clouds();
};

uint64_t Scene::h(std::initializer_list<uint64_t> parts) const {
  uint64_t v = mix64(opt.seed * 0x9e3779b97f4a7c15ull + 0x1234567ull);
  for (uint64_t p : parts) v = mix64(v ^ p);
  return v;
}

double Scene::vnoise(double x, double y, uint64_t salt) const {
  const double fx = std::floor(x), fy = std::floor(y);
  const auto ix = static_cast<int64_t>(fx), iy = static_cast<int64_t>(fy);
  double tx_ = x - fx, ty_ = y - fy;
  tx_ = tx_ * tx_ * (3 - 2 * tx_);
  ty_ = ty_ * ty_ * (3 - 2 * ty_);
  auto v = [&](int64_t a, int64_t b) {
    return unit(h({salt, static_cast<uint64_t>(a), static_cast<uint64_t>(b)}));
  };
  const double top = v(ix, iy) + (v(ix + 1, iy) - v(ix, iy)) * tx_;
  const double bot = v(ix, iy + 1) + (v(ix + 1, iy + 1) - v(ix, iy + 1)) * tx_;
  return top + (bot - top) * ty_;
}

Scene::Scene(const Options& o) : opt(o), W(o.width), H(o.height) {
  const int n = std::max(1, o.parcels);
  nx = std::max(1, static_cast<int>(std::lround(std::sqrt(n * static_cast<double>(W) / H))));
  ny = std::max(1, (n + nx - 1) / nx);
  cw = static_cast<double>(W) / nx;
  ch = static_cast<double>(H) / ny;
  lake_cx = 0.72 * W, lake_cy = 0.30 * H;
  lake_rx = std::max(8.0, 0.09 * W), lake_ry = std::max(6.0, 0.065 * H);
  build_zones();
  build_cells();
  build_changes();
  build_clouds();
}

void Scene::build_zones() {
  // Ecological red line: an irregular hexagon over a wooded hill.
  Zone red{"Z1", "青龙山生态保护红线", "ecological_red_line", "high", {}};
  const double rcx = 0.25 * W, rcy = 0.70 * H, rr = 0.13 * std::min(W, H);
  for (int k = 0; k < 6; ++k) {
    const double ang = kPi / 3 * k + 0.2, rad = rr * (0.85 + 0.3 * unit(h({11, uint64_t(k)})));
    red.ring.push_back({rcx + rad * std::cos(ang), rcy + rad * std::sin(ang)});
  }
  // Wetland: the lake and its shore.
  Zone wet{"Z2", "白鹭湖湿地", "wetland", "high", {}};
  for (int k = 0; k < 48; ++k) {
    const double ang = 2 * kPi * k / 48;
    wet.ring.push_back(
        {lake_cx + 1.6 * lake_rx * std::cos(ang), lake_cy + 1.6 * lake_ry * std::sin(ang)});
  }
  // Drinking-water source protection area over farmland.
  Zone src{"Z3", "清泉水源保护区", "water_source_protection", "medium", {}};
  src.ring = {
      {0.55 * W, 0.62 * H}, {0.82 * W, 0.62 * H}, {0.82 * W, 0.90 * H}, {0.55 * W, 0.90 * H}};
  zones = {red, wet, src};
}

void Scene::build_cells() {
  cells.resize(static_cast<std::size_t>(nx) * ny);
  const int n = std::max(1, opt.parcels);
  tx = ty = n >= 2000 ? 3 : 2;
  tx = std::min(tx, nx), ty = std::min(ty, ny);
  vx = vy = n >= 2000 ? 3 : 2;
  static const char* towns[] = {"青山镇", "河口镇", "柳林乡", "白水镇", "石桥镇",
                                "新安乡", "龙泉镇", "桃园乡", "长岭镇"};
  static const char* surnames[] = {"张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴",
                                   "徐", "孙", "胡", "朱", "高", "林", "何", "郭", "马", "罗"};
  static const char* suffixes[] = {"家村", "庄村", "湾村", "岗村"};
  for (int t = 0; t < tx * ty; ++t) township_names.push_back(towns[t % 9]);
  for (int v = 0; v < tx * ty * vx * vy; ++v) {
    village_names.push_back(std::string(surnames[v % 20]) + suffixes[(v / 20) % 4]);
  }
  const double jitter = 0.06 * std::min(cw, ch);
  for (int j = 0; j < ny; ++j) {
    for (int i = 0; i < nx; ++i) {
      const int idx = j * nx + i;
      Cell& c = cells[static_cast<std::size_t>(idx)];
      c.has_parcel = idx < n;
      const double x0 = i * cw, x1 = (i + 1) * cw, y0 = j * ch, y1 = (j + 1) * ch;
      const double mx = 0.5 * (x0 + x1), my = 0.5 * (y0 + y1);
      const double r = unit(h({1, uint64_t(idx)}));
      c.in_lake = in_lake(mx, my);
      for (int z = 0; z < static_cast<int>(zones.size()); ++z) {
        if (zones[static_cast<std::size_t>(z)].contains(mx, my)) {
          c.zone = z;
          break;
        }
      }
      if (c.in_lake) {
        c.use = Use::kGrass;
      } else if (c.zone == 0) {
        c.use = r < 0.8 ? Use::kWood : Use::kGrass;
      } else if (c.zone == 1) {
        c.use = r < 0.4 ? Use::kPond : r < 0.7 ? Use::kGrass : Use::kRice;
      } else {
        c.use = r < 0.26   ? Use::kWheat
                : r < 0.46 ? Use::kRice
                : r < 0.64 ? Use::kVegetables
                : r < 0.71 ? Use::kFallow
                : r < 0.77 ? Use::kOrchard
                : r < 0.83 ? Use::kWood
                : r < 0.90 ? Use::kVillage
                : r < 0.96 ? Use::kPond
                           : Use::kGrass;
      }
      const double r2 = unit(h({2, uint64_t(idx)}));
      if (is_crop(c.use)) {
        c.land_class = r2 < 0.65 ? LandClass::kBasic : LandClass::kGeneral;
      } else if (c.use == Use::kFallow) {
        c.land_class = r2 < 0.5 ? LandClass::kBasic : LandClass::kGeneral;
      } else if (c.use == Use::kOrchard) {
        c.land_class = LandClass::kGeneral;
      } else {
        c.land_class = LandClass::kOther;
      }
      // Field quad: inset from the cell by a margin, more where a road runs.
      const double m = 0.4, road = 0.6;
      const double l = x0 + m + (road_v(i) ? road : 0), rgt = x1 - m - (road_v(i + 1) ? road : 0);
      const double t = y0 + m + (road_h(j) ? road : 0), b = y1 - m - (road_h(j + 1) ? road : 0);
      const P2 base[4] = {{l, t}, {rgt, t}, {rgt, b}, {l, b}};
      for (int k = 0; k < 4; ++k) {
        const double jx = (unit(h({3, uint64_t(idx), uint64_t(k)})) * 2 - 1) * jitter;
        const double jy = (unit(h({4, uint64_t(idx), uint64_t(k)})) * 2 - 1) * jitter;
        // Corners move inward only, so that neighbouring fields never overlap.
        const double sx = (k == 0 || k == 3) ? 1 : -1, sy = (k < 2) ? 1 : -1;
        c.q[static_cast<std::size_t>(k)] = {base[k].x + sx * std::abs(jx),
                                            base[k].y + sy * std::abs(jy)};
      }
      c.fc_shift = static_cast<float>((unit(h({5, uint64_t(idx)})) - 0.5) * 0.12);
      c.turbid = unit(h({6, uint64_t(idx)})) < 0.6;
      const double r3 = unit(h({7, uint64_t(idx)}));
      const double inner = std::min(cw, ch);
      if (is_crop(c.use) && c.has_parcel && !c.in_lake) {
        if (r3 < 0.06 && inner >= 14) {
          c.hole = true;
          c.hole_trees = unit(h({8, uint64_t(idx)})) < 0.5;
          const double s = 2 + 2 * unit(h({9, uint64_t(idx)}));
          const double hx = mx + (unit(h({10, uint64_t(idx)})) - 0.5) * 0.4 * cw;
          const double hy = my + (unit(h({12, uint64_t(idx)})) - 0.5) * 0.4 * ch;
          c.hx0 = hx - s / 2, c.hx1 = hx + s / 2, c.hy0 = hy - s / 2, c.hy1 = hy + s / 2;
        } else if (r3 < 0.12 && cw >= 10) {
          c.split = true;
          c.split_x = mx + (unit(h({13, uint64_t(idx)})) - 0.5) * 0.2 * cw;
        } else if (r3 < 0.135) {
          c.invalid = true;
        }
      }
      const int ti = std::min(tx - 1, i * tx / nx), tj = std::min(ty - 1, j * ty / ny);
      c.township = tj * tx + ti;
      const int vi = std::min(vx - 1, (i * tx * vx / nx) % vx);
      const int vj = std::min(vy - 1, (j * ty * vy / ny) % vy);
      c.village = c.township * vx * vy + vj * vx + vi;
    }
  }
  // At least one invalid geometry in any scene with enough parcels.
  bool any_invalid = false;
  for (const Cell& c : cells) any_invalid |= c.invalid;
  if (!any_invalid && n >= 20) {
    for (Cell& c : cells) {
      if (is_crop(c.use) && c.has_parcel && !c.hole && !c.split && !c.in_lake) {
        c.invalid = true;
        break;
      }
    }
  }
}

void Scene::build_changes() {
  // Candidate host cells per category, in a seeded random order.
  // A change must not reach into the lake, whose water overrides every cell (the truth would
  // then claim a change where the image shows none): corners and edge midpoints outside it.
  auto touches_lake = [&](const Cell& c) {
    for (int k = 0; k < 4; ++k) {
      const P2& a = c.q[static_cast<std::size_t>(k)];
      const P2& b = c.q[static_cast<std::size_t>((k + 1) % 4)];
      if (in_lake(a.x, a.y) || in_lake(0.5 * (a.x + b.x), 0.5 * (a.y + b.y))) return true;
    }
    return false;
  };
  auto usable = [&](const Cell& c) {
    return c.has_parcel && !c.in_lake && !c.hole && !c.split && c.change < 0 &&
           std::min(cw, ch) >= 4 && !touches_lake(c);
  };
  std::vector<int> order(cells.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return h({20, uint64_t(a)}) < h({20, uint64_t(b)});
  });
  auto hosts_for = [&](Category cat) {
    std::vector<int> out;
    for (int idx : order) {
      const Cell& c = cells[static_cast<std::size_t>(idx)];
      bool ok = false;
      switch (cat) {
        case Category::kConstruction:
        case Category::kBareSoil:
          ok = is_crop(c.use) || c.use == Use::kFallow || (c.zone == 0 && c.use == Use::kWood);
          break;
        case Category::kWaterGain:
          ok = is_crop(c.use);
          break;
        case Category::kWaterLoss:
          ok = c.use == Use::kPond;
          break;
        case Category::kVegetationLoss:
          ok = c.use == Use::kWood || c.use == Use::kOrchard;
          break;
        case Category::kVegetationGain:
          ok = c.use == Use::kFallow;
          break;
        case Category::kNoChange:
        case Category::kNoData:
          break;
      }
      if (ok) out.push_back(idx);
    }
    // Put the ecological-zone hosts first now and then, so zones get planted changes.
    std::stable_partition(out.begin(), out.end(), [&](int idx) {
      return cells[static_cast<std::size_t>(idx)].zone >= 0 && unit(h({21, uint64_t(idx)})) < 0.3;
    });
    return out;
  };
  std::array<std::vector<int>, kCategories> hosts;
  std::array<std::size_t, kCategories> next{};
  for (int k = 0; k < kCategories; ++k) hosts[static_cast<std::size_t>(k)] = hosts_for(planted(k));
  int with_parcel = 0;
  for (const Cell& c : cells) with_parcel += c.has_parcel;
  const int wanted = std::max(18, with_parcel / 10);
  for (int k = 0; k < wanted * 2 && static_cast<int>(changes.size()) < wanted; ++k) {
    const auto cat = planted(k % kCategories);
    auto& list = hosts[slot(cat)];
    auto& pos = next[slot(cat)];
    while (pos < list.size() && !usable(cells[static_cast<std::size_t>(list[pos])])) ++pos;
    if (pos >= list.size()) continue;
    const int idx = list[pos++];
    Cell& c = cells[static_cast<std::size_t>(idx)];
    Change chg;
    chg.id = static_cast<int>(changes.size()) + 1;
    chg.cat = cat;
    chg.intensity = (k / kCategories) % 3;
    chg.mix = kIntensityMix[static_cast<std::size_t>(chg.intensity)];
    chg.cell = idx;
    const uint64_t ck = static_cast<uint64_t>(k);
    const double area_px = kSizes[static_cast<std::size_t>(
                               (3 * k + k / kCategories + h({30, ck}) % 2) % kSizes.size())] /
                           (kPixel * kPixel) * (0.9 + 0.2 * unit(h({31, ck})));
    const double aspect = 1 + 1.5 * unit(h({32, ck}));
    const double theta = (unit(h({33, ck})) - 0.5) * 0.7;  // +-20 degrees
    chg.cos_t = std::cos(theta), chg.sin_t = std::sin(theta);
    chg.a = std::sqrt(area_px * aspect) / 2, chg.b = std::sqrt(area_px / aspect) / 2;
    // The largest axis-aligned box inside the field quad, less half a pixel.
    const double xl = std::max(c.q[0].x, c.q[3].x) + 0.5, xr = std::min(c.q[1].x, c.q[2].x) - 0.5;
    const double yt = std::max(c.q[0].y, c.q[1].y) + 0.5, yb = std::min(c.q[2].y, c.q[3].y) - 0.5;
    if (xr - xl < 1.5 || yb - yt < 1.5) continue;
    const double fit = std::min(
        {1.0, 0.5 * (xr - xl) / chg.half_extent_x(), 0.5 * (yb - yt) / chg.half_extent_y()});
    chg.a *= fit, chg.b *= fit;
    const double ex = chg.half_extent_x(), ey = chg.half_extent_y();
    chg.cx = xl + ex + (xr - xl - 2 * ex) * unit(h({34, ck}));
    chg.cy = yt + ey + (yb - yt - 2 * ey) * unit(h({35, ck}));
    const double m = unit(h({36, ck}));
    switch (cat) {
      case Category::kConstruction:
        chg.material = m < 0.35   ? Material::kConcrete
                       : m < 0.65 ? Material::kBlueSteel
                       : m < 0.85 ? Material::kWhiteSteel
                                  : Material::kClayTile;
        break;
      case Category::kBareSoil:
        chg.material = m < 0.4   ? Material::kDrySoil
                       : m < 0.7 ? Material::kWetSoil
                                 : Material::kLoess;
        break;
      case Category::kWaterGain:
        chg.material = m < 0.6 ? Material::kTurbidWater : Material::kClearWater;
        break;
      case Category::kWaterLoss:
        chg.material = m < 0.5 ? Material::kDrySoil : Material::kLoess;
        break;
      case Category::kVegetationLoss:
        chg.material = Material::kDryResidue;
        break;
      case Category::kVegetationGain:
        chg.material = Material::kGreenCanopy;
        break;
      case Category::kNoChange:
      case Category::kNoData:
        break;
    }
    c.change = static_cast<int>(changes.size());
    changes.push_back(chg);
  }
}

void Scene::build_clouds() {
  const double r_mean = std::clamp(std::min(W, H) / 25.0, 10.0, 60.0);
  const int count = std::max(2, static_cast<int>(std::lround(0.05 * static_cast<double>(W) * H /
                                                             (kPi * r_mean * r_mean))));
  shadow_dx = -0.9 * r_mean, shadow_dy = -0.6 * r_mean;
  for (int k = 0; k < count; ++k) {
    const uint64_t ck = static_cast<uint64_t>(k);
    clouds.push_back(
        {unit(h({40, ck})) * W, unit(h({41, ck})) * H, r_mean * (0.5 + unit(h({42, ck})))});
  }
}

std::vector<int> Scene::clouds_near(const Extent& box) const {
  std::vector<int> out;
  for (int k = 0; k < static_cast<int>(clouds.size()); ++k) {
    const Cloud& c = clouds[static_cast<std::size_t>(k)];
    const double r = 1.5 * c.r + 2;
    const Extent e{std::min(c.cx, c.cx - shadow_dx) - r, std::min(c.cy, c.cy - shadow_dy) - r,
                   std::max(c.cx, c.cx - shadow_dx) + r, std::max(c.cy, c.cy - shadow_dy) + r};
    if (e.intersects(box)) out.push_back(k);
  }
  return out;
}

void Scene::cloud_at(double x, double y, const std::vector<int>& near, double& op,
                     double& sh) const {
  op = 0, sh = 0;
  for (int k : near) {
    const Cloud& c = clouds[static_cast<std::size_t>(k)];
    auto opacity = [&](double px, double py) {
      const double d = std::hypot(px - c.cx, py - c.cy) / c.r;
      if (d > 1.5) return 0.0;
      const double e = 0.5 * (vnoise(px / 7.0, py / 7.0, 500 + static_cast<uint64_t>(k)) - 0.5);
      return std::clamp((1.0 + e - d) / 0.35, 0.0, 1.0);
    };
    op = std::max(op, opacity(x, y));
    sh = std::max(sh, opacity(x + shadow_dx, y + shadow_dy));
  }
}

Spectrum Scene::use_spectrum(const Cell& c, int ci, double x, double y, int date, float vigor,
                             SurfaceInfo* info) const {
  using spectra::of;
  auto canopy = [&](double fc, Material canopy_m, Material bg) {
    fc = std::clamp(fc, 0.0, 0.97);
    return spectra::mix(of(bg), of(canopy_m), static_cast<float>(fc));
  };
  const double d2 = date == 2 ? 1.0 : 0.0;
  switch (c.use) {
    case Use::kWheat:
      return canopy((0.84 + c.fc_shift - 0.03 * d2) * (1 + 0.10 * vigor), Material::kGreenCanopy,
                    Material::kDrySoil);
    case Use::kRice:
      return canopy((0.52 + c.fc_shift + 0.05 * d2) * (1 + 0.15 * vigor), Material::kGreenCanopy,
                    Material::kWetSoil);
    case Use::kVegetables:
      return canopy((0.66 + c.fc_shift + 0.03 * d2) * (1 + 0.12 * vigor), Material::kGreenCanopy,
                    Material::kDrySoil);
    case Use::kFallow:
      return canopy(0.08 + 0.04 * vigor, Material::kGrass,
                    vigor > 0 ? Material::kDryResidue : Material::kDrySoil);
    case Use::kOrchard: {
      const double rows = 0.5 + 0.5 * std::sin(x * kPi / 1.3);
      return canopy((0.45 + 0.3 * rows + c.fc_shift) * (1 + 0.08 * vigor), Material::kForestCanopy,
                    Material::kGrass);
    }
    case Use::kWood:
      return canopy((0.9 + c.fc_shift * 0.5) * (1 + 0.05 * vigor), Material::kForestCanopy,
                    Material::kDryResidue);
    case Use::kGrass:
      return canopy(0.7 + 0.15 * vigor, Material::kGrass, Material::kDryResidue);
    case Use::kPond:
      if (info) info->water = true;
      return of(c.turbid ? Material::kTurbidWater : Material::kClearWater);
    case Use::kVillage: {
      const uint64_t k = h({50, uint64_t(ci), static_cast<uint64_t>(std::floor(x / 1.6)),
                            static_cast<uint64_t>(std::floor(y / 1.6))});
      const double r = unit(k);
      if (r < 0.45) return of(Material::kClayTile);
      if (r < 0.60) return of(Material::kConcrete);
      if (r < 0.85) return canopy(0.85, Material::kForestCanopy, Material::kGrass);
      return spectra::mix(of(Material::kDrySoil), of(Material::kConcrete), 0.4f);
    }
  }
  return of(Material::kGrass);
}

Spectrum Scene::change_spectrum(const Change& chg, const Spectrum& before, double x, double y,
                                SurfaceInfo* info) const {
  using spectra::of;
  Spectrum after;
  switch (chg.cat) {
    case Category::kVegetationLoss:
      // Cleared: litter and stubble with a little regrowth.
      after = spectra::mix(of(Material::kDryResidue), of(Material::kGrass), 0.15f);
      break;
    case Category::kVegetationGain:
      after = spectra::mix(of(Material::kDrySoil), of(Material::kGreenCanopy), 0.78f);
      break;
    case Category::kBareSoil: {
      // Soil piles and tracks: some texture.
      const float t = static_cast<float>(0.9 + 0.2 * vnoise(x / 1.5, y / 1.5, 600 + chg.id));
      after = of(chg.material);
      for (float& v : after) v *= t;
      break;
    }
    default:
      after = of(chg.material);
  }
  const bool water_after = chg.cat == Category::kWaterGain;
  if (info) {
    if (water_after && chg.mix >= 0.5) info->water = true;
    if (chg.cat == Category::kWaterLoss && chg.mix >= 0.5) info->water = false;
  }
  return spectra::mix(before, after, static_cast<float>(chg.mix));
}

bool Scene::change_edge(double cx, double cy) const {
  const int i = std::clamp(static_cast<int>(cx / cw), 0, nx - 1);
  const int j = std::clamp(static_cast<int>(cy / ch), 0, ny - 1);
  const Cell& c = cells[static_cast<std::size_t>(j * nx + i)];
  if (c.change < 0) return false;
  const Change& chg = changes[static_cast<std::size_t>(c.change)];
  const bool centre = chg.contains(cx, cy);
  for (int k = 0; k < 4; ++k) {
    if (chg.contains(cx - 0.5 + (k & 1), cy - 0.5 + (k >> 1)) != centre) return true;
  }
  return false;
}

Spectrum Scene::surface(double x, double y, int date, float vigor, SurfaceInfo* info) const {
  using spectra::of;
  if (info) *info = {};
  if (in_lake(x, y)) {
    if (info) info->water = true;
    return of(Material::kClearWater);
  }
  const int i = std::clamp(static_cast<int>(x / cw), 0, nx - 1);
  const int j = std::clamp(static_cast<int>(y / ch), 0, ny - 1);
  // Roads on some cell boundaries.
  const int bi = static_cast<int>(std::lround(x / cw)), bj = static_cast<int>(std::lround(y / ch));
  if ((road_v(bi) && std::abs(x - bi * cw) < 0.6) || (road_h(bj) && std::abs(y - bj * ch) < 0.6)) {
    const bool vertical = road_v(bi) && std::abs(x - bi * cw) < 0.6;
    return of((vertical ? bi % 3 : bj % 3) == 0 ? Material::kConcrete : Material::kAsphalt);
  }
  const int ci = j * nx + i;
  const Cell& c = cells[static_cast<std::size_t>(ci)];
  if (!c.in_quad(x, y)) {
    // Field margins: grass ridges with dry residue.
    return spectra::mix(of(Material::kDryResidue), of(Material::kGrass), 0.6f);
  }
  if (c.hole && x >= c.hx0 && x < c.hx1 && y >= c.hy0 && y < c.hy1) {
    return c.hole_trees ? of(Material::kForestCanopy) : of(Material::kClayTile);
  }
  if (c.split && std::abs(x - c.split_x) < 0.4) {
    return spectra::mix(of(Material::kWetSoil), of(Material::kGrass), 0.5f);
  }
  Spectrum s = use_spectrum(c, ci, x, y, date, vigor, info);
  if (date == 2 && c.change >= 0) {
    const Change& chg = changes[static_cast<std::size_t>(c.change)];
    if (chg.contains(x, y)) s = change_spectrum(chg, s, x, y, info);
  }
  return s;
}

void Scene::pixel(int64_t col, int64_t row, int date, const std::vector<int>& near,
                  std::array<float, 6>& out) const {
  const double cx = static_cast<double>(col) + 0.5, cy = static_cast<double>(row) + 0.5;
  // Within-field vigour: two octaves of smooth noise, in [-1, 1].
  const float vigor = static_cast<float>((vnoise(cx / 6.0, cy / 6.0, 100) - 0.5) * 1.4 +
                                         (vnoise(cx / 2.0, cy / 2.0, 101) - 0.5) * 0.6);
  // The sensor integrates the pixel's footprint: 2 x 2 samples, 16 x 16 where a change's
  // outline crosses the pixel. With 4 x 4 the samples put an edge at 0.65 of the pixel at 0.75
  // (a quarter of the pixel per sample row), and on a change of five cells those steps added up
  // to 16 % less changed area in the image than in truth.json.
  Spectrum acc{};
  const int ns = change_edge(cx, cy) ? 16 : 2;
  const float wgt = 1.0f / static_cast<float>(ns * ns);
  for (int sy = 0; sy < ns; ++sy) {
    for (int sx = 0; sx < ns; ++sx) {
      const Spectrum v =
          surface(cx - 0.5 + (sx + 0.5) / ns, cy - 0.5 + (sy + 0.5) / ns, date, vigor, nullptr);
      for (int b = 0; b < 6; ++b) acc[b] += wgt * v[b];
    }
  }
  // Date 2 sees a slightly different atmosphere (residual of the L2A correction).
  static constexpr float gain2[6] = {1.04f, 1.03f, 1.02f, 1.01f, 1.0f, 1.0f};
  static constexpr float off2[6] = {0.004f, 0.003f, 0.002f, 0.0f, 0.0f, 0.0f};
  double op = 0, sh = 0;
  if (date == 2 && !near.empty()) cloud_at(cx, cy, near, op, sh);
  const auto& cloud = spectra::of(Material::kCloud);
  for (int b = 0; b < 6; ++b) {
    double v = acc[b];
    if (date == 2) v = v * gain2[b] + off2[b];
    // Sensor and retrieval noise (Gaussian from two hashes).
    const uint64_t k = h({60, static_cast<uint64_t>(date), static_cast<uint64_t>(col),
                          static_cast<uint64_t>(row), static_cast<uint64_t>(b)});
    const double u1 = std::max(unit(k), 1e-12), u2 = unit(mix64(k));
    const double g = std::sqrt(-2 * std::log(u1)) * std::cos(2 * kPi * u2);
    v += g * (0.002 + 0.012 * v);
    if (sh > 0) v *= 1.0 - 0.7 * sh * (1.0 - op);
    if (op > 0) v = v + (cloud[b] * (0.95 + 0.1 * vnoise(cx / 4, cy / 4, 700)) - v) * op;
    out[static_cast<std::size_t>(b)] = static_cast<float>(v);
  }
}

// A surface's temperature from its reflectance, by a surface energy-balance proxy: absorbed
// sunlight (1 - albedo) heats a dry surface; a vegetated one spends it on evaporation (its
// evaporative fraction grows with NDVI); open water stays near the air temperature.
double surface_temperature(const Spectrum& v) {
  const double albedo = 0.1 * (v[0] + v[1] + v[2]) + 0.35 * v[3] + 0.2 * v[4] + 0.15 * v[5] + 0.0;
  if (v[3] < 0.06 && v[4] < 0.04) return 292.0;  // water
  const double ndvi = (v[3] - v[2]) / std::max(1e-6f, v[3] + v[2]);
  const double ef = std::clamp((ndvi - 0.15) / 0.6, 0.0, 1.0);
  return 294.0 + 30.0 * (1.0 - albedo) * (1.0 - ef);
}

float Scene::lst(int64_t col, int64_t row, int date, const std::vector<int>& near) const {
  const double cx = static_cast<double>(col) + 0.5, cy = static_cast<double>(row) + 0.5;
  const float vigor = static_cast<float>((vnoise(cx / 6.0, cy / 6.0, 100) - 0.5) * 1.4 +
                                         (vnoise(cx / 2.0, cy / 2.0, 101) - 0.5) * 0.6);
  double t = 0;
  for (int sy = 0; sy < 2; ++sy) {
    for (int sx = 0; sx < 2; ++sx)
      t += 0.25 * surface_temperature(
                      surface(cx - 0.25 + 0.5 * sx, cy - 0.25 + 0.5 * sy, date, vigor, nullptr));
  }
  if (date == 2) t += 0.8;  // a slightly warmer day
  const uint64_t k =
      h({61, static_cast<uint64_t>(date), static_cast<uint64_t>(col), static_cast<uint64_t>(row)});
  const double u1 = std::max(unit(k), 1e-12), u2 = unit(mix64(k));
  t += 0.3 * std::sqrt(-2 * std::log(u1)) * std::cos(2 * kPi * u2);
  double op = 0, sh = 0;
  if (date == 2 && !near.empty()) cloud_at(cx, cy, near, op, sh);
  return static_cast<float>(t + (255.0 - t) * op - 3.0 * sh * (1.0 - op));
}

uint8_t Scene::scl(int64_t col20, int64_t row20, int date, const std::vector<int>& near) const {
  const double x = 2.0 * static_cast<double>(col20) + 1.0,
               y = 2.0 * static_cast<double>(row20) + 1.0;
  if (x > static_cast<double>(W) + 0.5 || y > static_cast<double>(H) + 0.5) return kSclNoData;
  if (date == 2 && !near.empty()) {
    double op, sh;
    cloud_at(x, y, near, op, sh);
    if (op >= 0.7) return kSclCloudHigh;
    if (op >= 0.25) return kSclCloudMed;
    if (op > 0.03) return kSclCirrus;
    if (sh > 0.25) return kSclShadow;
  }
  if (unit(h({70, static_cast<uint64_t>(date), static_cast<uint64_t>(col20),
              static_cast<uint64_t>(row20)})) < 0.01) {
    return kSclUnclassified;
  }
  SurfaceInfo info;
  const Spectrum s = surface(x, y, date, 0.0f, &info);
  if (info.water) return kSclWater;
  const double ndvi = (s[3] - s[2]) / std::max(1e-6f, s[3] + s[2]);
  if (ndvi > 0.4) return kSclVeg;
  if (s[3] < 0.12 && s[0] < 0.08) return kSclDark;
  return kSclNotVeg;
}

// ---------------------------------------------------------------------------------------------
// Writers

Grid scene_grid(const Options& o, int factor) {
  const int64_t w = (o.width + factor - 1) / factor, hgt = (o.height + factor - 1) / factor;
  return Grid(GeoTransform::north_up(o.origin_x, o.origin_y, kPixel * factor, kPixel * factor), w,
              hgt, Crs::from_epsg(o.epsg));
}

P2 to_world(const Options& o, const P2& p) {
  return {o.origin_x + p.x * kPixel, o.origin_y - p.y * kPixel};
}

void write_reflectance(const Scene& scene, int date, const std::string& path,
                       const SchedulerOptions& so) {
  const Grid grid = scene_grid(scene.opt, 1);
  AtomicPath ap(path);
  BlockScheduler sched(so);
  DatasetPtr ds = create_gtiff(
      ap.temp(), grid, 6, GDT_UInt16,
      GdalOptions{}.set("NUM_THREADS", std::to_string(sched.threads())).set("ZLEVEL", "6"));
  for (int b = 0; b < 6; ++b) {
    GDALRasterBand* band = ds->GetRasterBand(b + 1);
    band->SetDescription(spectra::kBandNames[static_cast<std::size_t>(b)]);
    band->SetNoDataValue(0);
  }
  ds->SetMetadataItem("SENSOR", "Sentinel-2 MSI (synthetic, farmwatch synth)");
  ds->SetMetadataItem("PRODUCT_TYPE", "S2MSI2A");
  ds->SetMetadataItem("ACQUISITION_DATE", date == 1 ? kDate1Iso : kDate2Iso);
  ds->SetMetadataItem("BOA_QUANTIFICATION_VALUE", "10000");
  ds->SetMetadataItem("BOA_ADD_OFFSET", "0");
  ds->SetMetadataItem("SYNTH_SEED", std::to_string(scene.opt.seed).c_str());
  const WindowPlan plan = sched.plan(grid.width(), grid.height(), 256, 256, 6 * 2 + 64);
  sched.run<std::vector<uint16_t>>(
      plan,
      [&](const Window& w, std::size_t) {
        std::vector<uint16_t> buf(static_cast<std::size_t>(6 * w.pixels()));
        const Extent box{static_cast<double>(w.x), static_cast<double>(w.y),
                         static_cast<double>(w.x_end()), static_cast<double>(w.y_end())};
        const std::vector<int> near = date == 2 ? scene.clouds_near(box) : std::vector<int>{};
        std::array<float, 6> px;
        const std::size_t plane = static_cast<std::size_t>(w.pixels());
        for (int64_t r = 0; r < w.h; ++r) {
          for (int64_t c = 0; c < w.w; ++c) {
            scene.pixel(w.x + c, w.y + r, date, near, px);
            const std::size_t o = static_cast<std::size_t>(r * w.w + c);
            for (std::size_t b = 0; b < 6; ++b) {
              buf[b * plane + o] =
                  static_cast<uint16_t>(std::clamp(std::lround(px[b] * 10000.0), 1L, 65535L));
            }
          }
        }
        return buf;
      },
      [&](const Window& w, std::size_t, std::vector<uint16_t>& buf) {
        const std::size_t plane = static_cast<std::size_t>(w.pixels());
        for (int b = 0; b < 6; ++b) {
          write_window(*ds, b + 1, w, GDT_UInt16, buf.data() + static_cast<std::size_t>(b) * plane);
        }
      });
  close_dataset(ds, path);
  ap.commit();
}

void write_lst(const Scene& scene, int date, const std::string& path, const SchedulerOptions& so) {
  const Grid grid = scene_grid(scene.opt, 1);
  AtomicPath ap(path);
  BlockScheduler sched(so);
  DatasetPtr ds = create_gtiff(ap.temp(), grid, 1, GDT_Float32,
                               GdalOptions{}.set("NUM_THREADS", std::to_string(sched.threads())));
  ds->GetRasterBand(1)->SetDescription("LST");
  ds->GetRasterBand(1)->SetNoDataValue(-9999);
  ds->SetMetadataItem("UNITS", "kelvin");
  ds->SetMetadataItem("ACQUISITION_DATE", date == 1 ? kDate1Iso : kDate2Iso);
  const WindowPlan plan = sched.plan(grid.width(), grid.height(), 256, 256, 4 + 64);
  sched.run<std::vector<float>>(
      plan,
      [&](const Window& w, std::size_t) {
        std::vector<float> buf(static_cast<std::size_t>(w.pixels()));
        const Extent box{static_cast<double>(w.x), static_cast<double>(w.y),
                         static_cast<double>(w.x_end()), static_cast<double>(w.y_end())};
        const std::vector<int> near = date == 2 ? scene.clouds_near(box) : std::vector<int>{};
        for (int64_t r = 0; r < w.h; ++r) {
          for (int64_t c = 0; c < w.w; ++c)
            buf[static_cast<std::size_t>(r * w.w + c)] = scene.lst(w.x + c, w.y + r, date, near);
        }
        return buf;
      },
      [&](const Window& w, std::size_t, std::vector<float>& buf) {
        write_window(*ds, 1, w, GDT_Float32, buf.data());
      });
  close_dataset(ds, path);
  ap.commit();
}

void write_scl(const Scene& scene, int date, const std::string& path, const SchedulerOptions& so) {
  const Grid grid = scene_grid(scene.opt, 2);
  AtomicPath ap(path);
  BlockScheduler sched(so);
  DatasetPtr ds = create_gtiff(ap.temp(), grid, 1, GDT_Byte, GdalOptions{}.set("PREDICTOR", "1"));
  GDALRasterBand* band = ds->GetRasterBand(1);
  band->SetDescription("SCL");
  band->SetNoDataValue(0);
  GDALColorTable ct;
  const std::array<std::array<short, 3>, 12> colors = {{{0, 0, 0},
                                                        {255, 0, 0},
                                                        {47, 47, 47},
                                                        {100, 50, 0},
                                                        {0, 160, 0},
                                                        {255, 230, 90},
                                                        {0, 0, 255},
                                                        {128, 128, 128},
                                                        {160, 160, 160},
                                                        {255, 255, 255},
                                                        {100, 200, 255},
                                                        {255, 150, 255}}};
  for (int k = 0; k < 12; ++k) {
    GDALColorEntry e{colors[static_cast<std::size_t>(k)][0], colors[static_cast<std::size_t>(k)][1],
                     colors[static_cast<std::size_t>(k)][2], 255};
    ct.SetColorEntry(k, &e);
  }
  band->SetColorTable(&ct);
  ds->SetMetadataItem("ACQUISITION_DATE", date == 1 ? kDate1Iso : kDate2Iso);
  const WindowPlan plan = sched.plan(grid.width(), grid.height(), 256, 256, 1 + 16);
  sched.run<std::vector<uint8_t>>(
      plan,
      [&](const Window& w, std::size_t) {
        std::vector<uint8_t> buf(static_cast<std::size_t>(w.pixels()));
        const Extent box{2.0 * w.x, 2.0 * w.y, 2.0 * w.x_end(), 2.0 * w.y_end()};
        const std::vector<int> near = date == 2 ? scene.clouds_near(box) : std::vector<int>{};
        for (int64_t r = 0; r < w.h; ++r) {
          for (int64_t c = 0; c < w.w; ++c) {
            buf[static_cast<std::size_t>(r * w.w + c)] = scene.scl(w.x + c, w.y + r, date, near);
          }
        }
        return buf;
      },
      [&](const Window& w, std::size_t, std::vector<uint8_t>& buf) {
        write_window(*ds, 1, w, GDT_Byte, buf.data());
      });
  close_dataset(ds, path);
  ap.commit();
}

OGRLinearRing make_ring(const Options& o, const std::vector<P2>& px, bool ccw) {
  OGRLinearRing ring;
  for (const P2& p : px) {
    const P2 w = to_world(o, p);
    ring.addPoint(w.x, w.y);
  }
  ring.closeRings();
  // In world coordinates (y up) a clockwise-on-screen ring is clockwise: reverse for ccw.
  const bool is_cw = ring.isClockwise();
  if (is_cw == ccw) ring.reversePoints();
  return ring;
}

// Clips a convex polygon to x <= xmax (keep_left) or x >= xmin.
std::vector<P2> clip_x(const std::vector<P2>& poly, double xc, bool keep_left) {
  std::vector<P2> out;
  auto inside = [&](const P2& p) { return keep_left ? p.x <= xc : p.x >= xc; };
  for (std::size_t i = 0; i < poly.size(); ++i) {
    const P2& a = poly[i];
    const P2& b = poly[(i + 1) % poly.size()];
    const bool ia = inside(a), ib = inside(b);
    if (ia) out.push_back(a);
    if (ia != ib) {
      const double t = (xc - a.x) / (b.x - a.x);
      out.push_back({xc, a.y + t * (b.y - a.y)});
    }
  }
  return out;
}

GeometryPtr parcel_geometry(const Options& o, const Cell& c, double& area_m2) {
  const std::vector<P2> quad(c.q.begin(), c.q.end());
  if (c.split) {
    auto mp = std::make_unique<OGRMultiPolygon>();
    for (bool left : {true, false}) {
      OGRPolygon poly;
      poly.addRingDirectly(new OGRLinearRing(
          make_ring(o, clip_x(quad, c.split_x + (left ? -0.4 : 0.4), left), true)));
      mp->addGeometry(&poly);
    }
    area_m2 = mp->get_Area();
    return mp;
  }
  auto poly = std::make_unique<OGRPolygon>();
  poly->addRingDirectly(new OGRLinearRing(make_ring(o, quad, true)));
  if (c.hole) {
    poly->addRingDirectly(new OGRLinearRing(
        make_ring(o, {{c.hx0, c.hy0}, {c.hx1, c.hy0}, {c.hx1, c.hy1}, {c.hx0, c.hy1}}, false)));
  }
  area_m2 = poly->get_Area();
  if (c.invalid) {
    // A digitising slip: a small self-intersecting loop at the third corner (a bow-tie of about
    // one pixel), as found in real cadastral data.
    const P2 b = c.q[1], cc = c.q[2], d = c.q[3];
    const double ux = (cc.x - b.x) / std::hypot(cc.x - b.x, cc.y - b.y);
    const double uy = (cc.y - b.y) / std::hypot(cc.x - b.x, cc.y - b.y);
    const double nxv = -uy, nyv = ux;  // normal of edge b->c (pointing outward for this order)
    const P2 e{cc.x - 2 * ux + nxv, cc.y - 2 * uy + nyv};
    const P2 f{cc.x + ux - nxv, cc.y + uy - nyv};
    auto bad = std::make_unique<OGRPolygon>();
    bad->addRingDirectly(new OGRLinearRing(make_ring(o, {c.q[0], b, cc, e, f, d}, true)));
    return bad;
  }
  return poly;
}

void write_vectors(const Scene& s, const std::string& dir, Result& res) {
  const Options& o = s.opt;
  const Crs crs = Crs::from_epsg(o.epsg);
  const std::vector<FieldDef> parcel_fields = {{"parcel_id", OFTString}, {"land_class", OFTString},
                                               {"land_use", OFTString},  {"township", OFTString},
                                               {"village", OFTString},   {"area_m2", OFTReal}};
  const std::vector<FieldDef> zone_fields = {{"zone_id", OFTString},
                                             {"name", OFTString},
                                             {"zone_type", OFTString},
                                             {"sensitivity", OFTString}};
  // A fixed timestamp keeps the GeoPackage byte-identical across runs.
  CPLSetThreadLocalConfigOption("OGR_CURRENT_DATE", "2025-01-01T00:00:00.000Z");
  VectorWriter gpkg(dir + "/" + kParcelsGpkg, "GPKG");
  VectorWriter gj(dir + "/" + kParcelsGeojson, "GeoJSON");
  VectorWriter zj(dir + "/" + kZonesGeojson, "GeoJSON");
  OGRLayer& pl = gpkg.add_layer("parcels", crs, wkbMultiPolygon, parcel_fields);
  OGRLayer& jl = gj.add_layer("parcels", crs, wkbMultiPolygon, parcel_fields,
                              GdalOptions{}.set("ID_FIELD", "parcel_id"));
  for (std::size_t idx = 0; idx < s.cells.size(); ++idx) {
    const Cell& c = s.cells[idx];
    if (!c.has_parcel) continue;
    double area = 0;
    GeometryPtr g = parcel_geometry(o, c, area);
    char id[32];
    std::snprintf(id, sizeof id, "P%06zu", idx + 1);
    for (auto [layer, writer] : {std::pair{&pl, &gpkg}, std::pair{&jl, &gj}}) {
      FeaturePtr f(OGRFeature::CreateFeature(layer->GetLayerDefn()));
      f->SetField("parcel_id", id);
      f->SetField("land_class", land_class_name(c.land_class));
      f->SetField("land_use", use_name(c.use));
      f->SetField("township", s.township_names[static_cast<std::size_t>(c.township)].c_str());
      f->SetField("village", (s.township_names[static_cast<std::size_t>(c.township)] +
                              s.village_names[static_cast<std::size_t>(c.village)])
                                 .c_str());
      f->SetField("area_m2", std::round(area * 100) / 100);
      f->SetGeometryDirectly(OGRGeometryFactory::forceToMultiPolygon(g->clone()));
      writer->write(*layer, *f);
    }
    ++res.parcels;
  }
  OGRLayer& zl = gpkg.add_layer("zones", crs, wkbPolygon, zone_fields);
  OGRLayer& zjl = zj.add_layer("zones", crs, wkbPolygon, zone_fields);
  for (const Zone& z : s.zones) {
    OGRPolygon poly;
    poly.addRingDirectly(new OGRLinearRing(make_ring(o, z.ring, true)));
    for (auto [layer, writer] : {std::pair{&zl, &gpkg}, std::pair{&zjl, &zj}}) {
      FeaturePtr f(OGRFeature::CreateFeature(layer->GetLayerDefn()));
      f->SetField("zone_id", z.id.c_str());
      f->SetField("name", z.name.c_str());
      f->SetField("zone_type", z.type.c_str());
      f->SetField("sensitivity", z.sensitivity.c_str());
      f->SetGeometry(&poly);
      writer->write(*layer, *f);
    }
    ++res.zones;
  }
  gpkg.commit();
  gj.commit();
  zj.commit();
  CPLSetThreadLocalConfigOption("OGR_CURRENT_DATE", nullptr);
}

json truth_json(const Scene& s) {
  const Options& o = s.opt;
  json t;
  t["generator"] = "farmwatch synth " + farmwatch_version();
  t["seed"] = o.seed;
  t["width"] = o.width;
  t["height"] = o.height;
  t["pixel_size_m"] = kPixel;
  t["crs"] = "EPSG:" + std::to_string(o.epsg);
  t["geotransform"] = {o.origin_x, kPixel, 0.0, o.origin_y, 0.0, -kPixel};
  t["dates"] = {kDate1Iso, kDate2Iso};
  t["bands"] = {"B2", "B3", "B4", "B8", "B11", "B12"};
  t["reflectance_scale"] = 10000;
  t["mu_m2"] = kMu;
  t["files"] = {{"date1", kDate1},         {"date2", kDate2},
                {"date1_scl", kScl1},      {"date2_scl", kScl2},
                {"parcels", kParcelsGpkg}, {"parcels_geojson", kParcelsGeojson},
                {"zones", kZonesGeojson}};
  t["scl_invalid_codes"] = {0, 1, 3, 8, 9, 10};
  json zs = json::array();
  for (const Zone& z : s.zones) {
    zs.push_back({{"zone_id", z.id},
                  {"name", z.name},
                  {"zone_type", z.type},
                  {"sensitivity", z.sensitivity}});
  }
  t["zones"] = zs;
  json cs = json::array();
  for (const Change& chg : s.changes) {
    const Cell& host = s.cells[static_cast<std::size_t>(chg.cell)];
    json ring = json::array();
    std::string wkt = "POLYGON ((";
    auto corners = chg.corners();
    char buf[96];
    for (int k = 0; k <= 4; ++k) {
      const P2 w = to_world(o, corners[static_cast<std::size_t>(k % 4)]);
      ring.push_back({w.x, w.y});
      std::snprintf(buf, sizeof buf, "%s%.3f %.3f", k ? ", " : "", w.x, w.y);
      wkt += buf;
    }
    wkt += "))";
    // Pixels whose centre lies inside, and the share of them masked by date-2 clouds (SCL).
    const double ex = chg.half_extent_x(), ey = chg.half_extent_y();
    const Extent box{chg.cx - ex - 2, chg.cy - ey - 2, chg.cx + ex + 2, chg.cy + ey + 2};
    const std::vector<int> near = s.clouds_near(box);
    int pixels = 0, clouded = 0;
    for (auto r = static_cast<int64_t>(std::floor(box.ymin)); r <= static_cast<int64_t>(box.ymax);
         ++r) {
      for (auto c = static_cast<int64_t>(std::floor(box.xmin)); c <= static_cast<int64_t>(box.xmax);
           ++c) {
        if (c < 0 || r < 0 || c >= s.W || r >= s.H) continue;
        if (!chg.contains(static_cast<double>(c) + 0.5, static_cast<double>(r) + 0.5)) continue;
        ++pixels;
        const uint8_t code = s.scl(c / 2, r / 2, 2, near);
        if (code == kSclShadow || code == kSclCloudMed || code == kSclCloudHigh ||
            code == kSclCirrus) {
          ++clouded;
        }
      }
    }
    char cid[32], pid[32];
    std::snprintf(cid, sizeof cid, "C%04d", chg.id);
    std::snprintf(pid, sizeof pid, "P%06d", chg.cell + 1);
    const double area = 4 * chg.a * chg.b * kPixel * kPixel;
    const P2 cw_ = to_world(o, {chg.cx, chg.cy});
    json zones = json::array();
    for (const Zone& z : s.zones) {
      if (z.contains(chg.cx, chg.cy)) zones.push_back(z.id);
    }
    cs.push_back({{"id", cid},
                  {"category", rasters::category_name(chg.cat)},
                  {"intensity", intensity_name(chg.intensity)},
                  {"mix", chg.mix},
                  {"material", spectra::name(chg.material)},
                  {"area_m2", area},
                  {"area_mu", area / kMu},
                  {"center", {cw_.x, cw_.y}},
                  {"polygon", ring},
                  {"wkt", wkt},
                  {"pixels", pixels},
                  {"cloud_fraction", pixels ? static_cast<double>(clouded) / pixels : 0.0},
                  {"parcels", {pid}},
                  {"land_class", land_class_name(host.land_class)},
                  {"land_use_before", use_name(host.use)},
                  {"zones", zones}});
  }
  t["changes"] = cs;
  json cl = json::array();
  for (const Cloud& c : s.clouds) {
    const P2 w = to_world(o, {c.cx, c.cy});
    cl.push_back({{"center", {w.x, w.y}}, {"radius_m", c.r * kPixel}});
  }
  t["clouds"] = cl;
  t["shadow_offset_m"] = {-s.shadow_dx * kPixel, s.shadow_dy * kPixel};
  return t;
}

}  // namespace

void parse_size(const std::string& text, int64_t& width, int64_t& height) {
  const auto x = text.find_first_of("xX");
  try {
    std::size_t used = 0;
    width = std::stoll(text.substr(0, x), &used);
    if (used != (x == std::string::npos ? text.size() : x)) throw std::invalid_argument(text);
    if (x == std::string::npos) {
      height = width;
    } else {
      height = std::stoll(text.substr(x + 1), &used);
      if (used != text.size() - x - 1) throw std::invalid_argument(text);
    }
  } catch (const std::exception&) {
    throw_usage("bad size '" + text + "' (expected W or WxH, for example 1024 or 2048x1024)");
  }
  if (width < 16 || height < 16 || width > 200000 || height > 200000) {
    throw_usage("size " + text + " is out of range (16 to 200000 pixels a side)");
  }
}

Result generate(const Options& o, const SchedulerOptions& so) {
  if (o.out.empty()) throw_usage("synth needs an output folder (--out)");
  if (o.parcels < 1) throw_usage("synth needs at least one parcel (--parcels)");
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) throw_output("cannot create folder: " + ec.message(), {.file = o.out});
  init_gdal();
  const Scene scene(o);
  Result res;
  res.changes = static_cast<int>(scene.changes.size());
  res.clouds = static_cast<int>(scene.clouds.size());
  log::info("synthesising scene",
            {{"size", std::to_string(o.width) + "x" + std::to_string(o.height)},
             {"parcels", std::to_string(o.parcels)},
             {"changes", std::to_string(res.changes)},
             {"seed", std::to_string(o.seed)}});
  for (int date : {1, 2}) {
    SchedulerOptions s = so;
    s.label = "synth date " + std::to_string(date);
    write_reflectance(scene, date, o.out + "/" + (date == 1 ? kDate1 : kDate2), s);
    s.label = "synth SCL " + std::to_string(date);
    write_scl(scene, date, o.out + "/" + (date == 1 ? kScl1 : kScl2), s);
    if (o.lst) {
      s.label = "synth LST " + std::to_string(date);
      write_lst(scene, date, o.out + "/" + (date == 1 ? kLst1 : kLst2), s);
      res.files.push_back(o.out + "/" + (date == 1 ? kLst1 : kLst2));
    }
  }
  write_vectors(scene, o.out, res);
  write_file_atomic(o.out + "/" + kTruth, truth_json(scene).dump(1) + "\n");
  for (const char* f :
       {kDate1, kScl1, kDate2, kScl2, kParcelsGpkg, kParcelsGeojson, kZonesGeojson, kTruth}) {
    res.files.push_back(o.out + "/" + f);
  }
  return res;
}

}  // namespace fw::synth
