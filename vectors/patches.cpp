#include "vectors/patches.hpp"

#include <gdal_alg.h>
#include <ogr_geometry.h>
#include <ogrsf_frmts.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/partials.hpp"
#include "engine/raster_io.hpp"
#include "vectors/clumps.hpp"
#include "vectors/ecozones.hpp"
#include "vectors/vector_writer.hpp"

namespace fw::vectors {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kMu = 10000.0 / 15.0;

const std::vector<std::string>& priority_vars() {
  static const std::vector<std::string> v = {
      "area_m2",        "area_mu",          "intensity_max",          "intensity_mean",
      "magnitude_mean", "farmland_area_m2", "basic_farmland_area_m2", "basic_farmland_share",
      "zone_area_m2",   "zone_sensitivity", "valid_fraction"};
  return v;
}

double var_value(const Patch& p, const std::string& v) {
  if (v == "area_m2") return p.area_m2;
  if (v == "area_mu") return p.area_mu;
  if (v == "intensity_max") return p.intensity_max;
  if (v == "intensity_mean") return p.intensity_mean;
  if (v == "magnitude_mean") return p.magnitude_mean;
  if (v == "farmland_area_m2") return p.farmland_area_m2;
  if (v == "basic_farmland_area_m2") return p.basic_farmland_area_m2;
  if (v == "basic_farmland_share") return p.area_m2 > 0 ? p.basic_farmland_area_m2 / p.area_m2 : 0;
  if (v == "zone_area_m2") return p.zone_area_m2;
  if (v == "valid_fraction") return p.valid_fraction;
  // zone_sensitivity (a patch outside every zone: 0; a zone without a value: medium)
  if (p.zone_id.empty()) return 0;
  return sensitivity_level(p.zone_type, p.zone_sensitivity, 2);
}

bool holds(const PriorityRule& r, const Patch& p) {
  return rule_holds(
      r, [&](const std::string& v) { return var_value(p, v); }, p.category);
}

int field_or_throw(const ParcelSet& set, const std::string& name, const char* what) {
  for (std::size_t i = 0; i < set.fields.size(); ++i) {
    if (set.fields[i].name == name) return static_cast<int>(i);
  }
  std::string have;
  for (const auto& f : set.fields) have += (have.empty() ? "" : ", ") + f.name;
  throw_input(std::string("no ") + what + " field '" + name + "' (fields: " + have + ")",
              {.file = set.file, .layer = set.layer, .field = name});
}

int field_index(const ParcelSet& set, const std::string& name) {
  for (std::size_t i = 0; i < set.fields.size(); ++i) {
    if (set.fields[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// Envelope index over a parcel set: uniform buckets in map units.
class BoxIndex {
 public:
  BoxIndex(const ParcelSet& set, double cell) : cell_(cell) {
    for (std::size_t i = 0; i < set.parcels.size(); ++i) {
      const Parcel& p = set.parcels[i];
      if (!p.geom) continue;
      OGREnvelope e;
      p.geom->getEnvelope(&e);
      boxes_.push_back({e, i});
    }
    for (std::size_t k = 0; k < boxes_.size(); ++k) {
      const OGREnvelope& e = boxes_[k].first;
      for (int64_t by = key(e.MinY); by <= key(e.MaxY); ++by)
        for (int64_t bx = key(e.MinX); bx <= key(e.MaxX); ++bx) buckets_[{bx, by}].push_back(k);
    }
  }
  // Parcels whose box intersects e, in parcel order.
  std::vector<std::size_t> query(const OGREnvelope& e) const {
    std::vector<std::size_t> out;
    for (int64_t by = key(e.MinY); by <= key(e.MaxY); ++by) {
      for (int64_t bx = key(e.MinX); bx <= key(e.MaxX); ++bx) {
        auto it = buckets_.find({bx, by});
        if (it == buckets_.end()) continue;
        for (std::size_t k : it->second) {
          if (boxes_[k].first.Intersects(e)) out.push_back(boxes_[k].second);
        }
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

 private:
  int64_t key(double v) const { return static_cast<int64_t>(std::floor(v / cell_)); }
  double cell_;
  std::vector<std::pair<OGREnvelope, std::size_t>> boxes_;
  std::map<std::pair<int64_t, int64_t>, std::vector<std::size_t>> buckets_;
};

std::string fmt(double v) {
  if (!std::isfinite(v)) return "";
  char buf[40];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 12);
  return std::string(buf, r.ptr);
}

// The polygon of the cells set in `in` (one 8-connected clump on window `w` of `grid`):
// GDALPolygonize, 8-connected, holes kept. Null when polygonizing fails.
GeometryPtr polygonize_mask(const std::vector<uint8_t>& in, const Window& w, const Grid& grid) {
  DatasetPtr ds(
      driver("MEM").Create("", static_cast<int>(w.w), static_cast<int>(w.h), 1, GDT_Byte, nullptr));
  if (!ds) return nullptr;
  const auto& c = grid.transform().c;
  const double x = static_cast<double>(w.x), y = static_cast<double>(w.y);
  double g6[6] = {c[0] + x * c[1] + y * c[2], c[1], c[2], c[3] + x * c[4] + y * c[5], c[4], c[5]};
  ds->SetGeoTransform(g6);
  GDALRasterBand* b = ds->GetRasterBand(1);
  if (b->RasterIO(GF_Write, 0, 0, static_cast<int>(w.w), static_cast<int>(w.h),
                  const_cast<uint8_t*>(in.data()), static_cast<int>(w.w), static_cast<int>(w.h),
                  GDT_Byte, 0, 0, nullptr) != CE_None)
    return nullptr;
  b->SetNoDataValue(0);
  DatasetPtr mem(driver("Memory").Create("", 0, 0, 0, GDT_Unknown, nullptr));
  OGRLayer* lyr = mem->CreateLayer("p", const_cast<OGRSpatialReference*>(grid.crs().ogr()),
                                   wkbPolygon, nullptr);
  OGRFieldDefn fv("v", OFTInteger);
  lyr->CreateField(&fv);
  GdalOptions po;
  po.set("8CONNECTED", "8");
  if (GDALPolygonize(b, b->GetMaskBand(), lyr, 0, po.get(), nullptr, nullptr) != CE_None)
    return nullptr;
  lyr->ResetReading();
  GeometryPtr g;
  for (FeaturePtr f(lyr->GetNextFeature()); f; f.reset(lyr->GetNextFeature())) {
    GeometryPtr h(f->StealGeometry());
    if (!h || h->IsEmpty()) continue;
    if (!g) {
      g = std::move(h);
    } else {  // not expected for one 8-connected clump; kept whole if it happens
      auto* m = new OGRMultiPolygon();
      m->assignSpatialReference(g->getSpatialReference());
      m->addGeometryDirectly(g.release());
      m->addGeometryDirectly(h.release());
      g.reset(m);
    }
  }
  return g;
}

// A drawn patch as a shard ships it: its clump, its measures and its polygon (WKB, exact).
struct DrawnMeasures {
  int64_t cells;
  double valid_fraction, pixel_area_m2, area_m2, area_mu, xmin, ymin, xmax, ymax, lon, lat,
      intensity_max, intensity_mean, magnitude_mean, index_before, index_after;
};

// A shard's band of the patch pass: its rows, counts, fragments and boundary runs, and the
// patches it drew.
void write_band(ByteWriter& w, const ClumpBand& band, const std::vector<Patch>& drawn,
                const std::vector<Clump>& clumps, const PatchSet& set) {
  w.put<int64_t>(band.first_row);
  w.put<int64_t>(band.last_row);
  w.put<int64_t>(set.sieved_cells);
  w.put<int64_t>(set.drawn_late);
  w.put_vector(band.open);
  w.put_vector(band.top);
  w.put_vector(band.bottom);
  w.put_vector(clumps);
  std::vector<unsigned char> wkb;
  for (const Patch& p : drawn) {
    w.put(DrawnMeasures{p.cells, p.valid_fraction, p.pixel_area_m2, p.area_m2, p.area_mu, p.xmin,
                        p.ymin, p.xmax, p.ymax, p.lon, p.lat, p.intensity_max, p.intensity_mean,
                        p.magnitude_mean, p.index_before, p.index_after});
    wkb.resize(p.geom->WkbSize());
    p.geom->exportToWkb(wkbNDR, wkb.data(), wkbVariantIso);
    w.put_vector(wkb);
  }
}

ClumpBand read_band(ByteReader& in, std::vector<Patch>& drawn, std::vector<Clump>& clumps,
                    PatchSet& set) {
  ClumpBand band;
  band.first_row = in.get<int64_t>();
  band.last_row = in.get<int64_t>();
  set.sieved_cells += in.get<int64_t>();
  set.drawn_late += in.get<int64_t>();
  band.open = in.get_vector<Clump>();
  band.top = in.get_vector<BoundaryRun>();
  band.bottom = in.get_vector<BoundaryRun>();
  const auto mine = in.get_vector<Clump>();
  clumps.insert(clumps.end(), mine.begin(), mine.end());
  for (std::size_t k = 0; k < mine.size(); ++k) {
    const auto m = in.get<DrawnMeasures>();
    Patch p;
    p.cells = m.cells;
    p.valid_fraction = m.valid_fraction, p.pixel_area_m2 = m.pixel_area_m2;
    p.area_m2 = m.area_m2, p.area_mu = m.area_mu;
    p.xmin = m.xmin, p.ymin = m.ymin, p.xmax = m.xmax, p.ymax = m.ymax, p.lon = m.lon,
    p.lat = m.lat;
    p.intensity_max = m.intensity_max, p.intensity_mean = m.intensity_mean;
    p.magnitude_mean = m.magnitude_mean, p.index_before = m.index_before,
    p.index_after = m.index_after;
    const auto wkb = in.get_vector<unsigned char>();
    OGRGeometry* g = nullptr;
    if (OGRGeometryFactory::createFromWkb(wkb.data(), nullptr, &g, wkb.size()) != OGRERR_NONE || !g)
      throw_input("a shard's patch polygon cannot be read (patch fragments of rows " +
                  std::to_string(band.first_row) + "-" + std::to_string(band.last_row) + ")");
    p.geom.reset(g);
    drawn.push_back(std::move(p));
  }
  return band;
}

}  // namespace

PriorityRule parse_priority_rule(const std::string& text) {
  static const RuleSyntax syntax{
      .what = "priority rule",
      .example = "P1: category in construction|bare_soil, area_mu >= 1, ...",
      .levels = {{"P1", 1}, {"P2", 2}, {"P3", 3}},
      .member_var = "category",
      .vars = priority_vars(),
      .also = nullptr};
  return parse_rule(text, syntax);
}

double parse_mmu(const std::string& text) {
  std::string m = text;
  double scale = 1;
  if (m.size() > 2 && m.substr(m.size() - 2) == "mu") {
    m = m.substr(0, m.size() - 2);
    scale = kMu;
  }
  char* end = nullptr;
  const double v = std::strtod(m.c_str(), &end);
  if (m.empty() || *end || !(v >= 0))
    throw_usage("minimum mapping unit '" + text +
                "': a number of m2, or of mu with the suffix 'mu' (e.g. 0.6mu)");
  return v * scale;
}

std::vector<PriorityRule> default_priority_rules() {
  return {
      parse_priority_rule(
          "P1: category in construction|bare_soil, area_mu >= 1, basic_farmland_area_m2 > 0"),
      parse_priority_rule("P1: zone_sensitivity >= 4, area_mu >= 1"),
      parse_priority_rule("P2: zone_sensitivity >= 3"),
      parse_priority_rule(
          "P2: category in construction|bare_soil|water_gain, area_mu >= 1, farmland_area_m2 > 0"),
  };
}

ParcelSet load_zones(const ZoneOptions& zo, const Grid& grid) {
  ParcelOptions po = zo.layer;
  if (po.id_field == "parcel_id") po.id_field = "zone_id";
  if (po.label == "parcels") po.label = "zones";
  ParcelSet z = load_parcels(po, grid);
  for (const std::string* f : {&zo.name_field, &zo.type_field, &zo.sensitivity_field}) {
    if (!f->empty()) field_or_throw(z, *f, "zone");
  }
  return z;
}

PatchSet extract_patches(const PatchOptions& opt, const ParcelSet* parcels, const ParcelSet* zones,
                         const ZoneOptions& zo, const SchedulerOptions& so) {
  for (const auto& r : opt.rules) {
    for (const auto& c : r.all) {
      if (c.op != '=' &&
          std::find(priority_vars().begin(), priority_vars().end(), c.var) == priority_vars().end())
        throw_usage("priority rule '" + r.text + "': unknown variable '" + c.var + "'");
    }
  }
  if (!(opt.mmu_m2 >= 0)) throw_usage("the minimum mapping unit cannot be negative");
  DatasetPtr src = open_raster(opt.change_class);
  PatchSet out;
  out.grid = Grid::of(*src);
  const Grid& grid = out.grid;
  GDALRasterBand* sb = src->GetRasterBand(1);
  if (!sb || sb->GetRasterDataType() != GDT_Byte) {
    throw_input("the change classes must be one byte band (farmwatch change's change_class.tif)",
                {.file = opt.change_class});
  }
  const double unit = grid.crs().linear_units_m();
  const double px_m2 = std::abs(grid.transform().pixel_area()) * unit * unit;
  const double cell = std::abs(grid.transform().c[1]);
  out.mmu_cells = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(opt.mmu_m2 / px_m2 - 1e-9)));
  // Category names from the raster (farmwatch writes them), else class_<code>.
  std::vector<std::string> names(256);
  char** cn = sb->GetCategoryNames();
  const int named = cn ? CSLCount(cn) : 0;
  for (int k = 0; k < 256; ++k) {
    names[static_cast<std::size_t>(k)] =
        k < named && cn[k][0] ? cn[k] : "class_" + std::to_string(k);
  }
  int has_nd = 0;
  const double nd = sb->GetNoDataValue(&has_nd);
  const int nodata = has_nd ? static_cast<int>(nd) : 255;

  // 1. One streaming pass over the rows. The patch cells: with the sub-pixel cover, those whose
  // dominant category covers at least half of them (so a change whose cells the rules split
  // between two categories, or left unchanged at its mixed edge, is one patch of its category,
  // drawn along its half-covered cells); else the changed classes. Their clumps (8-connected,
  // one category) are found row by row, with the intensity, magnitude and index values summed
  // over their cells. Clumps of fewer cells than the unit are not patches (holes are kept
  // whatever their size: a hole may be a cloud).
  const bool with_cover = !opt.cover.empty();
  // Clumps are drawn from this many cells: the unit in whole cells, or with the sub-pixel cover
  // half of it, since a small change's half-covered edge cells may leave fewer whole cells than
  // its area (a 492 m2 pond over three cells at least half covered); which of those stay is
  // decided on their sub-pixel area below.
  const int64_t draw_cells =
      with_cover ? std::max<int64_t>(1, (out.mmu_cells + 1) / 2) : out.mmu_cells;
  auto t0 = std::chrono::steady_clock::now();
  auto lap = [&](const char* phase) {
    const auto t1 = std::chrono::steady_clock::now();
    log::debug("patches timing",
               {{"phase", phase},
                {"seconds", std::to_string(std::chrono::duration<double>(t1 - t0).count())}});
    t0 = t1;
  };
  DatasetPool classes(opt.change_class);
  std::optional<DatasetPool> cover;
  if (with_cover) {
    cover.emplace(opt.cover);
    GDALDataset& c = cover->local();
    if (c.GetRasterCount() < 6 || !Grid::of(c).same_as(grid))
      throw_input("the change cover must have 6 bands on the change classes' grid (" +
                      grid.describe() + ")",
                  {.file = opt.cover});
  }
  struct Source {
    std::optional<DatasetPool> pool;
    bool has_nd = false;
    double nd = 0;
  };
  // Channels: intensity, magnitude, index before, index after.
  std::array<Source, Clump::kChannels> chan;
  {
    const std::array<const std::string*, Clump::kChannels> paths = {
        &opt.intensity, &opt.magnitude, &opt.index_before, &opt.index_after};
    for (std::size_t k = 0; k < paths.size(); ++k) {
      if (paths[k]->empty()) continue;
      Source& s = chan[k];
      s.pool.emplace(*paths[k]);
      GDALDataset& ds = s.pool->local();
      if (!Grid::of(ds).same_as(grid))
        throw_input("raster grid differs from the change classes' (" + grid.describe() + ")",
                    {.file = *paths[k]});
      int h = 0;
      s.nd = ds.GetRasterBand(1)->GetNoDataValue(&h);
      s.has_nd = h != 0;
    }
  }
  // A window's cells: patch code (0: none), observed (1) or not, and the six cover bands.
  struct Cells {
    std::vector<uint8_t> dom, valid, cov;
  };
  auto read_cells = [&](const Window& w, Cells& out_cells) {
    const auto n = static_cast<std::size_t>(w.pixels());
    std::vector<uint8_t> cls;
    classes.read(1, w, cls, nodata);
    out_cells.dom.assign(n, 0);
    out_cells.valid.resize(n);
    for (std::size_t i = 0; i < n; ++i) out_cells.valid[i] = cls[i] != nodata;
    if (!with_cover) {
      for (std::size_t i = 0; i < n; ++i) out_cells.dom[i] = cls[i] == nodata ? 0 : cls[i];
      return;
    }
    std::vector<uint8_t>& cv = out_cells.cov;
    cv.resize(6 * n);
    for (int b = 0; b < 6; ++b)
      cover->read(b + 1, w, GDT_Byte, cv.data() + static_cast<std::size_t>(b) * n, 255);
    // The largest cover of each cell (no-data as 0), band by band so that it vectorizes; the
    // category is looked up only where it matters.
    std::vector<uint8_t> mx(n, 0);
    for (std::size_t b = 0; b < 6; ++b) {
      const uint8_t* v = cv.data() + b * n;
      for (std::size_t i = 0; i < n; ++i) {
        const uint8_t z = v[i] == 255 ? 0 : v[i];
        mx[i] = z > mx[i] ? z : mx[i];
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      const bool changed = cls[i] >= 1 && cls[i] <= 6;
      // A changed cell stays a patch cell (in the category its cover gives, else its own); an
      // unchanged one joins when a category covers at least half of it.
      if (cls[i] == nodata || (!changed && mx[i] < 50)) continue;
      int best = 0;
      if (mx[i] > 0) {
        while (cv[static_cast<std::size_t>(best) * n + i] != mx[i]) ++best;
        ++best;
      }
      out_cells.dom[i] = static_cast<uint8_t>(best ? best : cls[i]);
    }
  };
  // A patch ready to draw: its clump and the cells of its box plus a one-cell ring.
  struct Item {
    Clump c;
    Window w;
    std::vector<uint8_t> dom, valid, cov;  // cov: the cover band of its category
  };
  std::vector<Item> items, deferred;
  std::vector<Patch> drawn;
  std::vector<Clump> drawn_clumps;
  std::vector<std::string> failures;
  auto ring_window = [&](const Clump& c) {
    const int64_t x0 = std::max<int64_t>(0, c.col0 - 1), y0 = std::max<int64_t>(0, c.row0 - 1);
    const int64_t x1 = std::min(grid.width() - 1, c.col1 + 1),
                  y1 = std::min(grid.height() - 1, c.row1 + 1);
    return Window{x0, y0, x1 - x0 + 1, y1 - y0 + 1};
  };
  // Draws a patch: its cells by flood fill (8-connected) over its code from its first cell, its
  // polygon, and the observed share and sub-pixel area over it and its ring.
  auto draw = [&](const Item& it, Patch& p) -> std::string {
    const Clump& c = it.c;
    const Window& w = it.w;
    const auto n = static_cast<std::size_t>(w.pixels());
    std::vector<uint8_t> in(n, 0);
    std::vector<std::size_t> stack{
        static_cast<std::size_t>((c.seed_row - w.y) * w.w + (c.seed_col - w.x))};
    in[stack[0]] = 1;
    int64_t count = 0;
    while (!stack.empty()) {
      const std::size_t k = stack.back();
      stack.pop_back();
      ++count;
      const auto r = static_cast<int64_t>(k) / w.w, q = static_cast<int64_t>(k) % w.w;
      for (int64_t rr = std::max<int64_t>(0, r - 1); rr <= std::min(w.h - 1, r + 1); ++rr) {
        for (int64_t qq = std::max<int64_t>(0, q - 1); qq <= std::min(w.w - 1, q + 1); ++qq) {
          const auto m = static_cast<std::size_t>(rr * w.w + qq);
          if (!in[m] && it.dom[m] == c.code) in[m] = 1, stack.push_back(m);
        }
      }
    }
    if (count != c.cells)
      return "clump at row " + std::to_string(c.seed_row) + ", column " +
             std::to_string(c.seed_col) + ": " + std::to_string(count) + " cells filled, " +
             std::to_string(c.cells) + " found";
    p.geom = polygonize_mask(in, w, grid);
    if (!p.geom)
      return "clump at row " + std::to_string(c.seed_row) + ", column " +
             std::to_string(c.seed_col) + ": polygonizing failed: " + CPLGetLastErrorMsg();
    // The patch and its 8-neighbour ring: observed share, sub-pixel area.
    int64_t covered = 0, valid = 0;
    double cover_sum = 0;
    for (int64_t r = 0; r < w.h; ++r) {
      for (int64_t q = 0; q < w.w; ++q) {
        bool near = false;
        for (int64_t rr = std::max<int64_t>(0, r - 1); !near && rr <= std::min(w.h - 1, r + 1);
             ++rr)
          for (int64_t qq = std::max<int64_t>(0, q - 1); !near && qq <= std::min(w.w - 1, q + 1);
               ++qq)
            near = in[static_cast<std::size_t>(rr * w.w + qq)] != 0;
        if (!near) continue;
        const auto j = static_cast<std::size_t>(r * w.w + q);
        ++covered;
        valid += it.valid[j];
        if (!it.cov.empty() && it.cov[j] != 255) cover_sum += it.cov[j];
      }
    }
    p.cells = c.cells;
    p.valid_fraction = covered ? static_cast<double>(valid) / static_cast<double>(covered) : kNaN;
    if (opt.simplify) {
      GeometryPtr s(p.geom->SimplifyPreserveTopology(0.5 * cell));
      if (s && !s->IsEmpty()) p.geom = std::move(s);
    }
    p.pixel_area_m2 = OGR_G_Area(OGRGeometry::ToHandle(p.geom.get())) * unit * unit;
    p.area_m2 = it.cov.empty() ? p.pixel_area_m2 : cover_sum / 100.0 * px_m2;
    p.area_mu = p.area_m2 / kMu;
    OGREnvelope e;
    p.geom->getEnvelope(&e);
    p.xmin = e.MinX, p.ymin = e.MinY, p.xmax = e.MaxX, p.ymax = e.MaxY;
    OGRPoint ct;
    p.geom->Centroid(&ct);
    p.lon = ct.getX(), p.lat = ct.getY();
    auto mean = [](const ChannelStats& s) { return s.mean(); };
    p.intensity_max = c.channels[0].count ? c.channels[0].max : kNaN;
    p.intensity_mean = mean(c.channels[0]);
    p.magnitude_mean = mean(c.channels[1]);
    p.index_before = mean(c.channels[2]);
    p.index_after = mean(c.channels[3]);
    return {};
  };
  std::size_t pending_bytes = 0;
  auto flush = [&](std::vector<Item>& batch) {
    const std::size_t base = drawn.size();
    drawn.resize(base + batch.size());
    failures.resize(drawn.size());
    parallel_for_n(
        batch.size(), [&](std::size_t i) { failures[base + i] = draw(batch[i], drawn[base + i]); },
        so.threads);
    for (Item& it : batch) drawn_clumps.push_back(it.c);
    batch.clear();
    pending_bytes = 0;
  };
  // Clumps whose top rows were gone when they closed (or stitched from fragments): drawn from
  // their own boxes.
  auto draw_deferred = [&] {
    out.drawn_late += static_cast<int64_t>(deferred.size());
    for (Item& it : deferred) {
      Cells cells;
      read_cells(it.w, cells);
      it.dom = std::move(cells.dom);
      it.valid = std::move(cells.valid);
      if (with_cover) {
        const auto n = static_cast<std::size_t>(it.w.pixels());
        it.cov.assign(cells.cov.begin() + static_cast<std::ptrdiff_t>((it.c.code - 1) * n),
                      cells.cov.begin() + static_cast<std::ptrdiff_t>(it.c.code * n));
      }
    }
    flush(deferred);
  };
  auto check_failures = [&] {
    for (const auto& f : failures) {
      if (!f.empty()) throw_internal("patches of " + opt.change_class + ": " + f);
    }
  };
  // The pass over the rows, in full-width strips. In a sharded run (engine/shard_session.hpp)
  // a shard does the strips of its band of rows: it draws the clumps inside its band and ships
  // them with those touching its first or last row (fragments) and its runs on those rows; the
  // merge stitches the fragments of neighbouring bands (stitch_bands) and draws the joined
  // clumps from their own boxes, so every patch is the one a single machine draws.
  SchedulerOptions s0 = so;
  s0.label = "patch cells";
  s0.shard.reset();
  const int64_t width = grid.width();
  // Strips of whole block rows of the classes, as many rows as the memory budget allows. Shards
  // and the merge read them from differently laid out files (drafts), so a sharded run's plan
  // does not depend on the layout: strips of 16 rows or multiples, at least eight per shard, so
  // that bands of rows balance between shards.
  int bw = 512, bh = 16;
  if (!so.shard) block_size(classes.local(), bw, bh);
  BlockScheduler sched(s0);
  int64_t max_px = static_cast<int64_t>(static_cast<double>(sched.budget_bytes()) /
                                        BlockScheduler::kMaxTokens / (with_cover ? 26.0 : 20.0));
  if (so.shard) {
    const int64_t rows = grid.height() / (8 * std::max(1, so.shard->spec().count));
    max_px = std::min(max_px, width * std::max<int64_t>(16, rows));
  }
  const WindowPlan plan =
      WindowPlan::make(width, grid.height(), static_cast<int>(width), bh, max_px);
  ShardSession::Action action = ShardSession::Action::kLocal;
  int pass_number = 0;
  PartialKey key;
  if (so.shard) {
    const ShardSession::Pass pass = so.shard->begin_pass(s0.label, true);
    action = pass.action;
    pass_number = pass.number;
    key = so.shard->key(pass.number, s0.label, plan.size(), plan_hash(plan));
  }
  if (action == ShardSession::Action::kReplay) {
    std::vector<ClumpBand> bands;
    const PartialSet parts(so.shard->files(pass_number), key);
    for (std::size_t i = 0; i < plan.size(); ++i) {
      const std::string bytes = parts.window(i);
      if (bytes.empty()) continue;  // a band is shipped in its first window's record
      ByteReader in(bytes, parts.file_of(i) + ", window " + std::to_string(i));
      bands.push_back(read_band(in, drawn, drawn_clumps, out));
      if (!in.done()) throw_input("patch fragments of another format", {.file = parts.file_of(i)});
    }
    std::size_t fragments = 0;
    for (const ClumpBand& b : bands) fragments += b.open.size();
    const std::vector<Clump> joined = stitch_bands(bands);
    for (const Clump& c : joined) {
      if (c.cells < draw_cells) {
        out.sieved_cells += c.cells;
      } else {
        deferred.push_back(Item{c, ring_window(c), {}, {}, {}});
      }
    }
    out.stitched = static_cast<int64_t>(fragments - joined.size());
    log::info("patch fragments stitched", {{"bands", std::to_string(bands.size())},
                                           {"fragments", std::to_string(fragments)},
                                           {"clumps", std::to_string(joined.size())}});
  } else {
    ShardRange range{0, plan.size()};
    if (action == ShardSession::Action::kCompute) range = BlockScheduler(so).shard_windows(plan);
    const WindowPlan part = windows_of(plan, range);
    ClumpBand band;
    if (!part.windows.empty()) {
      band.first_row = part.windows.front().y;
      band.last_row = part.windows.back().y + part.windows.back().h - 1;
    }
    // Rows kept for drawing the clumps still open: up to a quarter of the memory budget. A clump
    // taller than that is drawn after the pass, from its own box.
    const int64_t row_bytes = 8 * width;
    const int64_t max_rows =
        std::max<int64_t>(64, sched.budget_bytes() / 4 / std::max<int64_t>(1, row_bytes));
    std::deque<Cells> rows;  // one Cells per row, from row `first`
    int64_t first = band.first_row;
    ClumpFinder finder(
        width,
        [&](const Clump& c) {
          // A clump on the band's first or last row may go on in the next band: a fragment.
          if ((c.row0 == band.first_row && band.first_row > 0) ||
              (c.row1 == band.last_row && band.last_row < grid.height() - 1)) {
            band.open.push_back(c);
            return;
          }
          if (c.cells < draw_cells) {
            out.sieved_cells += c.cells;
            return;
          }
          Item it{c, ring_window(c), {}, {}, {}};
          if (it.w.y < first) {  // its top rows are gone
            deferred.push_back(std::move(it));
            return;
          }
          const auto n = static_cast<std::size_t>(it.w.pixels());
          it.dom.resize(n);
          it.valid.resize(n);
          if (with_cover) it.cov.resize(n);
          for (int64_t r = 0; r < it.w.h; ++r) {
            const Cells& row = rows[static_cast<std::size_t>(it.w.y + r - first)];
            const auto dst = static_cast<std::size_t>(r * it.w.w);
            const auto x = static_cast<std::size_t>(it.w.x), ww = static_cast<std::size_t>(it.w.w);
            std::copy_n(row.dom.begin() + static_cast<std::ptrdiff_t>(x), ww,
                        it.dom.begin() + static_cast<std::ptrdiff_t>(dst));
            std::copy_n(row.valid.begin() + static_cast<std::ptrdiff_t>(x), ww,
                        it.valid.begin() + static_cast<std::ptrdiff_t>(dst));
            if (with_cover)
              std::copy_n(row.cov.begin() +
                              static_cast<std::ptrdiff_t>(static_cast<std::size_t>(c.code - 1) *
                                                              static_cast<std::size_t>(width) +
                                                          x),
                          ww, it.cov.begin() + static_cast<std::ptrdiff_t>(dst));
          }
          pending_bytes += 3 * n;
          items.push_back(std::move(it));
        },
        band.first_row);
    struct Strip {
      Cells cells;
      std::array<std::vector<float>, Clump::kChannels> values;
    };
    sched.run<Strip>(
        part,
        [&](const Window& w, std::size_t) {
          Strip s;
          read_cells(w, s.cells);
          for (std::size_t k = 0; k < chan.size(); ++k) {
            if (!chan[k].pool) continue;
            std::vector<float>& v = s.values[k];
            chan[k].pool->read(1, w, v, kNaN);
            if (chan[k].has_nd) {
              const auto ndv = static_cast<float>(chan[k].nd);
              for (float& z : v) {
                if (z == ndv) z = std::numeric_limits<float>::quiet_NaN();
              }
            }
          }
          return s;
        },
        [&](const Window& w, std::size_t, Strip& s) {
          const auto ww = static_cast<std::size_t>(w.w);
          for (int64_t r = 0; r < w.h; ++r) {
            const auto off = static_cast<std::size_t>(r) * ww;
            // The oldest row gives its buffers to the new one when the rows held are at the cap.
            Cells row;
            if (rows.size() >= static_cast<std::size_t>(max_rows)) {
              row = std::move(rows.front());
              rows.pop_front();
              ++first;
            }
            row.dom.assign(s.cells.dom.begin() + static_cast<std::ptrdiff_t>(off),
                           s.cells.dom.begin() + static_cast<std::ptrdiff_t>(off + ww));
            row.valid.assign(s.cells.valid.begin() + static_cast<std::ptrdiff_t>(off),
                             s.cells.valid.begin() + static_cast<std::ptrdiff_t>(off + ww));
            if (with_cover) {
              row.cov.resize(6 * ww);
              for (std::size_t b = 0; b < 6; ++b)
                std::copy_n(
                    s.cells.cov.begin() +
                        static_cast<std::ptrdiff_t>(b * static_cast<std::size_t>(w.pixels()) + off),
                    ww, row.cov.begin() + static_cast<std::ptrdiff_t>(b * ww));
            }
            rows.push_back(std::move(row));
            std::array<const float*, Clump::kChannels> vals{};
            for (std::size_t k = 0; k < vals.size(); ++k) {
              if (!s.values[k].empty()) vals[k] = s.values[k].data() + off;
            }
            finder.push_row(s.cells.dom.data() + off, vals);
            // Keep the rows the open clumps (and a clump starting on the next row) need.
            const int64_t keep = std::min(finder.oldest_open_row(), finder.rows() - 1) - 1;
            while (first < keep && !rows.empty()) {
              rows.pop_front();
              ++first;
            }
            if (pending_bytes > (16u << 20)) flush(items);
          }
        });
    finder.finish();
    flush(items);
    band.top = finder.first_runs();
    band.bottom = finder.last_runs();
    if (action == ShardSession::Action::kCompute) {
      // Clumps taller than the rows kept are drawn here too, then the band is shipped whole in
      // its first window's record (the others are empty).
      draw_deferred();
      check_failures();
      PartialWriter w(so.shard->output_file(), key);
      for (std::size_t k = range.begin; k < range.end; ++k) {
        ByteWriter bytes;
        if (k == range.begin) write_band(bytes, band, drawn, drawn_clumps, out);
        w.add(k, bytes.take());
      }
      w.commit();
      so.shard->computed(s0.label, range, plan.size());
    }
  }
  lap("clumps");
  // Clumps taller than the rows kept: drawn from their own boxes.
  draw_deferred();
  check_failures();
  // Stable ids: CP<category code>-<row>-<col> of the box's upper-left cell.
  std::vector<std::size_t> order(drawn.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Clump &x = drawn_clumps[a], &y = drawn_clumps[b];
    return std::tie(x.row0, x.col0, x.code, x.seed_row, x.seed_col) <
           std::tie(y.row0, y.col0, y.code, y.seed_row, y.seed_col);
  });
  const std::size_t np = drawn.size();
  out.patches.reserve(np);
  {
    std::map<std::string, int> seen;
    for (std::size_t i : order) {
      const Clump& c = drawn_clumps[i];
      Patch& p = drawn[i];
      char id[64];
      std::snprintf(id, sizeof id, "CP%d-%06lld-%06lld", c.code, static_cast<long long>(c.row0),
                    static_cast<long long>(c.col0));
      p.id = id;
      if (int k = ++seen[p.id]; k > 1) p.id += "-" + std::to_string(k);
      p.category_code = c.code;
      p.category = names[static_cast<std::size_t>(c.code)];
      out.patches.push_back(std::move(p));
    }
  }
  log::info("patches", {{"file", opt.change_class},
                        {"patches", std::to_string(np)},
                        {"mmu_cells", std::to_string(out.mmu_cells)},
                        {"sieved_cells", std::to_string(out.sieved_cells)},
                        {"drawn_from_own_box", std::to_string(out.drawn_late)}});
  OGRSpatialReference wgs;
  wgs.SetWellKnownGeogCS("WGS84");
  wgs.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  // Centroids in WGS 84, one transformation for all.
  if (np > 0) {
    std::vector<double> xs(np), ys(np);
    for (std::size_t i = 0; i < np; ++i) xs[i] = out.patches[i].lon, ys[i] = out.patches[i].lat;
    std::vector<int> ok(np, 0);
    std::unique_ptr<OGRCoordinateTransformation> to_wgs(
        OGRCreateCoordinateTransformation(grid.crs().ogr(), &wgs));
    if (to_wgs) to_wgs->Transform(static_cast<int>(np), xs.data(), ys.data(), nullptr, ok.data());
    for (std::size_t i = 0; i < np; ++i) {
      Patch& p = out.patches[i];
      if (to_wgs && ok[i]) {
        p.lon = xs[i], p.lat = ys[i];
      } else {
        p.lon = p.lat = 0;
      }
    }
  }

  // With the sub-pixel cover a patch reaches the unit in whole cells or in sub-pixel area. A
  // patch of the unit in whole cells whose sub-pixel area is under half the unit is the mixed
  // rim of another change (cells the rules gave a weaker category, whose cover went to the
  // stronger one): dropped. Otherwise the sub-pixel area may be a little less than the unit (a
  // 6-cell patch of 480 m2 planted measures 395 m2). A patch of fewer whole cells stays when
  // its sub-pixel area reaches the unit.
  if (!opt.cover.empty()) {
    std::vector<Patch> kept;
    for (Patch& p : out.patches) {
      const bool whole = p.cells >= out.mmu_cells;
      if (whole ? p.area_m2 >= 0.5 * opt.mmu_m2 : p.area_m2 >= opt.mmu_m2) {
        kept.push_back(std::move(p));
      } else if (whole) {
        ++out.below_unit;
      } else {
        out.sieved_cells += p.cells;
      }
    }
    out.patches = std::move(kept);
  }
  const std::size_t nk = out.patches.size();

  // 5. Overlays: parcels (farmland, basic farmland, ids, township and village), zones, and the
  // administrative units. For every patch and every polygon of `set` whose box meets it (in
  // parcel order), `use(patch, polygon, overlap m2)` for a positive overlap; patches in parallel.
  auto overlay = [&](const ParcelSet* set, double bucket, auto&& use) {
    if (nk == 0 || !set || set->parcels.empty()) return;
    const BoxIndex index(*set, bucket * cell);
    parallel_for_n(nk, [&](std::size_t i) {
      Patch& p = out.patches[i];
      OGREnvelope e;
      p.geom->getEnvelope(&e);
      CPLPushErrorHandler(CPLQuietErrorHandler);
      for (std::size_t k : index.query(e)) {
        const Parcel& q = set->parcels[k];
        GeometryPtr g(p.geom->Intersection(q.geom.get()));
        const double a = g ? OGR_G_Area(OGRGeometry::ToHandle(g.get())) * unit * unit : 0.0;
        if (a > 1e-9) use(p, q, a);
      }
      CPLPopErrorHandler();
    });
  };
  auto attr = [](const Parcel& q, int f) {
    return f >= 0 ? q.attrs[static_cast<std::size_t>(f)] : std::string();
  };
  if (parcels) {
    const int ti = field_index(*parcels, opt.township_field);
    const int vi = field_index(*parcels, opt.village_field);
    std::vector<double> best(nk, 0.0);
    overlay(parcels, 64, [&](Patch& p, const Parcel& q, double a) {
      p.farmland_area_m2 += a;
      if (q.basic_farmland) p.basic_farmland_area_m2 += a;
      p.parcel_ids.push_back(q.id);
      double& b = best[static_cast<std::size_t>(&p - out.patches.data())];
      if (a > b) b = a, p.township = attr(q, ti), p.village = attr(q, vi);
    });
  }
  if (zones) {
    const int ni = field_index(*zones, zo.name_field), yi = field_index(*zones, zo.type_field),
              si = field_index(*zones, zo.sensitivity_field);
    overlay(zones, 256, [&](Patch& p, const Parcel& z, double a) {
      if (a <= p.zone_area_m2) return;
      p.zone_area_m2 = a;
      p.zone_id = z.id;
      p.zone_name = attr(z, ni), p.zone_type = attr(z, yi), p.zone_sensitivity = attr(z, si);
    });
  }
  if (opt.admin) {
    const int ti = field_index(*opt.admin, opt.admin_township_field);
    const int vi = field_index(*opt.admin, opt.admin_village_field);
    std::vector<double> best(nk, 0.0);
    overlay(opt.admin, 256, [&](Patch& p, const Parcel& u, double a) {
      double& b = best[static_cast<std::size_t>(&p - out.patches.data())];
      if (a > b) b = a, p.township = attr(u, ti), p.village = attr(u, vi);
    });
  }
  lap("overlays");
  // 6. Priority: the most urgent rule that holds.
  for (Patch& p : out.patches) {
    p.priority = 3;
    for (const auto& r : opt.rules) {
      if (r.level < p.priority && holds(r, p)) p.priority = r.level;
    }
  }
  return out;
}

void write_patches(const std::string& dir, const PatchSet& set) {
  std::filesystem::create_directories(dir);
  std::vector<FieldDef> fields = {{"patch_id", OFTString},
                                  {"category", OFTString},
                                  {"priority", OFTString},
                                  {"intensity_max", OFTReal},
                                  {"intensity_mean", OFTReal},
                                  {"area_m2", OFTReal},
                                  {"area_mu", OFTReal},
                                  {"pixel_area_m2", OFTReal},
                                  {"cells", OFTInteger64},
                                  {"centroid_lon", OFTReal},
                                  {"centroid_lat", OFTReal},
                                  {"xmin", OFTReal},
                                  {"ymin", OFTReal},
                                  {"xmax", OFTReal},
                                  {"ymax", OFTReal},
                                  {"magnitude_mean", OFTReal},
                                  {"index_before_mean", OFTReal},
                                  {"index_after_mean", OFTReal},
                                  {"valid_fraction", OFTReal},
                                  {"farmland_area_m2", OFTReal},
                                  {"basic_farmland_area_m2", OFTReal},
                                  {"parcel_ids", OFTString},
                                  {"zone_id", OFTString},
                                  {"zone_name", OFTString},
                                  {"zone_type", OFTString},
                                  {"zone_sensitivity", OFTString},
                                  {"zone_area_m2", OFTReal},
                                  {"township", OFTString},
                                  {"village", OFTString},
                                  {"chips", OFTString}};
  for (const auto& f : set.extra_fields) fields.push_back(f);
  auto values = [&set](const Patch& p) {
    std::string ids;
    for (const auto& s : p.parcel_ids) ids += (ids.empty() ? "" : ";") + s;
    std::vector<std::string> v{p.id,
                               p.category,
                               "P" + std::to_string(p.priority),
                               fmt(p.intensity_max),
                               fmt(p.intensity_mean),
                               fmt(p.area_m2),
                               fmt(p.area_mu),
                               fmt(p.pixel_area_m2),
                               std::to_string(p.cells),
                               fmt(p.lon),
                               fmt(p.lat),
                               fmt(p.xmin),
                               fmt(p.ymin),
                               fmt(p.xmax),
                               fmt(p.ymax),
                               fmt(p.magnitude_mean),
                               fmt(p.index_before),
                               fmt(p.index_after),
                               fmt(p.valid_fraction),
                               fmt(p.farmland_area_m2),
                               fmt(p.basic_farmland_area_m2),
                               ids,
                               p.zone_id,
                               p.zone_name,
                               p.zone_type,
                               p.zone_sensitivity,
                               fmt(p.zone_area_m2),
                               p.township,
                               p.village,
                               p.chips};
    for (std::size_t k = 0; k < set.extra_fields.size(); ++k)
      v.push_back(k < p.extra.size() ? p.extra[k] : std::string());
    return v;
  };
  auto write_vector = [&](const std::string& drv) {
    const std::string path = dir + (drv == "GPKG" ? "/patches.gpkg" : "/patches.geojson");
    VectorWriter w(path, drv);
    OGRLayer& layer = w.add_layer("patches", set.grid.crs(), wkbMultiPolygon, fields);
    for (const Patch& p : set.patches) {
      OGRFeature f(layer.GetLayerDefn());
      set_fields(f, fields, values(p));
      f.SetGeometryDirectly(OGRGeometryFactory::forceToMultiPolygon(p.geom->clone()));
      w.write(layer, f);
    }
    w.commit();
  };
  // CSV (no geometry), RFC 4180 quoting.
  auto write_csv = [&] {
    std::string csv;
    for (std::size_t k = 0; k < fields.size(); ++k) csv += (k ? "," : "") + fields[k].name;
    csv += "\n";
    for (const Patch& p : set.patches) {
      const auto v = values(p);
      for (std::size_t k = 0; k < v.size(); ++k) csv += (k ? "," : "") + csv_quote(v[k]);
      csv += "\n";
    }
    write_file_atomic(dir + "/patches.csv", csv);
  };
  // The three files are independent: written side by side.
  std::exception_ptr failed[3];
  parallel_for_n(3, [&](std::size_t k) {
    try {
      if (k == 2) {
        write_csv();
      } else {
        write_vector(k == 0 ? "GeoJSON" : "GPKG");
      }
    } catch (...) {
      failed[k] = std::current_exception();
    }
  });
  for (const auto& e : failed) {
    if (e) std::rethrow_exception(e);
  }
}

std::vector<PixelRing> outline_rings(const OGRGeometry& geom, const Grid& grid, const Window& win) {
  std::vector<PixelRing> out;
  const GeoTransform& gt = grid.transform();
  std::vector<const OGRPolygon*> polys;
  const auto t = wkbFlatten(geom.getGeometryType());
  if (t == wkbPolygon) {
    polys.push_back(geom.toPolygon());
  } else if (t == wkbMultiPolygon) {
    for (const auto* p : *geom.toMultiPolygon()) polys.push_back(p);
  }
  for (const OGRPolygon* p : polys) {
    for (const auto* ring : *p) {
      PixelRing r;
      for (int k = 0; k < ring->getNumPoints(); ++k) {
        double c, w;
        gt.world_to_pixel(ring->getX(k), ring->getY(k), c, w);
        r.emplace_back(c - static_cast<double>(win.x), w - static_cast<double>(win.y));
      }
      out.push_back(std::move(r));
    }
  }
  return out;
}

}  // namespace fw::vectors
