#include "pipelines/stages.hpp"

#include <ogrsf_frmts.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <sstream>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "pipelines/history.hpp"
#include "pipelines/report.hpp"
#include "pipelines/run.hpp"
#include "pipelines/styles.hpp"
#include "rasters/ecology.hpp"
#include "rasters/indices.hpp"
#include "rasters/sensor.hpp"
#include "vectors/coverage.hpp"
#include "vectors/ecozones.hpp"
#include "vectors/patches.hpp"

namespace fw::pipelines {
namespace {

namespace fs = std::filesystem;

// Runs `f`; returns "" or the fw::Error's message (a validator).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return {};
}

std::vector<std::string> sensor_choices() {
  std::vector<std::string> v = {"auto"};
  for (const auto& s : rasters::sensor_ids()) v.push_back(s);
  return v;
}

std::vector<OptionSpec> date_options(const std::string& d, const std::string& which) {
  const std::string k = "inputs." + d + ".";
  return {
      {.key = k + "files",
       .type = OptType::kFileList,
       .doc = "the " + which + " image: one multiband file, one file per band, or a VRT",
       .required = true},
      {.key = k + "date", .doc = "its acquisition date, for the report (e.g. 2024-05-01)"},
      {.key = k + "sensor",
       .type = OptType::kChoice,
       .def = "auto",
       .doc = "sentinel2, landsat89, gf1wfv, gf6wfv, gf2pms, generic, or auto (from band names "
              "and metadata)",
       .choices = sensor_choices()},
      {.key = k + "bands",
       .doc = "band map, role=band (roles blue, green, red, nir, swir1, swir2; band: 1-based "
              "index or name), e.g. red=3,nir=4",
       .check =
           [](const std::string& s) {
             return error_of([&] {
               for (const auto& [role, band] : rasters::parse_band_map(s)) {
                 if (!rasters::parse_role(role))
                   throw_usage("unknown role '" + role +
                               "' (roles: blue, green, red, nir, swir1, swir2)");
               }
             });
           }},
      {.key = k + "mask", .type = OptType::kFile, .doc = "its cloud/quality mask raster"},
      {.key = k + "mask_type",
       .type = OptType::kChoice,
       .def = "scl",
       .doc = "scl (Sentinel-2 scene classification), qa_pixel (Landsat), binary (non-zero = "
              "valid)",
       .choices = {"scl", "qa_pixel", "binary"}},
      {.key = k + "mask_buffer",
       .type = OptType::kInt,
       .def = "2",
       .doc = "pixels masked around clouds and shadows",
       .min = 0,
       .max = 100},
      {.key = k + "snow_invalid", .type = OptType::kBool, .def = "false", .doc = "mask snow too"},
      {.key = k + "scale",
       .type = OptType::kNumber,
       .doc = "reflectance = DN * scale + offset (overrides the sensor and the file)"},
      {.key = k + "offset", .type = OptType::kNumber, .doc = "reflectance offset (with scale)"},
      {.key = k + "boa_offset",
       .type = OptType::kNumber,
       .doc = "Sentinel-2 BOA_ADD_OFFSET in DN (-1000 from processing baseline 04.00)"},
      {.key = k + "nodata", .type = OptType::kNumber, .doc = "DN meaning no data"},
  };
}

rasters::ImageryOptions imagery_options(const Config& c, const std::string& d) {
  const std::string k = "inputs." + d + ".";
  rasters::ImageryOptions o;
  o.files = c.paths(k + "files");
  o.sensor = c.str(k + "sensor");
  o.band_map = c.str(k + "bands");
  if (c.given(k + "scale")) o.scale = c.num(k + "scale");
  if (c.given(k + "offset")) o.offset = c.num(k + "offset");
  if (c.given(k + "boa_offset")) o.boa_offset = c.num(k + "boa_offset");
  if (c.given(k + "nodata")) o.nodata = c.num(k + "nodata");
  o.label = d + " (inputs." + d + ")";
  if (!c.path(k + "mask").empty()) {
    o.mask.file = c.path(k + "mask");
    o.mask.type = rasters::parse_mask_type(c.str(k + "mask_type"));
    o.mask.buffer = static_cast<int>(c.integer(k + "mask_buffer"));
    o.mask.snow_invalid = c.flag(k + "snow_invalid");
  }
  return o;
}

std::string check_category(const std::string& name) {
  return error_of([&] { rasters::parse_category(name); });
}

void readers(RunContext& x) {
  const Config& c = x.cfg;
  x.before.emplace(rasters::Imagery::open(imagery_options(c, "before")));
  x.after.emplace(rasters::Imagery::open(imagery_options(c, "after")));
  if (c.given("grid.crs") || c.given("grid.resolution")) {
    rasters::GridSpec spec;
    spec.crs = c.str("grid.crs");
    spec.resolution = c.num("grid.resolution");
    x.grid = rasters::analysis_grid({&*x.before, &*x.after}, spec);
  } else {
    x.grid = rasters::change_grid(*x.before, *x.after);
  }
  vectors::ParcelOptions po;
  po.file = c.path("inputs.parcels.file");
  po.layer = c.str("inputs.parcels.layer");
  po.id_field = c.str("inputs.parcels.id_field");
  po.land_class_field = c.str("inputs.parcels.land_class_field");
  po.land_class_optional = !c.given("inputs.parcels.land_class_field");
  po.basic_farmland_values = c.list("inputs.parcels.basic_farmland_values");
  po.encoding = c.str("inputs.parcels.encoding");
  po.crs = c.str("inputs.parcels.crs");
  po.unique_ids = c.flag("inputs.parcels.unique_ids");
  x.parcels.emplace(vectors::load_parcels(po, x.grid));
  x.counts["parcels"] = x.parcels->parcels.size();
  if (x.so.shard) {
    auto valid = std::make_shared<rasters::ValidSamples>(
        rasters::sample_valid({&*x.before, &*x.after}, x.grid));
    x.so.shard_weight = shard_weights(*x.parcels, x.grid, std::move(valid));
  }
  if (!c.path("inputs.zones.file").empty()) {
    x.zone_options.layer.file = c.path("inputs.zones.file");
    x.zone_options.layer.layer = c.str("inputs.zones.layer");
    x.zone_options.layer.id_field = c.str("inputs.zones.id_field");
    x.zone_options.layer.crs = c.str("inputs.zones.crs");
    x.zone_options.layer.label = "zones";
    x.zone_options.name_field = c.str("inputs.zones.name_field");
    x.zone_options.type_field = c.str("inputs.zones.type_field");
    x.zone_options.sensitivity_field = c.str("inputs.zones.sensitivity_field");
    x.zones.emplace(vectors::load_zones(x.zone_options, x.grid));
    x.counts["zones"] = x.zones->parcels.size();
  }
  if (!c.path("inputs.admin.file").empty()) {
    vectors::ParcelOptions ao;
    ao.file = c.path("inputs.admin.file");
    ao.layer = c.str("inputs.admin.layer");
    ao.crs = c.str("inputs.admin.crs");
    ao.encoding = c.str("inputs.admin.encoding");
    ao.unique_ids = true;  // ids do not matter here
    ao.label = "administrative units";
    x.admin.emplace(vectors::load_parcels(ao, x.grid));
    for (const char* k : {"inputs.admin.township_field", "inputs.admin.village_field"}) {
      const std::string& f = c.str(k);
      if (f.empty()) continue;
      bool found = false;
      std::string have;
      for (const auto& fd : x.admin->fields) {
        found |= fd.name == f;
        have += (have.empty() ? "" : ", ") + fd.name;
      }
      if (!found)
        throw_input("no field '" + f + "' (" + k + "; fields: " + have + ")",
                    {.file = ao.file, .layer = x.admin->layer, .field = f});
    }
    x.counts["admin_units"] = x.admin->parcels.size();
  }
}

void indices(RunContext& x) {
  std::vector<rasters::IndexId> ids;
  for (const auto& n : x.cfg.list("steps.indices.list")) ids.push_back(rasters::parse_index(n));
  if (std::find(ids.begin(), ids.end(), rasters::parse_index("ndvi")) == ids.end())
    ids.insert(ids.begin(), rasters::parse_index("ndvi"));  // the indicators need it
  for (const char* d : {"before", "after"}) {
    rasters::IndexJob job;
    job.indices = ids;
    job.out_dir = x.dir + "/indices/" + d;
    const rasters::Imagery& im = std::string(d) == "before" ? *x.before : *x.after;
    const auto r = rasters::compute_indices(im, x.grid, job, x.so);
    x.counts[std::string("valid_pixels_") + d] = r.valid;
  }
  x.ndvi_before = x.dir + "/indices/before/ndvi.tif";
  x.ndvi_after = x.dir + "/indices/after/ndvi.tif";
}

void change(RunContext& x) {
  const Config& c = x.cfg;
  rasters::ChangeOptions o;
  o.method = c.str("steps.change.method");
  o.threshold_method = c.str("steps.change.threshold");
  o.mad_k = c.num("steps.change.mad_k");
  o.irmad_alpha = c.num("steps.change.alpha");
  o.normalize = c.flag("steps.change.normalize");
  o.cover = c.flag("steps.change.cover");
  if (c.given("steps.classify.rules")) {
    o.rules.clear();
    for (const auto& r : c.list("steps.classify.rules")) o.rules.push_back(rasters::parse_rule(r));
  }
  const auto steps = c.list("steps.classify.intensity_steps");
  for (std::size_t i = 0; i < 3 && i < steps.size(); ++i)
    o.intensity_steps[i] = std::strtod(steps[i].c_str(), nullptr);
  o.out_dir = x.dir;
  x.change = rasters::detect_change(*x.before, *x.after, x.grid, o, x.so);
  x.counts["valid_pixels_both"] = x.change->valid;
  nlohmann::json cat = nlohmann::json::object();
  for (int k = 1; k < rasters::kChangeCategories; ++k) {
    int64_t n = 0;
    for (int g = 1; g < 4; ++g)
      n += x.change->counts[static_cast<std::size_t>(k)][static_cast<std::size_t>(g)];
    cat[rasters::category_name(static_cast<rasters::ChangeCategory>(k))] = n;
  }
  x.counts["changed_pixels"] = cat;
}

// Numbers from a comma-separated list ("0.2,0.4,0.6,0.8"), `n` of them, ascending.
template <std::size_t N>
std::array<double, N> numbers(const std::string& text, const std::string& key) {
  std::array<double, N> v{};
  std::stringstream ss(text);
  std::string item;
  std::size_t k = 0;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double x = std::strtod(item.c_str(), &end);
    while (end && *end == ' ') ++end;
    if (k >= N || item.empty() || *end || !std::isfinite(x) || (k > 0 && !(x > v[k - 1])))
      throw_usage(key + ": expected " + std::to_string(N) + " ascending numbers, got '" + text +
                  "'");
    v[k++] = x;
  }
  if (k != N)
    throw_usage(key + ": expected " + std::to_string(N) + " ascending numbers, got '" + text + "'");
  return v;
}

bool ecology_enabled(const Config& c) {
  const std::string& e = c.str("steps.ecology.enabled");
  return e == "true" || (e == "auto" && (!c.path("inputs.zones.file").empty() ||
                                         !c.path("inputs.dem.file").empty()));
}

void ecology(RunContext& x) {
  const Config& c = x.cfg;
  if (!ecology_enabled(c)) return;
  EcologyRun r;
  r.before = &*x.before;
  r.after = &*x.after;
  r.grid = x.grid;
  r.lst_before = c.path("inputs.before.lst");
  r.lst_after = c.path("inputs.after.lst");
  rasters::EcologyOptions& e = r.eco;
  const auto pct =
      numbers<2>(c.str("steps.ecology.fvc_percentiles"), "steps.ecology.fvc_percentiles");
  e.fvc.low_percent = pct[0], e.fvc.high_percent = pct[1];
  if (c.given("steps.ecology.fvc_ndvi_soil"))
    e.fvc.ndvi_soil = c.num("steps.ecology.fvc_ndvi_soil");
  if (c.given("steps.ecology.fvc_ndvi_veg")) e.fvc.ndvi_veg = c.num("steps.ecology.fvc_ndvi_veg");
  e.fvc.breaks = numbers<4>(c.str("steps.ecology.fvc_breaks"), "steps.ecology.fvc_breaks");
  e.wetness = c.str("steps.ecology.wetness");
  e.heat = c.str("steps.ecology.heat");
  const std::string& wm = c.str("steps.ecology.water_mndwi");
  if (wm == "none") {
    e.water_mndwi.reset();
  } else {
    e.water_mndwi = std::strtod(wm.c_str(), nullptr);
  }
  e.mode = rasters::parse_rsei_mode(c.str("steps.ecology.mode"));
  e.rsei_breaks = numbers<4>(c.str("steps.ecology.rsei_breaks"), "steps.ecology.rsei_breaks");
  e.min_change = c.num("steps.ecology.min_change");
  e.majority_rule = c.str("steps.ecology.mixed_pixels") == "majority";
  e.uint16 = c.flag("steps.ecology.uint16");
  r.slope.dem = c.path("inputs.dem.file");
  r.slope.band = static_cast<int>(c.integer("inputs.dem.band"));
  r.slope.z_factor = c.num("inputs.dem.z_factor");
  r.zones = x.zones ? &*x.zones : nullptr;
  r.parcels = x.parcels ? &*x.parcels : nullptr;
  r.zone.type_field = c.str("inputs.zones.type_field");
  r.zone.sensitivity_field = c.str("inputs.zones.sensitivity_field");
  r.zone.default_sensitivity =
      vectors::parse_sensitivity_name(c.str("steps.ecology.default_sensitivity"));
  if (c.given("steps.ecology.alert_rules")) {
    r.zone.rules.clear();
    for (const auto& t : c.list("steps.ecology.alert_rules"))
      r.zone.rules.push_back(vectors::parse_eco_rule(t));
  }
  r.zone.mode = vectors::parse_coverage_mode(c.str("steps.zonal.coverage"));
  if (fs::exists(x.dir + "/change_class.tif")) r.change_class = x.dir + "/change_class.tif";
  r.steep_share = c.num("steps.ecology.steep_share");
  r.out_dir = x.dir;
  x.ecology.emplace(run_ecology(r, x.so));
  const auto& eco = x.ecology->eco;
  nlohmann::json pc = nlohmann::json::array();
  for (const auto& p : eco.pca) pc.push_back(p.variance_share);
  x.counts["ecology"] = {{"components", eco.components},
                         {"pc1_variance_share", pc},
                         {"rsei_mean", {eco.dates[0].rsei_mean, eco.dates[1].rsei_mean}},
                         {"degraded_pixels", eco.degraded},
                         {"improved_pixels", eco.improved}};
  if (x.ecology->zones) {
    int a[4] = {0, 0, 0, 0};
    for (int l : x.ecology->zones->alert) ++a[l];
    x.counts["zone_alerts"] = {{"alarm", a[3]}, {"warning", a[2]}, {"watch", a[1]}};
  }
}

void zonal(RunContext& x) {
  const Config& c = x.cfg;
  vectors::IndicatorOptions o;
  o.ndvi_before = x.ndvi_before;
  o.ndvi_after = x.ndvi_after;
  o.change_class = x.dir + "/change_class.tif";
  if (fs::exists(x.dir + "/change_cover.tif")) o.change_cover = x.dir + "/change_cover.tif";
  o.vegetated_ndvi = c.num("steps.zonal.vegetated_ndvi");
  o.alerts.alarm_mu = c.num("steps.zonal.alarm_mu");
  o.alerts.alarm_ratio = c.num("steps.zonal.alarm_ratio");
  o.mode = vectors::parse_coverage_mode(c.str("steps.zonal.coverage"));
  o.township_field = c.str("inputs.parcels.township_field");
  o.village_field = c.str("inputs.parcels.village_field");
  x.indicators.emplace(vectors::compute_indicators(*x.parcels, o, x.so));
  if (x.ecology && x.ecology->terrain) {
    // Terrain per parcel, and the steep-farmland flag.
    const vectors::Terrain& t = *x.ecology->terrain;
    auto& ind = *x.indicators;
    ind.columns.insert(ind.columns.end(), t.columns.begin(), t.columns.end());
    for (std::size_t i = 0; i < ind.rows.size(); ++i) {
      ind.rows[i].insert(ind.rows[i].end(), t.rows[i].begin(), t.rows[i].end());
      if (t.steep[i])
        ind.flags[i] += std::string(ind.flags[i].empty() ? "" : ",") + "steep_over_25";
    }
  }
  // Four independent files: written side by side.
  std::exception_ptr failed[4];
  parallel_for_n(
      4,
      [&](std::size_t k) {
        try {
          if (k == 3) {
            vectors::write_summary_csv(x.dir + "/summary_by_township.csv", *x.parcels,
                                       *x.indicators, o);
          } else {
            const char* name[] = {"/parcels.geojson", "/farmwatch.gpkg", "/parcels.csv"};
            vectors::write_indicators(x.dir + name[k], *x.parcels, *x.indicators, x.grid.crs());
          }
        } catch (...) {
          failed[k] = std::current_exception();
        }
      },
      x.so.threads);
  for (const auto& e : failed) {
    if (e) std::rethrow_exception(e);
  }
  int alerts[4] = {0, 0, 0, 0};
  for (int l : x.indicators->alert) ++alerts[std::clamp(l, 0, 3)];
  x.counts["parcel_alerts"] = {{"alarm", alerts[3]}, {"warning", alerts[2]}, {"watch", alerts[1]}};
}

using vectors::parse_mmu;

void patches(RunContext& x) {
  const Config& c = x.cfg;
  PatchRun r;
  r.patches.change_class = x.dir + "/change_class.tif";
  r.patches.intensity = x.dir + "/change_intensity.tif";
  r.patches.magnitude = x.dir + "/change_magnitude.tif";
  if (fs::exists(x.dir + "/change_cover.tif")) r.patches.cover = x.dir + "/change_cover.tif";
  r.patches.index_before = x.ndvi_before;
  r.patches.index_after = x.ndvi_after;
  r.patches.mmu_m2 = parse_mmu(c.str("steps.patches.mmu"));
  r.patches.simplify = c.flag("steps.patches.simplify");
  if (c.given("steps.patches.priority_rules")) {
    r.patches.rules.clear();
    for (const auto& t : c.list("steps.patches.priority_rules"))
      r.patches.rules.push_back(vectors::parse_priority_rule(t));
  }
  r.patches.township_field = c.str("inputs.parcels.township_field");
  r.patches.village_field = c.str("inputs.parcels.village_field");
  if (x.admin) {
    r.patches.admin = &*x.admin;
    r.patches.admin_township_field = c.str("inputs.admin.township_field");
    r.patches.admin_village_field = c.str("inputs.admin.village_field");
  }
  r.parcels = &*x.parcels;
  r.zones = x.zones ? &*x.zones : nullptr;
  r.zone_options = x.zone_options;
  // Shards never publish chips (the merge draws them): a shard replaying the patches skips them.
  const bool shard = x.so.shard && x.so.shard->role() == ShardSession::Role::kShard;
  if (c.flag("steps.patches.chips") && !shard) {
    r.before = &*x.before;
    r.after = &*x.after;
  }
  r.out_dir = x.dir;
  r.write = false;  // the writers stage writes them, with their history
  x.patches.emplace(run_patches(r, x.so));
  int pr[4] = {0, 0, 0, 0};
  for (const auto& p : x.patches->set.patches) ++pr[std::clamp(p.priority, 1, 3)];
  x.counts["patches"] = {{"P1", pr[1]}, {"P2", pr[2]}, {"P3", pr[3]}};
  x.counts["chips"] = x.patches->chips;
}

// The history settings of a run (history.*).
history::Settings history_settings(const Config& c) {
  history::Settings h;
  h.store = c.path("history.store");
  h.run_date = c.str("history.run_date");
  if (h.run_date.empty()) h.run_date = c.str("inputs.after.date");
  h.iou = c.num("history.iou");
  h.contained = c.num("history.contained");
  h.expanded = c.num("history.expanded");
  h.observed = c.num("history.observed");
  h.due_days = history::parse_due_days(c.str("history.due_days"));
  h.family = history::default_families();
  if (c.given("history.families")) {
    h.family.clear();
    for (const auto& f : c.list("history.families")) history::parse_family(f, h.family);
  }
  return h;
}

void history_stage(RunContext& x) {
  const Config& c = x.cfg;
  if (c.str("history.store").empty()) return;
  history::Settings h = history_settings(c);
  if (h.run_date.empty()) {
    h.run_date = history::today_utc();
    x.warnings.push_back("history: no history.run_date nor inputs.after.date; the run is dated " +
                         h.run_date + " (today)");
    log::warn("history: the run has no date; using today's", {{"date", h.run_date}});
  }
  history::RunInput in;
  in.run_key = x.run_key;
  in.patches = &x.patches->set;
  in.change_class = x.dir + "/change_class.tif";
  in.parcels = x.parcels ? &*x.parcels : nullptr;
  in.indicators = x.indicators ? &*x.indicators : nullptr;
  in.pipeline = c.file();
  x.history.emplace(history::record_run(h, in, x.so));
  const history::Result& r = *x.history;
  auto& set = x.patches->set;
  set.extra_fields = history::patch_fields();
  for (auto& p : set.patches) p.extra = history::patch_values(r, p.id);
  write_file_atomic(x.dir + "/history.csv", history::history_csv(r));
  if (!r.parcels.empty())
    write_file_atomic(x.dir + "/parcel_history.csv", history::parcel_history_csv(r));
  const auto& k = r.counts;
  x.counts["history"] = {{"run_id", r.run_id},
                         {"run_date", r.run_date},
                         {"replayed", r.replayed},
                         {"new", k.new_cases},
                         {"persisting", k.persisting},
                         {"expanded", k.expanded},
                         {"resolved", k.resolved},
                         {"unobserved", k.unobserved},
                         {"merged", k.merged},
                         {"verified", k.verified},
                         {"open", k.open},
                         {"overdue", k.overdue}};
}

// The patch layers, with their history when the run keeps one.
// Copies layer `name` of <dir>/<name>.gpkg into farmwatch.gpkg and removes the former.
void merge_layer(const std::string& dir, const std::string& name) {
  const std::string from = dir + "/" + name + ".gpkg", to = dir + "/farmwatch.gpkg";
  {
    DatasetPtr src = open_vector(from);
    DatasetPtr dst(static_cast<GDALDataset*>(
        GDALOpenEx(to.c_str(), GDAL_OF_VECTOR | GDAL_OF_UPDATE, nullptr, nullptr, nullptr)));
    if (!dst) throw_output("cannot open for update", {.file = to});
    OGRLayer* l = src->GetLayerByName(name.c_str());
    if (!l || !dst->CopyLayer(l, name.c_str()))
      throw_output("cannot copy the " + name + " layer", {.file = to});
  }
  fs::remove(from);
}

void writers(RunContext& x) {
  if (x.patches) {
    vectors::write_patches(x.dir, x.patches->set);
    merge_layer(x.dir, "patches");
  }
  if (fs::exists(x.dir + "/zones.gpkg") && fs::exists(x.dir + "/farmwatch.gpkg"))
    merge_layer(x.dir, "zones");
}

void styles(RunContext& x) {
  write_styles(x.dir);
}

void report(RunContext& x) {
  write_report(x);
}

std::vector<StageSpec> build() {
  std::vector<StageSpec> s;
  {
    StageSpec r{.name = "readers",
                .doc =
                    "open both dates (bands, scaling, masks) on one analysis grid, load the "
                    "parcels and the ecological zones onto it",
                .options = {},
                .writes = {},
                .run = readers};
    for (auto& o : date_options("before", "earlier")) r.options.push_back(o);
    for (auto& o : date_options("after", "later")) r.options.push_back(o);
    const std::vector<OptionSpec> more = {
        {.key = "inputs.parcels.file",
         .type = OptType::kFile,
         .doc = "farmland parcels: any OGR vector (GeoPackage, shapefile, GeoJSON...)",
         .required = true},
        {.key = "inputs.parcels.layer", .doc = "layer name (default: the first polygon layer)"},
        {.key = "inputs.parcels.id_field",
         .def = "parcel_id",
         .doc = "unique parcel id field (the FID when this default is absent)"},
        {.key = "inputs.parcels.unique_ids",
         .type = OptType::kBool,
         .def = "false",
         .doc = "make duplicate ids unique (id-2, id-3) instead of failing"},
        {.key = "inputs.parcels.land_class_field",
         .def = "land_class",
         .doc = "field whose values mark permanent basic farmland (e.g. DLMC)"},
        {.key = "inputs.parcels.basic_farmland_values",
         .type = OptType::kList,
         .def = "permanent_basic_farmland,永久基本农田",
         .doc = "values of that field meaning permanent basic farmland"},
        {.key = "inputs.parcels.township_field", .def = "township", .doc = "township name field"},
        {.key = "inputs.parcels.village_field", .def = "village", .doc = "village name field"},
        {.key = "inputs.parcels.encoding", .doc = "attribute encoding of a shapefile (e.g. GBK)"},
        {.key = "inputs.parcels.crs", .doc = "the file's CRS when it has none or a wrong one"},
        {.key = "inputs.zones.file",
         .type = OptType::kFile,
         .doc = "ecological zones (red lines, wetlands...): any OGR vector"},
        {.key = "inputs.zones.layer", .doc = "layer name"},
        {.key = "inputs.zones.id_field", .def = "zone_id", .doc = "zone id field"},
        {.key = "inputs.zones.name_field", .def = "name", .doc = "zone name field"},
        {.key = "inputs.zones.type_field",
         .def = "zone_type",
         .doc = "zone type field (ecological_red_line, wetland, ...)"},
        {.key = "inputs.zones.sensitivity_field",
         .def = "sensitivity",
         .doc = "sensitivity field (low, medium, high, red_line)"},
        {.key = "inputs.zones.crs", .doc = "the file's CRS when it has none or a wrong one"},
        {.key = "inputs.admin.file",
         .type = OptType::kFile,
         .doc = "administrative units (townships or villages): a patch's township and village "
                "come from the unit it overlaps most, not from the parcels"},
        {.key = "inputs.admin.layer", .doc = "layer name"},
        {.key = "inputs.admin.township_field",
         .def = "township",
         .doc = "township name field ('' = none)"},
        {.key = "inputs.admin.village_field",
         .def = "village",
         .doc = "village name field ('' = none)"},
        {.key = "inputs.admin.encoding", .doc = "attribute encoding of a shapefile (e.g. GBK)"},
        {.key = "inputs.admin.crs", .doc = "the file's CRS when it has none or a wrong one"},
        {.key = "grid.crs",
         .doc = "analysis CRS (e.g. EPSG:32650); default: the earlier date's",
         .check =
             [](const std::string& t) {
               OGRSpatialReference srs;
               return srs.SetFromUserInput(t.c_str()) == OGRERR_NONE
                          ? std::string()
                          : "not a CRS GDAL knows (e.g. EPSG:32650)";
             }},
        {.key = "grid.resolution",
         .type = OptType::kNumber,
         .doc = "analysis pixel size in CRS units; default: the earlier date's",
         .min = 0},
    };
    for (const auto& o : more) r.options.push_back(o);
    s.push_back(std::move(r));
  }
  s.push_back({.name = "indices",
               .doc = "spectral indices of both dates (NDVI always), Cloud-Optimized GeoTIFFs",
               .options = {{.key = "steps.indices.list",
                            .type = OptType::kList,
                            .def = "ndvi,ndbi,mndwi,bsi",
                            .doc = "indices to write for each date",
                            .check =
                                [](const std::string& n) {
                                  return error_of([&] { rasters::parse_index(n); });
                                }}},
               .writes = {"indices/before/<index>.tif", "indices/after/<index>.tif"},
               .run = indices});
  s.push_back(
      {.name = "change",
       .doc = "change magnitude, thresholds and the per-pixel change decision",
       .options = {{.key = "steps.change.method",
                    .type = OptType::kChoice,
                    .def = "diff",
                    .doc = "diff (index differencing), cva (change vector analysis) or irmad",
                    .choices = {"diff", "cva", "irmad"}},
                   {.key = "steps.change.threshold",
                    .type = OptType::kChoice,
                    .def = "mad",
                    .doc = "automatic thresholds: mad (median +- k MAD) or otsu",
                    .choices = {"mad", "otsu"}},
                   {.key = "steps.change.mad_k",
                    .type = OptType::kNumber,
                    .def = "5",
                    .doc = "k of the MAD rule",
                    .min = 0.5,
                    .max = 50},
                   {.key = "steps.change.alpha",
                    .type = OptType::kNumber,
                    .def = "0.001",
                    .doc = "IR-MAD: change when the no-change probability is below alpha",
                    .min = 1e-12,
                    .max = 0.5},
                   {.key = "steps.change.normalize",
                    .type = OptType::kBool,
                    .def = "false",
                    .doc = "normalise date 2 onto date 1 first (pairs from different seasons "
                           "or sensors)"},
                   {.key = "steps.change.cover",
                    .type = OptType::kBool,
                    .def = "true",
                    .doc = "write change_cover.tif (sub-pixel change cover) for exact areas"}},
       .writes = {"change_class.tif", "change_intensity.tif", "change_magnitude.tif",
                  "change_cover.tif", "change_stats.json"},
       .run = change});
  s.push_back(
      {.name = "classify",
       .doc = "change categories and intensity grades (applied within the change pass)",
       .options = {{.key = "steps.classify.rules",
                    .type = OptType::kList,
                    .doc = "category rules in order, first match wins, replacing the defaults: "
                           "'construction: ndbi1 > 0, zndbi > 1' (docs/change.md)",
                    .check =
                        [](const std::string& t) {
                          return error_of([&] { rasters::parse_rule(t); });
                        }},
                   {.key = "steps.classify.intensity_steps",
                    .type = OptType::kList,
                    .def = "1,2,3",
                    .doc = "magnitudes at which a change becomes slight, moderate, severe",
                    .check =
                        [](const std::string& t) {
                          char* end = nullptr;
                          const double v = std::strtod(t.c_str(), &end);
                          return t.empty() || *end || !(v > 0)
                                     ? "expected a positive number, got '" + t + "'"
                                     : std::string();
                        }}},
       .writes = {},
       .run = nullptr});
  s.push_back(
      {.name = "ecology",
       .doc = "ecological indicators: fractional vegetation cover and RSEI of both dates, RSEI "
              "grade change, slope from a DEM; per-zone indicators and eco_alert, per-parcel "
              "terrain (runs when zones or a DEM are given)",
       .options =
           {{.key = "steps.ecology.enabled",
             .type = OptType::kChoice,
             .def = "auto",
             .doc = "auto (when inputs.zones.file or inputs.dem.file is given), true or false",
             .choices = {"auto", "true", "false"}},
            {.key = "inputs.before.lst",
             .type = OptType::kFile,
             .doc = "land surface temperature of the earlier date (any GDAL raster), for RSEI's "
                    "heat component; default: the thermal band when there is one"},
            {.key = "inputs.after.lst",
             .type = OptType::kFile,
             .doc = "land surface temperature of the later date"},
            {.key = "inputs.dem.file",
             .type = OptType::kFile,
             .doc = "a digital elevation model (any GDAL raster, any CRS): slope.tif, per-parcel "
                    "and per-zone slope and steep areas"},
            {.key = "inputs.dem.band",
             .type = OptType::kInt,
             .def = "1",
             .doc = "its band",
             .min = 1},
            {.key = "inputs.dem.z_factor",
             .type = OptType::kNumber,
             .def = "1",
             .doc = "elevation units to metres (0.3048 for feet)",
             .min = 1e-9},
            {.key = "steps.ecology.fvc_percentiles",
             .def = "5,95",
             .doc = "NDVI percentiles of each date taken as bare soil and full vegetation (FVC)",
             .check =
                 [](const std::string& t) {
                   return error_of([&] { numbers<2>(t, "steps.ecology.fvc_percentiles"); });
                 }},
            {.key = "steps.ecology.fvc_ndvi_soil",
             .type = OptType::kNumber,
             .doc = "fixed NDVI of bare soil instead of the percentile",
             .min = -1,
             .max = 1},
            {.key = "steps.ecology.fvc_ndvi_veg",
             .type = OptType::kNumber,
             .doc = "fixed NDVI of full vegetation instead of the percentile",
             .min = -1,
             .max = 1},
            {.key = "steps.ecology.fvc_breaks",
             .def = "0.2,0.4,0.6,0.8",
             .doc = "FVC at which the five cover levels begin (very low .. high)",
             .check =
                 [](const std::string& t) {
                   return error_of([&] { numbers<4>(t, "steps.ecology.fvc_breaks"); });
                 }},
            {.key = "steps.ecology.wetness",
             .def = "auto",
             .doc = "tasseled-cap wetness coefficients: auto (the sensor's), landsat89, "
                    "sentinel2, landsat7, landsat5, or six numbers (blue..swir2)",
             .check =
                 [](const std::string& t) {
                   return t == "auto" ? std::string()
                                      : error_of([&] { rasters::parse_wetness(t); });
                 }},
            {.key = "steps.ecology.heat",
             .type = OptType::kChoice,
             .def = "auto",
             .doc = "RSEI heat component: auto (LST raster or thermal band when both dates have "
                    "one, else the three-component variant), none, or required",
             .choices = {"auto", "none", "required"}},
            {.key = "steps.ecology.water_mndwi",
             .def = "0",
             .doc = "water (left out of the RSEI) where MNDWI is above this; none = no water mask",
             .check =
                 [](const std::string& t) {
                   char* end = nullptr;
                   const double v = std::strtod(t.c_str(), &end);
                   return t == "none" || (!t.empty() && !*end && v >= -1 && v <= 1)
                              ? std::string()
                              : "expected a number in [-1, 1] or none, got '" + t + "'";
                 }},
            {.key = "steps.ecology.mode",
             .type = OptType::kChoice,
             .def = "joint",
             .doc = "joint (one normalisation and PCA for both dates: comparable grades) or "
                    "per_date (Xu's index computed for each date alone)",
             .choices = {"joint", "per_date"}},
            {.key = "steps.ecology.rsei_breaks",
             .def = "0.2,0.4,0.6,0.8",
             .doc = "RSEI at which the grades fair, moderate, good, excellent begin",
             .check =
                 [](const std::string& t) {
                   return error_of([&] { numbers<4>(t, "steps.ecology.rsei_breaks"); });
                 }},
            {.key = "steps.ecology.min_change",
             .type = OptType::kNumber,
             .def = "0.1",
             .doc = "a grade change counts only when the RSEI moved at least this much (noise "
                    "across a grade boundary is not degradation)",
             .min = 0,
             .max = 1},
            {.key = "steps.ecology.mixed_pixels",
             .def = "majority",
             .doc = "majority: a pixel at the rim of a changed area keeps its grade change only "
                    "when its RSEI moved at least half as much as its strongest neighbour moving "
                    "the same way (mostly changed), so degraded areas are unbiased; whole: every "
                    "pixel whose grade moved counts whole",
             .choices = {"majority", "whole"}},
            {.key = "steps.ecology.uint16",
             .type = OptType::kBool,
             .def = "true",
             .doc = "write FVC and RSEI as UInt16 x 10000 (GDAL scale 1e-4, applied by QGIS and "
                    "by farmwatch's zonal statistics; 0.5e-4 rounding, finer than the inputs' "
                    "reflectance steps); false: Float32, twice the bytes and slower"},
            {.key = "steps.ecology.alert_rules",
             .type = OptType::kList,
             .doc = "eco_alert rules replacing the defaults: 'alarm: sensitivity >= 4, "
                    "built_up_m2 > 0' (docs/ecology.md)",
             .check =
                 [](const std::string& t) {
                   return error_of([&] { vectors::parse_eco_rule(t); });
                 }},
            {.key = "steps.ecology.default_sensitivity",
             .type = OptType::kChoice,
             .def = "medium",
             .doc = "the sensitivity of a zone without one (no field, or an empty value)",
             .choices = {"none", "low", "medium", "high", "red_line"}},
            {.key = "steps.ecology.steep_share",
             .type = OptType::kNumber,
             .def = "0.5",
             .doc = "a parcel is flagged steep_over_25 from this share of its area above 25 "
                    "degrees",
             .min = 0,
             .max = 1}},
       .writes = {"fvc_t0.tif", "fvc_t1.tif", "rsei_t0.tif", "rsei_t1.tif", "rsei_grade_change.tif",
                  "slope.tif", "zones.geojson", "zones.csv", "farmwatch.gpkg (layer zones)",
                  "ecology.json"},
       .run = ecology});
  // The patches before the per-parcel indicators: neither needs the other, and in a sharded run
  // the shards of the zonal phase then replay the (cheap) patch pass instead of the shards of
  // the patch phase replaying the zonal one (value lists of every parcel).
  s.push_back(
      {.name = "patches",
       .doc = "change patches: clumps above the minimum mapping unit, polygons, attributes, "
              "overlays, priority, evidence chips",
       .options = {{.key = "steps.patches.mmu",
                    .def = "400",
                    .doc = "minimum mapping unit: m2, or mu with the suffix mu (0.6mu)",
                    .check = [](const std::string& t) { return error_of([&] { parse_mmu(t); }); }},
                   {.key = "steps.patches.simplify",
                    .type = OptType::kBool,
                    .def = "false",
                    .doc = "simplify outlines within half a pixel"},
                   {.key = "steps.patches.priority_rules",
                    .type = OptType::kList,
                    .doc = "priority rules replacing the defaults: 'P1: category in "
                           "construction|bare_soil, area_mu >= 1, basic_farmland_area_m2 > 0'",
                    .check =
                        [](const std::string& t) {
                          return error_of([&] {
                            const auto r = vectors::parse_priority_rule(t);
                            for (const auto& cnd : r.all) {
                              for (const auto& cat : cnd.members) {
                                const std::string m = check_category(cat);
                                if (!m.empty()) throw_usage("rule '" + t + "': " + m);
                              }
                            }
                          });
                        }},
                   {.key = "steps.patches.chips",
                    .type = OptType::kBool,
                    .def = "true",
                    .doc = "before/after evidence chips for the P1 and P2 patches"}},
       .writes = {"chips/"},
       .run = patches});
  s.push_back(
      {.name = "zonal",
       .doc = "per-parcel NDVI, change and encroachment indicators (exact coverage), "
              "alert levels, the summary by township and village",
       .options = {{.key = "steps.zonal.coverage",
                    .type = OptType::kChoice,
                    .def = "exact",
                    .doc = "exact, center or all_touched",
                    .choices = {"exact", "center", "all_touched"}},
                   {.key = "steps.zonal.vegetated_ndvi",
                    .type = OptType::kNumber,
                    .def = "0.3",
                    .doc = "NDVI above which a cell is vegetated",
                    .min = -1,
                    .max = 1},
                   {.key = "steps.zonal.alarm_mu",
                    .type = OptType::kNumber,
                    .def = "1",
                    .doc = "alarm: encroachment on basic farmland, mu",
                    .min = 0},
                   {.key = "steps.zonal.alarm_ratio",
                    .type = OptType::kNumber,
                    .def = "0.1",
                    .doc = "alarm: encroached share of the parcel",
                    .min = 0,
                    .max = 1}},
       .writes = {"parcels.geojson", "parcels.csv", "summary_by_township.csv", "farmwatch.gpkg"},
       .run = zonal});
  s.push_back(
      {.name = "history",
       .doc = "run-to-run case tracking (new, persisting, expanded, resolved, unobserved), "
              "confidence, due dates and overdue flags, per-parcel cloud-blocked runs; kept in "
              "a GeoPackage or PostGIS store",
       .options = {{.key = "history.store",
                    .type = OptType::kPath,
                    .doc = "the history store: a GeoPackage path (created when absent) or a "
                           "PostgreSQL connection string 'PG:host=... dbname=... "
                           "[active_schema=...]'; unset: the run keeps no history"},
                   {.key = "history.run_date",
                    .doc = "this run's date (YYYY-MM-DD); default inputs.after.date, else today",
                    .check =
                        [](const std::string& t) {
                          return error_of([&] { history::parse_date(t, "history.run_date"); });
                        }},
                   {.key = "history.iou",
                    .type = OptType::kNumber,
                    .def = "0.3",
                    .doc = "a patch continues a case when their intersection over union is at "
                           "least this (same category family)",
                    .min = 0.01,
                    .max = 1},
                   {.key = "history.contained",
                    .type = OptType::kNumber,
                    .def = "0.5",
                    .doc = "...or when at least this share of the case lies inside the patch "
                           "(a case that grew a lot)",
                    .min = 0.01,
                    .max = 1},
                   {.key = "history.expanded",
                    .type = OptType::kNumber,
                    .def = "0.2",
                    .doc = "a continued case is expanded when its area grew by more than this "
                           "share",
                    .min = 0},
                   {.key = "history.observed",
                    .type = OptType::kNumber,
                    .def = "0.5",
                    .doc = "an undetected case is resolved when at least this share of it was "
                           "cloud-free, unobserved otherwise",
                    .min = 0,
                    .max = 1},
                   {.key = "history.due_days",
                    .def = "7,30,90",
                    .doc = "days to act on P1, P2, P3 cases, from their first detection",
                    .check =
                        [](const std::string& t) {
                          return error_of([&] { history::parse_due_days(t); });
                        }},
                   {.key = "history.families",
                    .type = OptType::kList,
                    .def = "built_up: construction|bare_soil",
                    .doc = "category families matched across runs (other categories match only "
                           "themselves): 'built_up: construction|bare_soil'",
                    .check =
                        [](const std::string& t) {
                          return error_of([&] {
                            std::map<std::string, std::string> m;
                            history::parse_family(t, m);
                            for (const auto& [cat, fam] : m) {
                              const std::string e = check_category(cat);
                              if (!e.empty()) throw_usage("family '" + t + "': " + e);
                            }
                          });
                        }}},
       .writes = {"history.csv", "parcel_history.csv", "the store"},
       .run = history_stage});
  s.push_back({.name = "writers",
               .doc = "the patch layers (with their history), then the run folder, swapped in "
                      "whole when complete",
               .options = {{.key = "outputs.dir",
                            .type = OptType::kPath,
                            .def = "farmwatch-output",
                            .doc = "the run folder (relative to the pipeline file)"}},
               .writes = {"patches.geojson", "patches.csv", "farmwatch.gpkg (layer patches)",
                          "manifest.json"},
               .run = writers});
  s.push_back({.name = "styles",
               .doc = "QGIS styles (.qml) beside the class rasters and the vector outputs",
               .options = {},
               .writes = {"*.qml"},
               .run = styles});
  s.push_back({.name = "report",
               .doc = "report.html (self-contained) and quicklook.png",
               .options = {{.key = "steps.report.title",
                            .def = "farmwatch monitoring report",
                            .doc = "the report's title"},
                           {.key = "steps.report.top",
                            .type = OptType::kInt,
                            .def = "12",
                            .doc = "top-priority patches shown with their chips",
                            .min = 0,
                            .max = 1000}},
               .writes = {"report.html", "quicklook.png"},
               .run = report});
  return s;
}

}  // namespace

std::function<int64_t(const Window&)> shard_weights(
    const vectors::ParcelSet& set, const Grid& grid,
    std::shared_ptr<const rasters::ValidSamples> valid) {
  auto centres = std::make_shared<std::vector<std::pair<double, double>>>();  // (row, col)
  for (const auto& p : set.parcels) {
    OGREnvelope e;
    p.geom->getEnvelope(&e);
    double col = 0, row = 0;
    grid.transform().world_to_pixel(0.5 * (e.MinX + e.MaxX), 0.5 * (e.MinY + e.MaxY), col, row);
    centres->emplace_back(row, col);
  }
  std::sort(centres->begin(), centres->end());
  return [centres, valid](const Window& w) {
    auto it = std::lower_bound(centres->begin(), centres->end(),
                               std::pair<double, double>{static_cast<double>(w.y), -1e300});
    int64_t n = 0;
    for (; it != centres->end() && it->first < static_cast<double>(w.y + w.h); ++it)
      n += it->second >= static_cast<double>(w.x) && it->second < static_cast<double>(w.x + w.w);
    // Masked pixels are still read and written: a quarter of a valid one.
    const int64_t ok = valid ? valid->valid_pixels(w) : w.pixels();
    return ok + (w.pixels() - ok) / 4 + 10000 * n;
  };
}

const std::vector<StageSpec>& stages() {
  static const std::vector<StageSpec> s = build();
  return s;
}

const StageSpec* find_stage(const std::string& name) {
  for (const auto& s : stages()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::vector<const OptionSpec*> all_options() {
  std::vector<const OptionSpec*> v;
  for (const auto& s : stages()) {
    for (const auto& o : s.options) v.push_back(&o);
  }
  return v;
}

}  // namespace fw::pipelines
