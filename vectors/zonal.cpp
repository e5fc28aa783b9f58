#include "vectors/zonal.hpp"

#include <ogrsf_frmts.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/raster_io.hpp"
#include "engine/scheduler.hpp"

namespace fw::vectors {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Weighted accumulator of one parcel over one raster; mergeable (West's weighted update).
struct Acc {
  double w = 0, mean = 0, m2 = 0, sum = 0, covered = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  int64_t cells = 0;
  std::vector<std::pair<double, double>> values;  // (value, weight), for quantiles only
  std::vector<double> above;                      // weight above each aboveT threshold
  std::map<double, double> classes;               // weight per value, for class statistics

  // What a raster's statistics need beyond the moments: the values (quantiles), the weight
  // above thresholds, the weight per class. Only quantiles keep values, so memory stays bounded
  // by the window for every other statistic, however large the polygon (a zone of a whole
  // county on a 10980 x 10980 raster had taken the monitoring run's peak to 1.24 GB, keeping
  // its values for the aboveT and frac columns).
  struct Needs {
    bool values = false, classes = false;
    std::vector<double> thresholds;
  };

  void add(double v, double f, const Needs& n) {
    const double wn = w + f;
    const double delta = v - mean;
    mean += delta * f / wn;
    m2 += f * delta * (v - mean);
    w = wn;
    sum += f * v;
    min = std::min(min, v), max = std::max(max, v);
    if (n.values) values.emplace_back(v, f);
    if (!n.thresholds.empty()) {
      above.resize(n.thresholds.size());
      for (std::size_t k = 0; k < n.thresholds.size(); ++k) {
        if (v > n.thresholds[k]) above[k] += f;
      }
    }
    if (n.classes) classes[v] += f;
  }
  void merge(Acc& o) {
    covered += o.covered;
    cells += o.cells;
    if (o.w > 0) {
      if (w <= 0) {
        w = o.w, mean = o.mean, m2 = o.m2;
      } else {
        const double wn = w + o.w, delta = o.mean - mean;
        m2 += o.m2 + delta * delta * w * o.w / wn;
        mean += delta * o.w / wn;
        w = wn;
      }
      sum += o.sum;
      min = std::min(min, o.min), max = std::max(max, o.max);
    }
    if (values.empty()) {
      values = std::move(o.values);
    } else {
      values.insert(values.end(), o.values.begin(), o.values.end());
    }
    if (above.size() < o.above.size()) above.resize(o.above.size());
    for (std::size_t k = 0; k < o.above.size(); ++k) above[k] += o.above[k];
    for (const auto& [c, cw] : o.classes) classes[c] += cw;
  }
};

// One window's accumulators: its parcels, and nr accumulators per parcel.
struct Part {
  std::vector<uint32_t> parcels;
  std::vector<Acc> accs;            // parcels.size() * nr
  void write(ByteWriter& b) const;  // shipped between shards (engine/shard_session.hpp)
  static Part read(ByteReader& b);
};

// Exact round trip of a window's accumulators (sharded runs).
std::string write_part(const Part& p) {
  ByteWriter b;
  p.write(b);
  return b.take();
}

void Part::write(ByteWriter& b) const {
  const Part& p = *this;
  b.put_vector(p.parcels);
  b.put<uint64_t>(p.accs.size());
  std::vector<double> flat;
  for (const Acc& a : p.accs) {
    b.put(a.w), b.put(a.mean), b.put(a.m2), b.put(a.sum), b.put(a.covered);
    b.put(a.min), b.put(a.max), b.put(a.cells);
    flat.clear();
    for (const auto& [v, w] : a.values) flat.push_back(v), flat.push_back(w);
    b.put_vector(flat);
    b.put_vector(a.above);
    flat.clear();
    for (const auto& [c, w] : a.classes) flat.push_back(c), flat.push_back(w);
    b.put_vector(flat);
  }
}

Part read_part(ByteReader& r) {
  return Part::read(r);
}

Part Part::read(ByteReader& r) {
  Part p;
  p.parcels = r.get_vector<uint32_t>();
  const auto n = r.get<uint64_t>();
  if (n > r.left()) throw Error(ExitCode::kInput, "partial results: corrupt zonal accumulators");
  p.accs.resize(static_cast<std::size_t>(n));
  for (Acc& a : p.accs) {
    a.w = r.get<double>(), a.mean = r.get<double>(), a.m2 = r.get<double>();
    a.sum = r.get<double>(), a.covered = r.get<double>();
    a.min = r.get<double>(), a.max = r.get<double>(), a.cells = r.get<int64_t>();
    const auto flat = r.get_vector<double>();
    a.values.reserve(flat.size() / 2);
    for (std::size_t k = 0; k + 1 < flat.size(); k += 2)
      a.values.emplace_back(flat[k], flat[k + 1]);
    a.above = r.get_vector<double>();
    const auto cls = r.get_vector<double>();
    for (std::size_t k = 0; k + 1 < cls.size(); k += 2) a.classes[cls[k]] += cls[k + 1];
  }
  return p;
}

// Weighted quantile with linear interpolation between the values' weight midpoints; with unit
// weights it is the usual (type 7) sample quantile.
double weighted_quantile(std::vector<std::pair<double, double>>& v, double q) {
  if (v.empty()) return kNaN;
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  if (v.size() == 1) return v[0].first;
  double total = 0;
  for (const auto& x : v) total += x.second;
  const double span = total - 0.5 * v.front().second - 0.5 * v.back().second;
  const double t = q * span;
  double before = 0, prev_c = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double c = before + 0.5 * v[i].second - 0.5 * v.front().second;
    if (c >= t) {
      if (i == 0 || c == prev_c) return v[i].first;
      const double a = (t - prev_c) / (c - prev_c);
      return v[i - 1].first + a * (v[i].first - v[i - 1].first);
    }
    prev_c = c;
    before += v[i].second;
  }
  return v.back().first;
}

struct StatSpec {
  std::string name;
  double q = 0;  // quantile for pNN; threshold for aboveT
  bool above = false;
};

std::vector<StatSpec> parse_stats(const std::vector<std::string>& names, bool& need_values,
                                  bool& need_classes) {
  static const std::vector<std::string> known = {
      "count",    "sum",      "mean",    "min",  "max",      "variance",       "stdev", "median",
      "majority", "minority", "variety", "frac", "coverage", "valid_fraction", "cells"};
  std::vector<StatSpec> out;
  need_values = need_classes = false;
  for (const auto& n : names) {
    StatSpec s{n};
    if (n.rfind("above", 0) == 0 && n.size() > 5) {
      try {
        s.q = std::stod(n.substr(5));
      } catch (const std::exception&) {
        throw_usage("bad statistic '" + n + "' (aboveT: the share of the valid weight above T)");
      }
      s.above = true;
    } else if (n.size() > 1 && n[0] == 'p' && std::all_of(n.begin() + 1, n.end(), ::isdigit)) {
      s.q = std::stod(n.substr(1)) / 100.0;
      if (s.q > 1) throw_usage("quantile '" + n + "' above p100");
      need_values = true;
    } else if (std::find(known.begin(), known.end(), n) == known.end()) {
      std::string k;
      for (const auto& x : known) k += x + ", ";
      throw_usage("unknown statistic '" + n + "' (known: " + k + "pNN for quantiles)");
    }
    if (n == "median") s.q = 0.5, need_values = true;
    if (n == "majority" || n == "minority" || n == "variety" || n == "frac") need_classes = true;
    out.push_back(s);
  }
  return out;
}

}  // namespace

Grid zonal_grid(const std::vector<ZonalRaster>& rasters) {
  if (rasters.empty()) throw_usage("no raster given");
  Grid g;
  for (std::size_t i = 0; i < rasters.size(); ++i) {
    DatasetPtr ds = open_raster(rasters[i].path);
    if (rasters[i].band < 1 || rasters[i].band > ds->GetRasterCount()) {
      throw_input("band " + std::to_string(rasters[i].band) + " does not exist",
                  {.file = rasters[i].path});
    }
    const Grid gi = Grid::of(*ds, rasters[i].path);
    if (i == 0) {
      g = gi;
      if (g.crs().empty())
        throw_input("the raster has no coordinate reference system", {.file = rasters[i].path});
    } else if (!(gi.transform() == g.transform()) || gi.width() != g.width() ||
               gi.height() != g.height() || !gi.crs().same_as(g.crs())) {
      throw_input("the raster's grid differs from " + rasters[0].path + "'s (" + gi.describe() +
                      " against " + g.describe() + "): align the rasters first",
                  {.file = rasters[i].path});
    }
  }
  return g;
}

namespace {

// What a sharded call does: compute one shard's windows into a file, or merge every shard's.
struct ZonalSharding {
  const ShardSpec* shard = nullptr;                 // compute this shard ...
  std::string file;                                 // ... into this file
  const std::vector<std::string>* files = nullptr;  // merge these
  std::string run_key;
};

}  // namespace

static ZonalTable zonal_impl(const ParcelSet& set, const std::vector<ZonalRaster>& rasters,
                             const ZonalOptions& opt, const SchedulerOptions& so,
                             const ZonalSharding& sharding) {
  const Grid grid = zonal_grid(rasters);
  const std::size_t nr = rasters.size(), np = set.parcels.size();
  // Statistics per raster (its own list, or the options').
  std::vector<std::vector<StatSpec>> rstats(nr);
  std::vector<Acc::Needs> needs(nr);
  for (std::size_t r = 0; r < nr; ++r) {
    bool v = false, c = false;
    rstats[r] = parse_stats(rasters[r].stats.empty() ? opt.stats : rasters[r].stats, v, c);
    needs[r].values = v, needs[r].classes = c;
    for (const StatSpec& st : rstats[r]) {
      if (st.above) needs[r].thresholds.push_back(st.q);
    }
  }
  // Rasters: per-thread handles, nodata.
  // One pool of handles per file: the bands of a pixel-interleaved file then share GDAL's block
  // cache (a tile is decoded once for all its bands, not once per band).
  std::vector<std::shared_ptr<DatasetPool>> pools;
  std::map<std::string, std::shared_ptr<DatasetPool>> by_path;
  std::vector<std::optional<double>> nodata(nr);
  std::vector<double> scale(nr, 1.0), offset(nr, 0.0);  // the band's, applied as GDAL says
  std::vector<std::string> names(nr);
  int block_w = 256, block_h = 256;
  for (std::size_t r = 0; r < nr; ++r) {
    auto& pool = by_path[rasters[r].path];
    if (!pool) pool = std::make_shared<DatasetPool>(rasters[r].path);
    pools.push_back(pool);
    GDALRasterBand* b = pools[r]->local().GetRasterBand(rasters[r].band);
    int has = 0;
    const double nd = b->GetNoDataValue(&has);
    if (has) nodata[r] = nd;
    const double sc = b->GetScale(&has);
    if (has && sc != 0) scale[r] = sc;
    const double of = b->GetOffset(&has);
    if (has) offset[r] = of;
    if (r == 0) b->GetBlockSize(&block_w, &block_h);
    names[r] = rasters[r].name.empty() ? std::filesystem::path(rasters[r].path).stem().string()
                                       : rasters[r].name;
  }
  // Parcels in pixel coordinates, and the windows each one touches.
  SchedulerOptions s1 = so;
  s1.label = "zonal statistics";
  BlockScheduler sched(s1);
  const double bpp = static_cast<double>(nr) * 8.0 + 16.0;
  const WindowPlan plan = sched.plan(grid.width(), grid.height(), block_w, block_h, bpp);
  const int64_t nx = (grid.width() + plan.win_w - 1) / plan.win_w;
  std::vector<PixelPolygon> px(np);
  std::vector<Window> pwin(np);
  std::vector<std::vector<uint32_t>> by_window(plan.size());
  std::vector<int64_t> last(np, -1);
  int64_t inside = 0;
  constexpr std::size_t kChunk = 512;
  parallel_for_n((np + kChunk - 1) / kChunk,
                 [&](std::size_t c) {
                   for (std::size_t i = c * kChunk; i < std::min(np, (c + 1) * kChunk); ++i) {
                     const Parcel& p = set.parcels[i];
                     if (p.outside || !p.geom) continue;
                     px[i] = PixelPolygon::from_ogr(*p.geom, grid.transform());
                     pwin[i] = px[i].window(grid.full_window());
                   }
                 },
                 so.threads);
  for (std::size_t i = 0; i < np; ++i) {
    if (pwin[i].empty()) continue;
    ++inside;
    for (int64_t wy = pwin[i].y / plan.win_h; wy <= (pwin[i].y_end() - 1) / plan.win_h; ++wy) {
      for (int64_t wx = pwin[i].x / plan.win_w; wx <= (pwin[i].x_end() - 1) / plan.win_w; ++wx) {
        const auto k = static_cast<std::size_t>(wy * nx + wx);
        by_window[k].push_back(static_cast<uint32_t>(i));
        last[i] = std::max(last[i], static_cast<int64_t>(k));
      }
    }
  }
  if (inside == 0 && np > 0) {
    throw_input("no parcel overlaps the raster(s) (" + std::to_string(np) +
                    " parcels, all outside " + grid.describe() + ")",
                {.file = set.file, .layer = set.layer});
  }
  // Output columns.
  ZonalTable table;
  std::vector<std::vector<double>> class_values(nr);  // per raster, the classes seen (sorted)
  std::vector<std::vector<Acc>> acc(np, std::vector<Acc>(nr));
  // Final per-parcel per-raster statistics, computed when the parcel's last window is merged.
  struct Final {
    std::vector<double> fixed;              // one per non-frac statistic
    std::map<double, double> class_weight;  // for frac columns
  };
  std::vector<std::vector<Final>> finals(np, std::vector<Final>(nr));
  auto finalize = [&](std::size_t i) {
    for (std::size_t r = 0; r < nr; ++r) {
      Acc& a = acc[i][r];
      Final& f = finals[i][r];
      const std::map<double, double>& cw = a.classes;
      const auto& stats = rstats[r];
      std::size_t above_k = 0;
      for (const StatSpec& s : stats) {
        const std::string& n = s.name;
        double v = kNaN;
        if (n == "count")
          v = a.w;
        else if (n == "sum")
          v = a.w > 0 ? a.sum : 0.0;
        else if (n == "mean")
          v = a.w > 0 ? a.sum / a.w : kNaN;
        else if (n == "min")
          v = a.w > 0 ? a.min : kNaN;
        else if (n == "max")
          v = a.w > 0 ? a.max : kNaN;
        else if (n == "variance")
          v = a.w > 0 ? a.m2 / a.w : kNaN;
        else if (n == "stdev")
          v = a.w > 0 ? std::sqrt(std::max(0.0, a.m2 / a.w)) : kNaN;
        else if (n == "coverage")
          v = a.covered;
        else if (n == "valid_fraction")
          v = a.covered > 0 ? a.w / a.covered : kNaN;
        else if (n == "cells")
          v = static_cast<double>(a.cells);
        else if (n == "variety")
          v = static_cast<double>(cw.size());
        else if (n == "majority" || n == "minority") {
          double best = kNaN, bw = n == "majority" ? -1.0 : std::numeric_limits<double>::infinity();
          for (const auto& [c, w] : cw) {  // ascending class: ties go to the smaller class
            if (n == "majority" ? w > bw : w < bw) best = c, bw = w;
          }
          v = best;
        } else if (n == "frac") {
          f.class_weight = cw;
          continue;
        } else if (s.above) {  // aboveT: the share of the valid weight above T
          const double above = above_k < a.above.size() ? a.above[above_k] : 0.0;
          ++above_k;
          v = a.w > 0 ? above / a.w : kNaN;
        } else {  // median, pNN
          v = weighted_quantile(a.values, s.q);
        }
        f.fixed.push_back(v);
      }
      a.values.clear();
      a.values.shrink_to_fit();
      a.classes.clear();
    }
  };
  auto compute = [&](const Window& w, std::size_t k) {
    Part part;
    const auto& list = by_window[k];
    if (list.empty()) return part;
    std::vector<std::vector<double>> data(nr);
    for (std::size_t r = 0; r < nr; ++r) {
      data[r].resize(static_cast<std::size_t>(w.pixels()));
      pools[r]->read(rasters[r].band, w, GDT_Float64, data[r].data(), kNaN);
      // Nodata to NaN, then the band's scale and offset (Int16 x 10000 indices, UInt16
      // reflectance): statistics in the values the band stands for.
      if (nodata[r] || scale[r] != 1.0 || offset[r] != 0.0) {
        for (double& v : data[r]) {
          v = nodata[r] && v == *nodata[r] ? kNaN : v * scale[r] + offset[r];
        }
      }
    }
    std::vector<double> frac, scratch;
    part.parcels = list;
    part.accs.resize(list.size() * nr);
    for (std::size_t j = 0; j < list.size(); ++j) {
      const std::size_t i = list[j];
      const Window cw = pwin[i].intersection(w);
      if (cw.empty()) continue;
      coverage(px[i], cw, opt.mode, frac, scratch);
      for (std::size_t r = 0; r < nr; ++r) {
        Acc& a = part.accs[j * nr + r];
        const double* d = data[r].data();
        for (int64_t y = 0; y < cw.h; ++y) {
          const double* row = d + static_cast<std::size_t>((cw.y - w.y + y) * w.w + (cw.x - w.x));
          const double* fr = frac.data() + static_cast<std::size_t>(y * cw.w);
          for (int64_t x = 0; x < cw.w; ++x) {
            const double f = fr[x];
            if (!(f > 0)) continue;
            a.covered += f;
            ++a.cells;
            const double v = row[x];
            if (std::isnan(v)) continue;
            a.add(v, f, needs[r]);
          }
        }
      }
    }
    return part;
  };
  auto consume = [&](const Window&, std::size_t k, Part& part) {
    for (std::size_t j = 0; j < part.parcels.size(); ++j) {
      const std::size_t i = part.parcels[j];
      for (std::size_t r = 0; r < nr; ++r) acc[i][r].merge(part.accs[j * nr + r]);
      if (last[i] == static_cast<int64_t>(k)) finalize(i);
    }
  };
  if (sharding.shard) {
    // This shard's windows, balanced by pixels and parcels; their accumulators to the file.
    std::vector<int64_t> weights(plan.size());
    for (std::size_t k = 0; k < plan.size(); ++k)
      weights[k] = plan.windows[k].pixels() + 10000 * static_cast<int64_t>(by_window[k].size());
    const ShardRange range = assign_shards(
        weights, sharding.shard->count)[static_cast<std::size_t>(sharding.shard->index)];
    PartialWriter out(sharding.file, {sharding.run_key, "zonal", plan.size(), plan_hash(plan)});
    compute_shard<Part>(sched, plan, range, compute, write_part, out);
    out.commit();
    return {};
  }
  if (sharding.files) {
    const PartialSet parts(*sharding.files,
                           {sharding.run_key, "zonal", plan.size(), plan_hash(plan)});
    replay<Part>(plan, parts, read_part, consume);
  } else {
    sched.run<Part>(plan, compute, consume);
  }
  for (std::size_t i = 0; i < np; ++i) {
    if (last[i] < 0) finalize(i);  // outside: empty accumulators
  }
  // Columns: per raster, each statistic; frac expands into one column per class seen.
  for (std::size_t r = 0; r < nr; ++r) {
    std::map<double, bool> classes;
    for (std::size_t i = 0; i < np; ++i)
      for (const auto& [c, w] : finals[i][r].class_weight) classes[c] = true;
    for (const auto& [c, b] : classes) class_values[r].push_back(c);
  }
  auto fmt_class = [](double c) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", c);
    return std::string(buf);
  };
  for (std::size_t r = 0; r < nr; ++r) {
    for (const StatSpec& s : rstats[r]) {
      if (s.name == "frac") {
        for (double c : class_values[r])
          table.columns.push_back(names[r] + "_frac_" + fmt_class(c));
      } else {
        table.columns.push_back(names[r] + "_" + s.name);
      }
    }
  }
  table.rows.resize(np);
  for (std::size_t i = 0; i < np; ++i) {
    auto& row = table.rows[i];
    for (std::size_t r = 0; r < nr; ++r) {
      const Final& f = finals[i][r];
      std::size_t fi = 0;
      double valid = 0;
      for (const auto& [c, w] : f.class_weight) valid += w;
      for (const StatSpec& s : rstats[r]) {
        if (s.name == "frac") {
          for (double c : class_values[r]) {
            auto it = f.class_weight.find(c);
            row.push_back(valid > 0 ? (it == f.class_weight.end() ? 0.0 : it->second / valid)
                                    : kNaN);
          }
        } else {
          row.push_back(f.fixed[fi++]);
        }
      }
    }
  }
  return table;
}

ZonalTable zonal_stats(const ParcelSet& set, const std::vector<ZonalRaster>& rasters,
                       const ZonalOptions& opt, const SchedulerOptions& so) {
  return zonal_impl(set, rasters, opt, so, {});
}

void zonal_stats_shard(const ParcelSet& set, const std::vector<ZonalRaster>& rasters,
                       const ZonalOptions& opt, const ShardSpec& shard, const std::string& file,
                       const std::string& run_key, const SchedulerOptions& so) {
  zonal_impl(set, rasters, opt, so, {.shard = &shard, .file = file, .run_key = run_key});
}

ZonalTable zonal_stats_merge(const ParcelSet& set, const std::vector<ZonalRaster>& rasters,
                             const ZonalOptions& opt, const std::vector<std::string>& files,
                             const std::string& run_key, const SchedulerOptions& so) {
  return zonal_impl(set, rasters, opt, so, {.files = &files, .run_key = run_key});
}

void write_parcels(const std::string& path, const ParcelSet& set, const ParcelColumns& cols,
                   const Crs& crs) {
  const std::string ext = std::filesystem::path(path).extension().string();
  std::string drv;
  if (ext == ".csv") {
    drv = "CSV";
  } else if (ext == ".geojson" || ext == ".json") {
    drv = "GeoJSON";
  } else if (ext == ".gpkg") {
    drv = "GPKG";
  } else {
    throw_usage("unknown output format '" + ext + "' (.csv, .geojson or .gpkg)", {.file = path});
  }
  // Pass-through attributes, except those named like the columns written here.
  auto reserved = [&](const std::string& n) {
    return n == cols.id_field ||
           std::find(cols.numeric.begin(), cols.numeric.end(), n) != cols.numeric.end() ||
           std::find(cols.text.begin(), cols.text.end(), n) != cols.text.end();
  };
  std::vector<FieldDef> fields = {{cols.id_field, OFTString}};
  std::vector<std::size_t> pass;
  for (std::size_t a = 0; a < set.fields.size(); ++a) {
    if (!reserved(set.fields[a].name)) fields.push_back(set.fields[a]), pass.push_back(a);
  }
  for (const auto& c : cols.numeric) fields.push_back({c, OFTReal});
  for (const auto& c : cols.text) fields.push_back({c, OFTString});
  if (drv == "CSV") {
    // Plain CSV (RFC 4180 quoting, UTF-8, empty where undefined), written directly: GDAL's CSV
    // driver costs a third of a second per 20,000 rows.
    std::string out;
    for (std::size_t k = 0; k < fields.size(); ++k)
      out += (k ? "," : "") + csv_quote(fields[k].name);
    out += "\n";
    // Rows formatted in parallel chunks, joined in order.
    constexpr std::size_t kRows = 1024;
    const std::size_t np = set.parcels.size();
    std::vector<std::string> parts((np + kRows - 1) / kRows);
    parallel_for_n(parts.size(), [&](std::size_t c) {
      std::string& o = parts[c];
      auto num = [&o](double v) {
        o += ',';
        if (!std::isfinite(v)) return;
        char buf[40];
        const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 15);
        o.append(buf, r.ptr);
      };
      for (std::size_t i = c * kRows; i < std::min(np, (c + 1) * kRows); ++i) {
        o += csv_quote(set.parcels[i].id);
        for (std::size_t a : pass) o.append(",").append(csv_quote(set.parcels[i].attrs[a]));
        for (double v : cols.values[i]) num(v);
        if (!cols.text.empty()) {
          for (const auto& t : cols.text_values[i]) o.append(",").append(csv_quote(t));
        }
        o += "\n";
      }
    });
    std::size_t bytes = out.size();
    for (const auto& part : parts) bytes += part.size();
    out.reserve(bytes);
    for (const auto& part : parts) out += part;
    write_file_atomic(path, out);
    return;
  }
  VectorWriter out(path, drv);
  OGRLayer& layer = out.add_layer(cols.layer, crs, wkbMultiPolygon, fields);
  OGRFeatureDefn* defn = layer.GetLayerDefn();
  for (std::size_t i = 0; i < set.parcels.size(); ++i) {
    const Parcel& p = set.parcels[i];
    OGRFeature f(defn);
    int k = 0;
    f.SetField(k++, p.id.c_str());
    for (std::size_t a : pass) {
      if (!p.attrs[a].empty()) f.SetField(k, p.attrs[a].c_str());
      ++k;
    }
    for (double v : cols.values[i]) {
      if (std::isfinite(v)) {
        f.SetField(k, v);
      } else {
        f.SetFieldNull(k);
      }
      ++k;
    }
    if (!cols.text.empty()) {
      for (const auto& t : cols.text_values[i]) f.SetField(k++, t.c_str());
    }
    if (p.geom) f.SetGeometryDirectly(OGRGeometryFactory::forceToMultiPolygon(p.geom->clone()));
    out.write(layer, f);
  }
  out.commit();
}

void write_zonal(const std::string& path, const ParcelSet& set, const ZonalTable& table,
                 const Crs& crs) {
  ParcelColumns cols;
  cols.numeric = {"area_m2", "outside", "repaired"};
  cols.numeric.insert(cols.numeric.end(), table.columns.begin(), table.columns.end());
  cols.values.resize(set.parcels.size());
  for (std::size_t i = 0; i < set.parcels.size(); ++i) {
    const Parcel& p = set.parcels[i];
    cols.values[i] = {p.area_m2, p.outside ? 1.0 : 0.0, p.repaired ? 1.0 : 0.0};
    cols.values[i].insert(cols.values[i].end(), table.rows[i].begin(), table.rows[i].end());
  }
  write_parcels(path, set, cols, crs);
}

}  // namespace fw::vectors
