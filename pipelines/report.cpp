#include "pipelines/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/versions.hpp"
#include "pipelines/run.hpp"
#include "rasters/ecology.hpp"
#include "vectors/ecozones.hpp"

namespace fw::pipelines {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string html(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&')
      o += "&amp;";
    else if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '"')
      o += "&quot;";
    else
      o += c;
  }
  return o;
}

std::string num(double v, int digits = 1) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

// The change map at most 1200 pixels across, in its palette, with the patches outlined in black.
void write_quicklook(RunContext& x, const std::string& path) {
  DatasetPtr ds = open_raster(x.dir + "/change_class.tif");
  GDALRasterBand* b = ds->GetRasterBand(1);
  const int W = ds->GetRasterXSize(), H = ds->GetRasterYSize();
  const double f = std::max(1.0, std::max(W, H) / 1200.0);
  const int w = std::max(1, static_cast<int>(W / f)), h = std::max(1, static_cast<int>(H / f));
  std::vector<uint8_t> cls(static_cast<std::size_t>(w) * h);
  GDALRasterIOExtraArg extra;
  INIT_RASTERIO_EXTRA_ARG(extra);
  extra.eResampleAlg = GRIORA_Mode;
  if (b->RasterIO(GF_Read, 0, 0, W, H, cls.data(), w, h, GDT_Byte, 0, 0, &extra) != CE_None)
    throw_input("cannot read the change map", {.file = x.dir + "/change_class.tif"});
  const GDALColorTable* ct = b->GetColorTable();
  std::vector<uint8_t> rgb(3 * cls.size());
  for (std::size_t i = 0; i < cls.size(); ++i) {
    uint8_t r = 255, g = 255, bl = 255;
    if (ct && cls[i] < ct->GetColorEntryCount() && cls[i] != 0) {
      const GDALColorEntry* e = ct->GetColorEntry(cls[i]);
      r = static_cast<uint8_t>(e->c1), g = static_cast<uint8_t>(e->c2),
      bl = static_cast<uint8_t>(e->c3);
      if (cls[i] == 255) r = g = bl = 200;  // no data: grey
    }
    rgb[3 * i] = r, rgb[3 * i + 1] = g, rgb[3 * i + 2] = bl;
  }
  if (x.patches) {
    auto plot = [&](int px, int py) {
      if (px < 0 || py < 0 || px >= w || py >= h) return;
      const auto k = 3 * (static_cast<std::size_t>(py) * w + px);
      rgb[k] = rgb[k + 1] = rgb[k + 2] = 0;
    };
    for (const auto& p : x.patches->set.patches) {
      for (const auto& ring :
           vectors::outline_rings(*p.geom, x.grid, Window{0, 0, x.grid.width(), x.grid.height()})) {
        for (std::size_t k = 0; k + 1 < ring.size(); ++k) {
          const double x0 = ring[k].first / f, y0 = ring[k].second / f, x1 = ring[k + 1].first / f,
                       y1 = ring[k + 1].second / f;
          const int n = 1 + static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0)));
          for (int s = 0; s <= n; ++s) {
            const double t = static_cast<double>(s) / n;
            plot(static_cast<int>(x0 + t * (x1 - x0)), static_cast<int>(y0 + t * (y1 - y0)));
          }
        }
      }
    }
  }
  DatasetPtr mem(driver("MEM").Create("", w, h, 3, GDT_Byte, nullptr));
  for (int k = 0; k < 3; ++k) {
    if (mem->GetRasterBand(k + 1)->RasterIO(GF_Write, 0, 0, w, h, rgb.data() + k, w, h, GDT_Byte, 3,
                                            3 * w, nullptr) != CE_None)
      throw_internal("quick-look buffer");
  }
  const std::string vsi =
      "/vsimem/fw-quicklook-" + std::to_string(reinterpret_cast<uintptr_t>(&x)) + ".png";
  DatasetPtr png(
      driver("PNG").CreateCopy(vsi.c_str(), mem.get(), FALSE, nullptr, nullptr, nullptr));
  if (!png) throw_output("cannot encode the quick-look PNG", {.file = path});
  png.reset();
  vsi_l_offset len = 0;
  GByte* data = VSIGetMemFileBuffer(vsi.c_str(), &len, TRUE);
  std::string bytes(reinterpret_cast<const char*>(data), static_cast<std::size_t>(len));
  CPLFree(data);
  write_file_atomic(path, bytes);
}

}  // namespace

std::string base64(const std::string& data) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(data[i]) << 16) |
                       (static_cast<uint8_t>(data[i + 1]) << 8) | static_cast<uint8_t>(data[i + 2]);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += t[v & 63];
  }
  if (i + 1 == data.size()) {
    const uint32_t v = static_cast<uint8_t>(data[i]) << 16;
    out += t[v >> 18], out += t[(v >> 12) & 63], out += "==";
  } else if (i + 2 == data.size()) {
    const uint32_t v =
        (static_cast<uint8_t>(data[i]) << 16) | (static_cast<uint8_t>(data[i + 1]) << 8);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += '=';
  }
  return out;
}

// The ecological zones: grade distributions at both dates, degraded zones first.
static void zone_section(std::ostringstream& o, const RunContext& x) {
  if (!x.ecology) return;
  const EcologyRunResult& e = *x.ecology;
  const auto& names = rasters::rsei_grade_names();
  o << "<h2>Ecological quality</h2>\n<p>RSEI (" << html(e.eco.heat) << ", "
    << (e.eco.mode == rasters::RseiMode::kJoint ? "both dates normalised together" : "per date")
    << "): first component's share of variance";
  for (const auto& p : e.eco.pca) o << " " << num(100 * p.variance_share) << " %";
  o << ", loadings";
  for (std::size_t k = 0; k < e.eco.components.size(); ++k)
    o << " " << html(e.eco.components[k]) << " " << num(e.eco.pca[0].loadings[k], 3);
  o << ". Mean RSEI " << num(e.eco.dates[0].rsei_mean, 3) << " &rarr; "
    << num(e.eco.dates[1].rsei_mean, 3) << "; mean FVC " << num(e.eco.dates[0].fvc_mean, 3)
    << " &rarr; " << num(e.eco.dates[1].fvc_mean, 3) << ".</p>\n";
  if (e.slope)
    o << "<p>Slope: mean " << num(e.slope->mean) << "&deg;, max " << num(e.slope->max)
      << "&deg;.</p>\n";
  if (!e.zones || !x.zones) return;
  const auto& z = *e.zones;
  std::vector<std::size_t> order(z.rank.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const double da = z.value(a, "degraded_m2"), db = z.value(b, "degraded_m2");
    if ((da > 0) != (db > 0)) return da > 0;  // degraded zones first
    return z.rank[a] < z.rank[b];
  });
  o << "<table><tr><th class=l>zone</th><th class=l>type</th><th class=l>eco_alert</th>"
    << "<th>RSEI t0</th><th>RSEI t1</th>";
  for (int g = 1; g <= 5; ++g) o << "<th>" << names[g] << " ha<br>t0 / t1</th>";
  o << "<th>degraded ha</th><th>improved ha</th><th>valid</th></tr>\n";
  int type_field = -1;
  for (std::size_t f = 0; f < x.zones->fields.size(); ++f) {
    if (x.zones->fields[f].name == x.cfg.str("inputs.zones.type_field"))
      type_field = static_cast<int>(f);
  }
  for (std::size_t i : order) {
    const auto& zone = x.zones->parcels[i];
    const int level = z.alert[i];
    o << "<tr><td class=l>" << html(zone.id) << "</td><td class=l>"
      << html(type_field >= 0 ? zone.attrs[static_cast<std::size_t>(type_field)] : "")
      << "</td><td class=\"l"
      << (level == 3   ? " P1"
          : level == 2 ? " P2"
                       : "")
      << "\">" << vectors::eco_alert_name(level) << "</td><td>" << num(z.value(i, "rsei_t0"), 3)
      << "</td><td>" << num(z.value(i, "rsei_t1"), 3) << "</td>";
    for (int g = 1; g <= 5; ++g) {
      const std::string n = names[g];
      o << "<td>" << num(z.value(i, "t0_" + n + "_m2") / 1e4) << " / "
        << num(z.value(i, "t1_" + n + "_m2") / 1e4) << "</td>";
    }
    o << "<td>" << num(z.value(i, "degraded_m2") / 1e4, 2) << "</td><td>"
      << num(z.value(i, "improved_m2") / 1e4, 2) << "</td><td>"
      << num(100 * z.value(i, "valid_fraction")) << " %</td></tr>\n";
  }
  o << "</table>\n";
}

void write_report(RunContext& x) {
  const Config& c = x.cfg;
  write_quicklook(x, x.dir + "/quicklook.png");
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
    << html(c.str("steps.report.title")) << "</title>\n<style>body{font-family:sans-serif;"
    << "margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}"
    << "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}"
    << "td.l,th.l{text-align:left}.P1{color:#d7191c;font-weight:bold}.P2{color:#e66101}"
    << "img.chip{width:200px;margin:2px;image-rendering:pixelated}</style></head><body>\n";
  o << "<h1>" << html(c.str("steps.report.title")) << "</h1>\n<p>Before: "
    << html(c.str("inputs.before.date").empty() ? c.list("inputs.before.files").front()
                                                : c.str("inputs.before.date"))
    << " &mdash; after: "
    << html(c.str("inputs.after.date").empty() ? c.list("inputs.after.files").front()
                                               : c.str("inputs.after.date"))
    << ". Pipeline <code>" << html(c.file()) << "</code>, farmwatch " << farmwatch_version()
    << ".</p>\n";
  const double px = x.change ? x.change->pixel_area_m2 : 0;
  static const std::vector<vectors::Patch> none;
  const std::vector<vectors::Patch>& patches = x.patches ? x.patches->set.patches : none;
  // By category.
  std::map<std::string, std::array<double, 3>> cat;  // patches, area m2, changed pixels area
  if (x.change) {
    for (int k = 1; k < rasters::kChangeCategories; ++k) {
      int64_t n = 0;
      for (int g = 1; g < 4; ++g)
        n += x.change->counts[static_cast<std::size_t>(k)][static_cast<std::size_t>(g)];
      cat[rasters::category_name(static_cast<rasters::ChangeCategory>(k))][2] =
          static_cast<double>(n) * px;
    }
  }
  std::array<int, 4> prio{}, inten{};
  std::map<std::string, std::array<double, 4>> town;  // P1, P2, P3 counts, area
  for (const auto& p : patches) {
    cat[p.category][0] += 1;
    cat[p.category][1] += p.area_m2;
    ++prio[static_cast<std::size_t>(std::clamp(p.priority, 1, 3))];
    const int g =
        std::isfinite(p.intensity_max) ? std::clamp(static_cast<int>(p.intensity_max), 0, 3) : 0;
    ++inten[static_cast<std::size_t>(g)];
    auto& t = town[p.township.empty() ? "(outside parcels)" : p.township];
    t[static_cast<std::size_t>(std::clamp(p.priority, 1, 3) - 1)] += 1;
    t[3] += p.area_m2;
  }
  o << "<h2>Summary</h2>\n<p>" << patches.size() << " change patches: <span class=P1>" << prio[1]
    << " P1</span>, <span class=P2>" << prio[2] << " P2</span>, " << prio[3] << " P3.</p>\n";
  o << "<h3>By category</h3>\n<table><tr><th class=l>category</th><th>patches</th>"
    << "<th>patch area (mu)</th><th>changed pixels (mu)</th></tr>\n";
  for (const auto& [k, v] : cat) {
    o << "<tr><td class=l>" << html(k) << "</td><td>" << v[0] << "</td><td>"
      << num(v[1] / (10000.0 / 15.0), 2) << "</td><td>" << num(v[2] / (10000.0 / 15.0), 2)
      << "</td></tr>\n";
  }
  o << "</table>\n<h3>By intensity (strongest grade in the patch)</h3>\n<table><tr>"
    << "<th>slight</th><th>moderate</th><th>severe</th></tr><tr><td>" << inten[1] << "</td><td>"
    << inten[2] << "</td><td>" << inten[3] << "</td></tr></table>\n";
  o << "<h3>By township</h3>\n<table><tr><th class=l>township</th><th>P1</th><th>P2</th>"
    << "<th>P3</th><th>area (mu)</th></tr>\n";
  for (const auto& [k, v] : town) {
    o << "<tr><td class=l>" << html(k) << "</td><td>" << v[0] << "</td><td>" << v[1] << "</td><td>"
      << v[2] << "</td><td>" << num(v[3] / (10000.0 / 15.0), 2) << "</td></tr>\n";
  }
  o << "</table>\n";
  if (x.history) {
    // New against persisting cases, and what is overdue.
    const history::Result& h = *x.history;
    const auto& k = h.counts;
    o << "<h2>History (run " << h.run_id << ", " << html(h.run_date) << ")</h2>\n"
      << "<table><tr><th>new</th><th>persisting</th><th>expanded</th><th>resolved</th>"
      << "<th>unobserved (clouds)</th><th>merged</th><th>verified, not alerted</th>"
      << "<th>open</th><th>overdue</th></tr><tr><td>" << k.new_cases << "</td><td>" << k.persisting
      << "</td><td>" << k.expanded << "</td><td>" << k.resolved << "</td><td>" << k.unobserved
      << "</td><td>" << k.merged << "</td><td>" << k.verified << "</td><td>" << k.open
      << "</td><td class=P1>" << k.overdue << "</td></tr></table>\n";
    std::vector<const history::Observation*> late;
    for (const auto& ob : h.observations) {
      if (ob.overdue) late.push_back(&ob);
    }
    std::stable_sort(late.begin(), late.end(), [](auto* a, auto* b) {
      return a->priority != b->priority ? a->priority < b->priority : a->due_date < b->due_date;
    });
    if (!late.empty()) {
      o << "<h3>Overdue cases</h3>\n<table><tr><th class=l>case</th><th class=l>priority</th>"
        << "<th class=l>category</th><th class=l>first seen</th><th class=l>due</th>"
        << "<th>days open</th><th class=l>status</th></tr>\n";
      for (std::size_t i = 0; i < late.size() && i < 200; ++i) {
        const auto* ob = late[i];
        o << "<tr><td class=l>" << html(ob->track_id) << "</td><td class=\"l P" << ob->priority
          << "\">P" << ob->priority << "</td><td class=l>" << html(ob->category)
          << "</td><td class=l>" << html(ob->first_seen) << "</td><td class=l>"
          << html(ob->due_date) << "</td><td>" << ob->days_open << "</td><td class=l>"
          << html(ob->status) << "</td></tr>\n";
      }
      o << "</table>\n";
      if (late.size() > 200)
        o << "<p>... and " << late.size() - 200 << " more (history.csv).</p>\n";
    }
  }
  o << "<h2>Quick look</h2>\n<p>The change map (construction red, bare soil brown, "
    << "water blue, vegetation loss orange, gain green) with the patches outlined.</p>\n"
    << "<img alt=\"quick look\" style=\"max-width:100%\" src=\"data:image/png;base64,"
    << base64(read_all(x.dir + "/quicklook.png")) << "\">\n";
  // Top-priority patches with chips.
  // With a history: the case of each patch; patches of cases verified legal or false are not
  // alerted, and within a priority the overdue come first.
  auto case_of = [&](const vectors::Patch& p) -> const history::Observation* {
    if (!x.history) return nullptr;
    const auto it = x.history->by_patch.find(p.id);
    return it == x.history->by_patch.end() ? nullptr : &x.history->observations[it->second];
  };
  std::vector<const vectors::Patch*> top;
  for (const auto& p : patches) {
    const auto* k = case_of(p);
    if (!k || k->alert) top.push_back(&p);
  }
  std::stable_sort(top.begin(), top.end(), [&](auto* a, auto* b) {
    if (a->priority != b->priority) return a->priority < b->priority;
    const auto *ca = case_of(*a), *cb = case_of(*b);
    const bool la = ca && ca->overdue, lb = cb && cb->overdue;
    if (la != lb) return la;
    return a->area_m2 > b->area_m2;
  });
  top.resize(
      std::min<std::size_t>(top.size(), static_cast<std::size_t>(c.integer("steps.report.top"))));
  zone_section(o, x);
  o << "<h2>Most urgent patches</h2>\n<table><tr><th class=l>patch</th><th class=l>priority</th>"
    << "<th class=l>category</th><th>area (mu)</th><th class=l>township / village</th>"
    << "<th class=l>parcels</th><th class=l>zone</th>"
    << (x.history ? "<th class=l>case</th><th class=l>status</th><th class=l>first seen</th>"
                    "<th class=l>confidence</th><th class=l>due</th>"
                  : "")
    << "<th class=l>before / after</th></tr>\n";
  for (const auto* p : top) {
    std::string ids;
    for (std::size_t k = 0; k < p->parcel_ids.size() && k < 5; ++k)
      ids += (k ? ", " : "") + p->parcel_ids[k];
    if (p->parcel_ids.size() > 5) ids += ", ...";
    o << "<tr><td class=l>" << html(p->id) << "</td><td class=\"l P" << p->priority << "\">P"
      << p->priority << "</td><td class=l>" << html(p->category) << "</td><td>"
      << num(p->area_mu, 2) << "</td><td class=l>" << html(p->township) << " " << html(p->village)
      << "</td><td class=l>" << html(ids) << "</td><td class=l>" << html(p->zone_name)
      << "</td><td class=l>";
    if (const auto* k = case_of(*p)) {
      o << html(k->track_id) << "</td><td class=l>" << html(k->status) << "</td><td class=l>"
        << html(k->first_seen) << "</td><td class=l>" << html(k->confidence) << "</td><td class=\"l"
        << (k->overdue ? " P1" : "") << "\">" << html(k->due_date)
        << (k->overdue ? " (overdue)" : "") << "</td><td class=l>";
    } else if (x.history) {
      o << "</td><td class=l></td><td class=l></td><td class=l></td><td class=l></td><td class=l>";
    }
    for (const char* s : {"_before.png", "_after.png"}) {
      const std::string f = x.dir + "/chips/" + p->id + s;
      if (fs::exists(f))
        o << "<img class=chip alt=\"" << html(p->id + s) << "\" src=\"data:image/png;base64,"
          << base64(read_all(f)) << "\">";
    }
    o << "</td></tr>\n";
  }
  o << "</table>\n<p>Files: change_class.tif, change_intensity.tif, change_magnitude.tif, "
    << "parcels.geojson, patches.geojson, farmwatch.gpkg (open in QGIS: styles load with "
    << "them), manifest.json.</p>\n</body></html>\n";
  write_file_atomic(x.dir + "/report.html", o.str());
}

}  // namespace fw::pipelines
