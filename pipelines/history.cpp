#include "pipelines/history.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <numeric>
#include <set>
#include <sstream>
#include <unordered_map>

#include "engine/atomic_file.hpp"
#include "engine/crs.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "pipelines/history_store.hpp"
#include "vectors/vector_writer.hpp"
#include "vectors/zonal.hpp"

namespace fw::pipelines::history {
namespace {

namespace fs = std::filesystem;

// Days from civil and back (proleptic Gregorian; H. Hinnant's algorithms).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::string fmt(double v, int digits = 2) {
  if (!std::isfinite(v)) return "";
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

// The area of a polygonal geometry (0 for anything else).
double area_of(const OGRGeometry* g) {
  if (!g) return 0;
  switch (wkbFlatten(g->getGeometryType())) {
    case wkbPolygon:
      return g->toPolygon()->get_Area();
    case wkbMultiPolygon:
      return g->toMultiPolygon()->get_Area();
    case wkbGeometryCollection:
      return g->toGeometryCollection()->get_Area();
    default:
      return 0;
  }
}

std::string csv_line(const std::vector<std::string>& v) {
  std::string line;
  for (std::size_t k = 0; k < v.size(); ++k) line += (k ? "," : "") + csv_quote(v[k]);
  return line + "\n";
}

const char* confidence_of(int consecutive) {
  return consecutive >= 3 ? "highest" : consecutive == 2 ? "high" : "low";
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string display_name(std::string s) {
  for (std::size_t at = s.find("password="); at != std::string::npos;
       at = s.find("password=", at + 1)) {
    std::size_t end = at + 9;
    while (end < s.size() && s[end] != ' ' && s[end] != '"') ++end;
    s.replace(at + 9, end - at - 9, "***");
  }
  return s;
}

int64_t parse_date(const std::string& text, const std::string& what) {
  int y = 0, m = 0, d = 0;
  char tail = 0;
  if (text.size() != 10 || std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 ||
      m < 1 || m > 12 || d < 1 || d > 31)
    throw_usage(what + ": expected a date YYYY-MM-DD, got '" + text + "'");
  const int64_t days = days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
  if (format_date(days) != text) throw_usage(what + ": there is no such day as '" + text + "'");
  return days;
}

std::string format_date(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  char b[48];
  std::snprintf(b, sizeof b, "%04lld-%02u-%02u", static_cast<long long>(y + (m <= 2)), m, d);
  return b;
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

std::string today_utc() {
  return format_date(static_cast<int64_t>(std::time(nullptr)) / 86400);
}

std::map<std::string, std::string> default_families() {
  return {{"construction", "built_up"}, {"bare_soil", "built_up"}};
}

void parse_family(const std::string& text, std::map<std::string, std::string>& family) {
  const auto colon = text.find(':');
  const std::string name = trim(text.substr(0, colon));
  if (colon == std::string::npos || name.empty())
    throw_usage("family '" + text + "': expected 'name: category|category'");
  std::stringstream ss(text.substr(colon + 1));
  std::string cat;
  int n = 0;
  while (std::getline(ss, cat, '|')) {
    cat = trim(cat);
    if (cat.empty()) continue;
    family[cat] = name;
    ++n;
  }
  if (n == 0) throw_usage("family '" + text + "': no category after the colon");
}

std::array<int, 3> parse_due_days(const std::string& text) {
  std::array<int, 3> d{};
  char tail = 0;
  if (std::sscanf(text.c_str(), "%d , %d , %d %c", &d[0], &d[1], &d[2], &tail) != 3 || d[0] < 0 ||
      d[1] < 0 || d[2] < 0)
    throw_usage("due days: expected three day counts for P1, P2, P3 (e.g. 7,30,90), got '" + text +
                "'");
  return d;
}

std::vector<Observation> track(
    const Settings& s, int64_t run_id, std::vector<Track>& tracks,
    const std::vector<CurrentPatch>& patches,
    const std::function<std::vector<double>(const std::vector<const OGRGeometry*>&)>& observed) {
  const int64_t today = parse_date(s.run_date, "history.run_date");
  auto family = [&](const std::string& cat) {
    const auto it = s.family.find(cat);
    return it == s.family.end() ? cat : it->second;
  };
  auto due_days = [&](int prio) {
    return s.due_days[static_cast<std::size_t>(std::clamp(prio, 1, 3) - 1)];
  };

  // Candidate pairs: a uniform grid over the cases' envelopes.
  const std::size_t nt = tracks.size(), np = patches.size();
  std::vector<OGREnvelope> te(nt), pe(np);
  std::vector<double> tarea(nt, 0), parea(np, 0);
  std::vector<double> widths;
  for (std::size_t i = 0; i < nt; ++i) {
    if (!tracks[i].geom) continue;
    tracks[i].geom->getEnvelope(&te[i]);
    tarea[i] = area_of(tracks[i].geom.get());
    widths.push_back(std::max(te[i].MaxX - te[i].MinX, te[i].MaxY - te[i].MinY));
  }
  for (std::size_t j = 0; j < np; ++j) {
    patches[j].geom->getEnvelope(&pe[j]);
    parea[j] = area_of(patches[j].geom);
  }
  double cell = 100;
  if (!widths.empty()) {
    std::nth_element(widths.begin(), widths.begin() + static_cast<long>(widths.size() / 2),
                     widths.end());
    cell = std::max(cell, 4 * widths[widths.size() / 2]);
  }
  std::unordered_map<int64_t, std::vector<std::size_t>> buckets;
  auto key = [](int64_t cx, int64_t cy) { return cx * 2654435761ll ^ (cy << 20) ^ cy; };
  for (std::size_t i = 0; i < nt; ++i) {
    if (!tracks[i].geom) continue;
    for (int64_t cx = static_cast<int64_t>(std::floor(te[i].MinX / cell));
         cx <= static_cast<int64_t>(std::floor(te[i].MaxX / cell)); ++cx)
      for (int64_t cy = static_cast<int64_t>(std::floor(te[i].MinY / cell));
           cy <= static_cast<int64_t>(std::floor(te[i].MaxY / cell)); ++cy)
        buckets[key(cx, cy)].push_back(i);
  }
  struct Pair {
    std::size_t t, p;
    double inter, iou;
  };
  std::vector<std::vector<Pair>> per_patch(np);
  parallel_for_n(np, [&](std::size_t j) {
    std::set<std::size_t> seen;
    const std::string fam = family(patches[j].category);
    for (int64_t cx = static_cast<int64_t>(std::floor(pe[j].MinX / cell));
         cx <= static_cast<int64_t>(std::floor(pe[j].MaxX / cell)); ++cx)
      for (int64_t cy = static_cast<int64_t>(std::floor(pe[j].MinY / cell));
           cy <= static_cast<int64_t>(std::floor(pe[j].MaxY / cell)); ++cy) {
        const auto it = buckets.find(key(cx, cy));
        if (it == buckets.end()) continue;
        for (std::size_t i : it->second) {
          if (!te[i].Intersects(pe[j]) || !seen.insert(i).second) continue;
          if (tracks[i].family != fam) continue;
          std::unique_ptr<OGRGeometry> g(tracks[i].geom->Intersection(patches[j].geom));
          if (!g || g->IsEmpty()) continue;
          const double a = area_of(g.get());
          if (a <= 0) continue;
          per_patch[j].push_back({i, j, a, a / (tarea[i] + parea[j] - a)});
        }
      }
  });
  // One to one, best overlap first (ties: the earlier case, then the earlier patch).
  std::vector<Pair> pairs;
  for (const auto& v : per_patch) {
    for (const Pair& q : v) {
      if (q.iou >= s.iou || (tarea[q.t] > 0 && q.inter / tarea[q.t] >= s.contained))
        pairs.push_back(q);
    }
  }
  std::sort(pairs.begin(), pairs.end(), [&](const Pair& a, const Pair& b) {
    if (a.iou != b.iou) return a.iou > b.iou;
    if (a.t != b.t) return tracks[a.t].track_id < tracks[b.t].track_id;
    return a.p < b.p;
  });
  std::vector<long> match_of_track(nt, -1), match_of_patch(np, -1);
  for (const Pair& q : pairs) {
    if (match_of_track[q.t] >= 0 || match_of_patch[q.p] >= 0) continue;
    match_of_track[q.t] = static_cast<long>(q.p);
    match_of_patch[q.p] = static_cast<long>(q.t);
  }

  std::vector<Observation> obs;
  auto observe = [&](const Track& t, const std::string& status, double prev_area,
                     double observed_fraction) {
    Observation o;
    o.track_id = t.track_id;
    o.patch_id = status == "resolved" || status == "unobserved" || status == "merged"
                     ? std::string()
                     : t.patch_id;
    o.category = t.category;
    o.status = status;
    o.confidence = t.confidence;
    o.first_seen = t.first_seen;
    o.last_seen = t.last_seen;
    o.due_date = t.due_date;
    o.priority = t.priority;
    o.times_seen = t.times_seen;
    o.days_open = t.days_open;
    o.overdue = t.overdue;
    o.alert = !t.suppressed && t.open;
    o.area_m2 = t.area_m2;
    o.previous_area_m2 = prev_area;
    o.observed_fraction = observed_fraction;
    o.verification_result = t.verification_result;
    o.legal = t.legal;
    obs.push_back(std::move(o));
  };
  auto timeliness = [&](Track& t) {
    t.days_open = static_cast<int>(today - parse_date(t.first_seen));
    t.overdue = t.open && !t.suppressed && !t.due_date.empty() && today > parse_date(t.due_date);
  };

  // Matched cases.
  for (std::size_t i = 0; i < nt; ++i) {
    if (match_of_track[i] < 0) continue;
    Track& t = tracks[i];
    const CurrentPatch& p = patches[static_cast<std::size_t>(match_of_track[i])];
    const double prev = t.area_m2;
    t.patch_id = p.patch_id;
    t.category = p.category;
    t.township = p.township;
    t.village = p.village;
    t.area_m2 = p.area_m2;
    t.last_seen = s.run_date;
    t.last_run = run_id;
    t.geom.reset(OGRGeometryFactory::forceToMultiPolygon(p.geom->clone()));
    std::string status;
    if (t.suppressed) {
      status = "verified";
    } else {
      ++t.times_seen;
      ++t.consecutive;
      t.confidence = confidence_of(t.consecutive);
      status = p.area_m2 > prev * (1 + s.expanded) ? "expanded" : "persisting";
      // A case that became more urgent is due sooner; never later.
      const std::string due = format_date(parse_date(t.first_seen) + due_days(p.priority));
      if (p.priority < t.priority && due < t.due_date) t.due_date = due;
      t.priority = std::clamp(p.priority, 1, 3);
    }
    t.status = status;
    timeliness(t);
    observe(t, status, prev, 1.0);
  }
  // Cases not detected this run: seen and gone, merged into a neighbour, or hidden.
  std::vector<std::size_t> unmatched;
  for (std::size_t i = 0; i < nt; ++i) {
    if (match_of_track[i] < 0 && tracks[i].open && !tracks[i].suppressed && tracks[i].geom)
      unmatched.push_back(i);
  }
  std::vector<double> covered(nt, 0);
  for (const auto& v : per_patch) {
    for (const Pair& q : v) covered[q.t] += q.inter;
  }
  std::vector<const OGRGeometry*> geoms;
  for (std::size_t i : unmatched) geoms.push_back(tracks[i].geom.get());
  const std::vector<double> seen = geoms.empty() ? std::vector<double>() : observed(geoms);
  for (std::size_t k = 0; k < unmatched.size(); ++k) {
    Track& t = tracks[unmatched[k]];
    const double f = seen[k];
    std::string status;
    if (tarea[unmatched[k]] > 0 && covered[unmatched[k]] / tarea[unmatched[k]] >= s.contained) {
      status = "merged";
      t.open = false;
    } else if (f >= s.observed) {
      status = "resolved";
      t.open = false;
    } else {
      status = "unobserved";
    }
    t.status = status;
    t.last_run = run_id;
    timeliness(t);
    observe(t, status, t.area_m2, f);
  }
  // New cases.
  for (std::size_t j = 0; j < np; ++j) {
    if (match_of_patch[j] >= 0) continue;
    const CurrentPatch& p = patches[j];
    Track t;
    t.track_id = "T" + s.run_date.substr(0, 4) + s.run_date.substr(5, 2) + s.run_date.substr(8, 2) +
                 "-" + p.patch_id;
    t.patch_id = p.patch_id;
    t.category = p.category;
    t.family = family(p.category);
    t.township = p.township;
    t.village = p.village;
    t.priority = std::clamp(p.priority, 1, 3);
    t.area_m2 = t.first_area_m2 = p.area_m2;
    t.first_seen = t.last_seen = s.run_date;
    t.due_date = format_date(today + due_days(t.priority));
    t.times_seen = t.consecutive = 1;
    t.confidence = confidence_of(1);
    t.status = "new";
    t.last_run = run_id;
    t.geom.reset(OGRGeometryFactory::forceToMultiPolygon(p.geom->clone()));
    timeliness(t);
    observe(t, "new", 0, 1.0);
    tracks.push_back(std::move(t));
  }
  // Open cases not touched otherwise still age.
  for (std::size_t i = 0; i < nt; ++i) {
    Track& t = tracks[i];
    if (t.last_run != run_id && t.open && !t.suppressed) timeliness(t);
  }
  std::sort(obs.begin(), obs.end(),
            [](const Observation& a, const Observation& b) { return a.track_id < b.track_id; });
  return obs;
}

namespace {

Counts count_of(const std::vector<Observation>& obs, const std::vector<Track>& tracks) {
  Counts c;
  for (const auto& o : obs) {
    if (o.status == "new") ++c.new_cases;
    if (o.status == "persisting") ++c.persisting;
    if (o.status == "expanded") ++c.expanded;
    if (o.status == "resolved") ++c.resolved;
    if (o.status == "unobserved") ++c.unobserved;
    if (o.status == "merged") ++c.merged;
    if (o.status == "verified") ++c.verified;
  }
  for (const auto& t : tracks) {
    if (t.open && !t.suppressed) {
      ++c.open;
      c.overdue += t.overdue;
    }
  }
  return c;
}

// The cloud-free share of each geometry (in `from` CRS) on the change map.
std::vector<double> observed_share(const std::vector<const OGRGeometry*>& geoms, const Crs& from,
                                   const std::string& change_class, const Grid& grid,
                                   const SchedulerOptions& so) {
  std::vector<double> out(geoms.size(), 0.0);
  vectors::ParcelSet set;
  std::vector<std::size_t> index;
  const OGRSpatialReference* dst = grid.crs().ogr();
  std::unique_ptr<OGRCoordinateTransformation> ct;
  if (from.ogr() && dst && !from.same_as(grid.crs()))
    ct.reset(OGRCreateCoordinateTransformation(from.ogr(), dst));
  const Extent ext = grid.extent();
  for (std::size_t k = 0; k < geoms.size(); ++k) {
    GeometryPtr g(geoms[k]->clone());
    if (ct && g->transform(ct.get()) != OGRERR_NONE) continue;
    OGREnvelope e;
    g->getEnvelope(&e);
    if (e.MaxX <= ext.xmin || e.MinX >= ext.xmax || e.MaxY <= ext.ymin || e.MinY >= ext.ymax)
      continue;
    vectors::Parcel p;
    p.id = std::to_string(k);
    p.area_m2 = area_of(g.get());
    p.geom = std::move(g);
    set.parcels.push_back(std::move(p));
    index.push_back(k);
  }
  if (set.parcels.empty()) return out;
  vectors::ZonalOptions zo;
  zo.stats = {"count"};
  const auto table = vectors::zonal_stats(set, {{change_class, 1, "cls", {"count"}}}, zo, so);
  const double px = grid.transform().pixel_area();
  for (std::size_t r = 0; r < index.size(); ++r) {
    const double n = table.rows[r][0];
    const double a = set.parcels[r].area_m2;
    out[index[r]] = std::isfinite(n) && a > 0 ? std::min(1.0, n * px / a) : 0.0;
  }
  return out;
}

}  // namespace

Result record_run(const Settings& s, const RunInput& in, const SchedulerOptions& so) {
  Result res;
  res.store = display_name(s.store);
  res.run_date = s.run_date;
  parse_date(s.run_date, "history.run_date");
  const vectors::PatchSet& ps = *in.patches;
  auto st = Store::open(s.store, ps.grid.crs());
  auto index = [&] {
    res.by_patch.clear();
    for (std::size_t k = 0; k < res.observations.size(); ++k) {
      if (!res.observations[k].patch_id.empty()) res.by_patch[res.observations[k].patch_id] = k;
    }
  };
  if (auto done = st->find_run(in.run_key)) {
    // This very run is in the store already (a rerun after a failure, or --force): read back.
    res.replayed = true;
    res.run_id = done->run_id;
    res.run_date = done->run_date;
    res.observations = st->load_observations(done->run_id);
    res.parcels = st->load_parcels(done->run_id);
    res.counts = done->counts;
    index();
    log::info("history: this run is recorded already; its outcome is read back",
              {{"store", display_name(s.store)}, {"run", std::to_string(done->run_id)}});
    return res;
  }
  const auto last = st->last_run();
  if (last && parse_date(s.run_date) <= parse_date(last->run_date))
    throw_usage("history.run_date " + s.run_date + " is not after the store's last run (" +
                    last->run_date + ", run " + std::to_string(last->run_id) +
                    "): the history moves forward only; give the later date of this run, or "
                    "another store",
                {.file = display_name(s.store)});
  res.run_id = last ? last->run_id + 1 : 1;

  // This run's patches in the store's CRS.
  std::vector<GeometryPtr> geoms;
  std::vector<CurrentPatch> cur;
  std::unique_ptr<OGRCoordinateTransformation> ct;
  if (!st->crs().same_as(ps.grid.crs()))
    ct.reset(OGRCreateCoordinateTransformation(ps.grid.crs().ogr(), st->crs().ogr()));
  for (const auto& p : ps.patches) {
    GeometryPtr g(OGRGeometryFactory::forceToMultiPolygon(p.geom->clone()));
    if (ct && g->transform(ct.get()) != OGRERR_NONE)
      throw_input("cannot transform patch " + p.id + " into the history store's CRS",
                  {.file = display_name(s.store)});
    CurrentPatch c;
    c.patch_id = p.id;
    c.category = p.category;
    c.township = p.township;
    c.village = p.village;
    c.priority = p.priority;
    c.area_m2 = p.area_m2;
    c.geom = g.get();
    geoms.push_back(std::move(g));
    cur.push_back(std::move(c));
  }
  auto t0 = std::chrono::steady_clock::now();
  auto lap = [&t0](const char* what) {
    const auto t1 = std::chrono::steady_clock::now();
    log::debug("history timing",
               {{"step", what},
                {"seconds", std::to_string(std::chrono::duration<double>(t1 - t0).count())}});
    t0 = t1;
  };
  std::vector<Track> tracks = st->load_tracks();
  lap("load");
  res.observations = track(s, res.run_id, tracks, cur, [&](const auto& gs) {
    lap("match");
    auto v = observed_share(gs, st->crs(), in.change_class, ps.grid, so);
    lap("observed");
    return v;
  });
  lap("track");
  // Only what changed goes back.
  std::vector<Track> dirty;
  for (auto& t : tracks) {
    if (t.fid < 0 || t.last_run == res.run_id || (t.open && !t.suppressed))
      dirty.push_back(std::move(t));
  }
  res.counts = count_of(res.observations, dirty);
  // The parcels' series.
  if (in.parcels && in.indicators) {
    const auto prev =
        last ? st->blocked_runs(last->run_id) : std::unordered_map<std::string, int>{};
    const auto& cols = in.indicators->columns;
    auto col = [&](const char* name) {
      return static_cast<std::size_t>(std::find(cols.begin(), cols.end(), name) - cols.begin());
    };
    const std::size_t v0 = col("valid_fraction_t0"), v1 = col("valid_fraction_t1"),
                      n0 = col("ndvi_mean_t0"), n1 = col("ndvi_mean_t1"), dn = col("ndvi_delta"),
                      en = col("encroach_area_m2");
    auto at = [&](const std::vector<double>& row, std::size_t c) {
      return c < row.size() ? row[c] : std::numeric_limits<double>::quiet_NaN();
    };
    for (std::size_t i = 0; i < in.parcels->parcels.size(); ++i) {
      const auto& row = in.indicators->rows[i];
      ParcelRow p;
      p.parcel_id = in.parcels->parcels[i].id;
      const double a = at(row, v0), b = at(row, v1);
      p.valid_fraction = std::isfinite(a) && std::isfinite(b) ? std::min(a, b)
                         : std::isfinite(b)                   ? b
                                                              : 0.0;
      p.ndvi_t0 = at(row, n0);
      p.ndvi_t1 = at(row, n1);
      p.ndvi_delta = at(row, dn);
      p.encroach_area_m2 = at(row, en);
      p.alert = in.indicators->alert[i];
      p.cloud_blocked = p.valid_fraction < 0.5;
      const auto it = prev.find(p.parcel_id);
      p.blocked_runs = p.cloud_blocked ? (it == prev.end() ? 0 : it->second) + 1 : 0;
      res.parcels.push_back(std::move(p));
    }
  }
  lap("parcels");
  RunRow run;
  run.run_id = res.run_id;
  run.run_key = in.run_key;
  run.run_date = s.run_date;
  run.pipeline = in.pipeline;
  run.counts = res.counts;
  st->write_run(run, dirty, res.observations, res.parcels);
  lap("write");
  index();
  log::info("history recorded",
            {{"store", display_name(s.store)},
             {"run", std::to_string(res.run_id)},
             {"new", std::to_string(res.counts.new_cases)},
             {"persisting", std::to_string(res.counts.persisting + res.counts.expanded)},
             {"resolved", std::to_string(res.counts.resolved)},
             {"unobserved", std::to_string(res.counts.unobserved)},
             {"overdue", std::to_string(res.counts.overdue)}});
  return res;
}

const std::vector<FieldDef>& patch_fields() {
  static const std::vector<FieldDef> f = {{"track_id", OFTString},
                                          {"status", OFTString},
                                          {"first_seen", OFTString},
                                          {"last_seen", OFTString},
                                          {"times_seen", OFTInteger},
                                          {"confidence", OFTString},
                                          {"due_date", OFTString},
                                          {"overdue", OFTInteger},
                                          {"days_open", OFTInteger},
                                          {"alert", OFTInteger},
                                          {"verification_result", OFTString},
                                          {"legal", OFTString},
                                          {"verified_by", OFTString},
                                          {"verified_at", OFTString},
                                          {"remarks", OFTString}};
  return f;
}

namespace {

// Every column of a case's outcome, in history.csv's order.
std::vector<std::pair<std::string, std::string>> observation_row(const Observation& o) {
  return {{"track_id", o.track_id},
          {"patch_id", o.patch_id},
          {"category", o.category},
          {"priority", "P" + std::to_string(o.priority)},
          {"status", o.status},
          {"first_seen", o.first_seen},
          {"last_seen", o.last_seen},
          {"times_seen", std::to_string(o.times_seen)},
          {"confidence", o.confidence},
          {"due_date", o.due_date},
          {"overdue", o.overdue ? "1" : "0"},
          {"days_open", std::to_string(o.days_open)},
          {"alert", o.alert ? "1" : "0"},
          {"area_m2", fmt(o.area_m2)},
          {"previous_area_m2", fmt(o.previous_area_m2)},
          {"observed_fraction", fmt(o.observed_fraction)},
          {"verification_result", o.verification_result},
          {"legal", o.legal}};
}

}  // namespace

std::vector<std::string> patch_values(const Result& r, const std::string& patch_id) {
  std::vector<std::string> v(patch_fields().size());
  const auto it = r.by_patch.find(patch_id);
  if (it == r.by_patch.end()) return v;
  const auto row = observation_row(r.observations[it->second]);
  for (std::size_t k = 0; k < v.size(); ++k) {
    for (const auto& [name, value] : row) {
      if (name == patch_fields()[k].name) v[k] = value;  // the inspectors' columns stay empty
    }
  }
  return v;
}

std::string history_csv(const Result& r) {
  std::vector<std::string> names;
  for (const auto& [name, value] : observation_row(Observation{})) names.push_back(name);
  std::string csv = csv_line(names);
  for (const auto& o : r.observations) {
    std::vector<std::string> values;
    for (const auto& [name, value] : observation_row(o)) values.push_back(value);
    csv += csv_line(values);
  }
  return csv;
}

std::string parcel_history_csv(const Result& r) {
  std::string csv =
      csv_line({"parcel_id", "run_date", "valid_fraction", "cloud_blocked", "blocked_runs"});
  for (const auto& p : r.parcels) {
    csv += csv_line({p.parcel_id, r.run_date, fmt(p.valid_fraction), p.cloud_blocked ? "1" : "0",
                     std::to_string(p.blocked_runs)});
  }
  return csv;
}

std::string runs_csv(const std::string& store) {
  auto st = Store::open_existing(store, false);
  std::string csv = csv_line({"run_id", "run_date", "new", "persisting", "expanded", "resolved",
                              "unobserved", "merged", "verified", "open", "overdue", "finished"});
  for (const auto& r : st->load_runs()) {
    const Counts& c = r.counts;
    csv += csv_line({std::to_string(r.run_id), r.run_date, std::to_string(c.new_cases),
                     std::to_string(c.persisting), std::to_string(c.expanded),
                     std::to_string(c.resolved), std::to_string(c.unobserved),
                     std::to_string(c.merged), std::to_string(c.verified), std::to_string(c.open),
                     std::to_string(c.overdue), r.finished});
  }
  return csv;
}

std::string cases_csv(const std::string& store, bool all_cases) {
  auto st = Store::open_existing(store, false);
  std::string csv =
      csv_line({"track_id", "category", "priority", "status", "open", "first_seen", "last_seen",
                "times_seen", "confidence", "due_date", "overdue", "days_open", "area_m2",
                "township", "village", "verification_result", "legal"});
  for (const auto& t : st->load_tracks(all_cases)) {
    if (!all_cases && (!t.open || t.suppressed)) continue;
    csv += csv_line({t.track_id, t.category, "P" + std::to_string(t.priority), t.status,
                     t.open && !t.suppressed ? "1" : "0", t.first_seen, t.last_seen,
                     std::to_string(t.times_seen), t.confidence, t.due_date, t.overdue ? "1" : "0",
                     std::to_string(t.days_open), fmt(t.area_m2), t.township, t.village,
                     t.verification_result, t.legal});
  }
  return csv;
}

std::string parcel_series_csv(const std::string& store, const std::string& parcel_id) {
  auto st = Store::open_existing(store, false);
  std::map<int64_t, std::string> dates;
  for (const auto& r : st->load_runs()) dates[r.run_id] = r.run_date;
  const auto series = st->parcel_series(parcel_id);
  if (series.empty())
    throw_input("no parcel '" + parcel_id + "' in the history store's runs",
                {.file = display_name(store)});
  std::string csv =
      csv_line({"run_id", "run_date", "valid_fraction", "ndvi_t0", "ndvi_t1", "ndvi_delta",
                "encroach_area_m2", "alert", "cloud_blocked", "blocked_runs"});
  for (const auto& [run, p] : series) {
    csv += csv_line({std::to_string(run), dates[run], fmt(p.valid_fraction, 3), fmt(p.ndvi_t0, 4),
                     fmt(p.ndvi_t1, 4), fmt(p.ndvi_delta, 4), fmt(p.encroach_area_m2),
                     vectors::alert_name(p.alert), p.cloud_blocked ? "1" : "0",
                     std::to_string(p.blocked_runs)});
  }
  return csv;
}

// ---------------------------------------------------------------------------------------------
// Verification.

ExportReport export_verification(const std::string& store, const std::string& path,
                                 bool all_cases) {
  auto st = Store::open_existing(store, false);
  std::vector<Track> tracks = st->load_tracks(all_cases);
  if (!all_cases) {
    tracks.erase(std::remove_if(tracks.begin(), tracks.end(),
                                [](const Track& t) { return !t.open || t.suppressed; }),
                 tracks.end());
  }
  std::string ext = lower(fs::path(path).extension().string());
  const std::vector<FieldDef> fields = {{"track_id", OFTString},
                                        {"category", OFTString},
                                        {"priority", OFTString},
                                        {"status", OFTString},
                                        {"first_seen", OFTString},
                                        {"last_seen", OFTString},
                                        {"confidence", OFTString},
                                        {"due_date", OFTString},
                                        {"overdue", OFTInteger},
                                        {"area_m2", OFTReal},
                                        {"township", OFTString},
                                        {"village", OFTString},
                                        {"verification_result", OFTString},
                                        {"legal", OFTString},
                                        {"verified_by", OFTString},
                                        {"verified_at", OFTString},
                                        {"remarks", OFTString}};
  auto values = [](const Track& t) {
    return std::vector<std::string>{t.track_id,
                                    t.category,
                                    "P" + std::to_string(t.priority),
                                    t.status,
                                    t.first_seen,
                                    t.last_seen,
                                    t.confidence,
                                    t.due_date,
                                    t.overdue ? "1" : "0",
                                    fmt(t.area_m2),
                                    t.township,
                                    t.village,
                                    t.verification_result,
                                    t.legal,
                                    t.verified_by,
                                    t.verified_at,
                                    t.remarks};
  };
  if (ext == ".csv") {
    std::vector<std::string> names;
    for (const auto& f : fields) names.push_back(f.name);
    std::string csv = csv_line(names);
    for (const auto& t : tracks) csv += csv_line(values(t));
    write_file_atomic(path, csv);
  } else {
    const std::string drv = ext == ".gpkg"      ? "GPKG"
                            : ext == ".geojson" ? "GeoJSON"
                            : ext == ".json"    ? "GeoJSON"
                            : ext == ".shp"     ? "ESRI Shapefile"
                                                : "";
    if (drv.empty())
      throw_usage("verification export: write .gpkg, .geojson, .csv or .shp, not '" + ext + "'",
                  {.file = path});
    VectorWriter w(path, drv);
    OGRLayer& layer = w.add_layer("verification", st->crs(), wkbMultiPolygon, fields);
    for (const auto& t : tracks) {
      OGRFeature f(layer.GetLayerDefn());
      // Empty text as "", not null: GeoJSON keeps the inspectors' columns.
      set_fields(f, fields, values(t), true);
      if (t.geom) f.SetGeometry(t.geom.get());
      w.write(layer, f);
    }
    w.commit();
  }
  return {static_cast<int64_t>(tracks.size())};
}

namespace {

// Accepted spellings, English and Chinese.
std::string norm_result(const std::string& v) {
  const std::string s = lower(trim(v));
  if (s.empty()) return "";
  if (s == "confirmed" || s == "true_change" || s == "属实" || s == "确认") return "confirmed";
  if (s == "false_alarm" || s == "false" || s == "不属实" || s == "误报" || s == "伪变化")
    return "false_alarm";
  if (s == "pending" || s == "待核实" || s == "待查") return "pending";
  return "?";
}
std::string norm_legal(const std::string& v) {
  const std::string s = lower(trim(v));
  if (s.empty()) return "";
  if (s == "yes" || s == "true" || s == "1" || s == "legal" || s == "合法") return "yes";
  if (s == "no" || s == "false" || s == "0" || s == "illegal" || s == "违法" || s == "不合法")
    return "no";
  if (s == "unknown" || s == "未知" || s == "待定") return "unknown";
  return "?";
}

}  // namespace

ImportReport import_verification(const std::string& store, const std::string& path) {
  DatasetPtr ds = open_vector(path);
  if (ds->GetLayerCount() < 1) throw_input("no layer to read", {.file = path});
  OGRLayer* l = ds->GetLayer(0);
  const std::string lname = l->GetName();
  OGRFeatureDefn* defn = l->GetLayerDefn();
  if (defn->GetFieldIndex("track_id") < 0)
    throw_input(
        "no track_id column: import the file `farmwatch verify export` wrote, with its "
        "columns kept",
        {.file = path, .layer = lname, .field = "track_id"});
  auto st = Store::open_existing(store, true);
  std::vector<Track> all = st->load_tracks(true);
  std::unordered_map<std::string, std::size_t> by_id;
  for (std::size_t i = 0; i < all.size(); ++i) by_id[all[i].track_id] = i;

  ImportReport rep;
  std::vector<std::string> problems;
  std::vector<Store::Verification> rows;
  std::set<std::size_t> touched;
  int64_t n = 0;
  auto get = [&](OGRFeature& f, const char* name) {
    const int i = f.GetFieldIndex(name);
    return i >= 0 && f.IsFieldSetAndNotNull(i) ? trim(f.GetFieldAsString(i)) : std::string();
  };
  l->ResetReading();
  for (auto& f : *l) {
    ++n;
    const std::string id = get(*f, "track_id");
    const std::string where = "row " + std::to_string(n) + (id.empty() ? "" : " (" + id + ")");
    Store::Verification v;
    v.track_id = id;
    const std::string r = get(*f, "verification_result"), lg = get(*f, "legal");
    v.result = norm_result(r);
    v.legal = norm_legal(lg);
    v.verified_by = get(*f, "verified_by");
    v.verified_at = get(*f, "verified_at");
    v.remarks = get(*f, "remarks");
    if (v.result.empty() && v.legal.empty() && v.verified_by.empty() && v.verified_at.empty() &&
        v.remarks.empty())
      continue;  // not filled in
    ++rep.rows;
    if (id.empty()) {
      problems.push_back(where + ": track_id is empty");
    } else if (!by_id.count(id)) {
      problems.push_back(where + ": unknown track_id '" + id + "' (not in " + display_name(store) +
                         ")");
    } else if (!touched.insert(by_id[id]).second) {
      problems.push_back(where + ": track_id '" + id + "' appears twice");
    }
    if (v.result == "?")
      problems.push_back(where + ": verification_result '" + r +
                         "': expected confirmed, false_alarm or pending (属实, 不属实, 待核实)");
    if (v.legal == "?")
      problems.push_back(where + ": legal '" + lg + "': expected yes, no or unknown (合法, 违法)");
    if (!v.verified_at.empty()) {
      if (v.verified_at.size() > 10 && v.verified_at[10] == 'T') v.verified_at.resize(10);
      for (char& c : v.verified_at) c = c == '/' || c == '.' ? '-' : c;
      try {
        parse_date(v.verified_at, "verified_at");
      } catch (const Error& e) {
        problems.push_back(where + ": " + e.message());
      }
    }
    rows.push_back(std::move(v));
  }
  if (!problems.empty()) {
    std::string msg = std::to_string(problems.size()) + " problem(s); nothing was imported:";
    for (std::size_t k = 0; k < problems.size() && k < 50; ++k) msg += "\n  " + problems[k];
    if (problems.size() > 50)
      msg += "\n  ... and " + std::to_string(problems.size() - 50) + " more";
    throw_input(msg, {.file = path, .layer = lname});
  }
  std::vector<Track> changed;
  for (const auto& v : rows) {
    Track& t = all[by_id[v.track_id]];
    const bool before_closed = t.suppressed;
    t.verification_result = v.result;
    t.legal = v.legal;
    t.verified_by = v.verified_by;
    t.verified_at = v.verified_at;
    t.remarks = v.remarks;
    // Legal, or not a change at all: never alerted again; otherwise the case goes on.
    t.suppressed = v.result == "false_alarm" || v.legal == "yes";
    if (t.suppressed) {
      t.overdue = false;
      t.status = "verified";
      if (!before_closed) ++rep.closed;
    } else if (before_closed) {
      t.status = "persisting";
    }
    changed.push_back(std::move(t));
  }
  st->write_verifications(rows, fs::absolute(path).string(), changed);
  rep.applied = static_cast<int64_t>(rows.size());
  rep.unchanged = n - rep.applied;
  return rep;
}

}  // namespace fw::pipelines::history
