#include "pipelines/history_store.hpp"

#include <cpl_error.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/error.hpp"
#include "engine/log.hpp"

namespace fw::pipelines::history {
namespace {

namespace fs = std::filesystem;

struct Col {
  const char* name;
  OGRFieldType type;
};

// The schema, per version: tables created by a version, and columns a version adds to a table
// created earlier.
const std::vector<Col> kMetaCols = {{"key", OFTString}, {"value", OFTString}};
const std::vector<Col> kRunCols = {
    {"run_id", OFTInteger64},  {"run_key", OFTString},     {"run_date", OFTDate},
    {"finished", OFTString},   {"pipeline", OFTString},    {"patches", OFTInteger},
    {"new_cases", OFTInteger}, {"persisting", OFTInteger}, {"expanded", OFTInteger},
    {"resolved", OFTInteger},  {"unobserved", OFTInteger}, {"merged", OFTInteger},
    {"verified", OFTInteger},  {"overdue", OFTInteger},    {"open_cases", OFTInteger}};
const std::vector<Col> kTrackCols = {
    {"track_id", OFTString},    {"category", OFTString},     {"family", OFTString},
    {"status", OFTString},      {"confidence", OFTString},   {"first_seen", OFTDate},
    {"last_seen", OFTDate},     {"due_date", OFTDate},       {"patch_id", OFTString},
    {"township", OFTString},    {"village", OFTString},      {"is_open", OFTInteger},
    {"suppressed", OFTInteger}, {"overdue", OFTInteger},     {"priority", OFTInteger},
    {"times_seen", OFTInteger}, {"consecutive", OFTInteger}, {"days_open", OFTInteger},
    {"area_m2", OFTReal},       {"first_area_m2", OFTReal},  {"last_run", OFTInteger64}};
const std::vector<Col> kTrackColsV2 = {{"verification_result", OFTString},
                                       {"legal", OFTString},
                                       {"verified_by", OFTString},
                                       {"verified_at", OFTDate},
                                       {"remarks", OFTString}};
const std::vector<Col> kObsCols = {
    {"run_id", OFTInteger64},      {"track_id", OFTString},       {"patch_id", OFTString},
    {"category", OFTString},       {"status", OFTString},         {"confidence", OFTString},
    {"first_seen", OFTDate},       {"last_seen", OFTDate},        {"due_date", OFTDate},
    {"priority", OFTInteger},      {"times_seen", OFTInteger},    {"days_open", OFTInteger},
    {"overdue", OFTInteger},       {"alert", OFTInteger},         {"area_m2", OFTReal},
    {"previous_area_m2", OFTReal}, {"observed_fraction", OFTReal}};
const std::vector<Col> kObsColsV2 = {{"verification_result", OFTString}, {"legal", OFTString}};
const std::vector<Col> kParcelCols = {{"run_id", OFTInteger64},      {"parcel_id", OFTString},
                                      {"valid_fraction", OFTReal},   {"ndvi_t0", OFTReal},
                                      {"ndvi_t1", OFTReal},          {"ndvi_delta", OFTReal},
                                      {"encroach_area_m2", OFTReal}, {"alert", OFTInteger},
                                      {"cloud_blocked", OFTInteger}, {"blocked_runs", OFTInteger}};
const std::vector<Col> kVerifCols = {{"track_id", OFTString},  {"verification_result", OFTString},
                                     {"legal", OFTString},     {"verified_by", OFTString},
                                     {"verified_at", OFTDate}, {"remarks", OFTString},
                                     {"source", OFTString},    {"imported", OFTString}};

// Test hook: FW_TEST_KILL_IN_HISTORY=N kills the process (SIGKILL) after the N-th feature
// written inside a run's transaction, to prove a killed update leaves the store as it was.
int64_t kill_after() {
  static const int64_t n = [] {
    const char* v = std::getenv("FW_TEST_KILL_IN_HISTORY");
    return v ? std::atoll(v) : int64_t{0};
  }();
  return n;
}

int idx(const OGRFeature& f, const char* name) {
  const int i = f.GetFieldIndex(name);
  if (i < 0) throw_internal(std::string("history store: no column ") + name);
  return i;
}
void set_text(OGRFeature& f, const char* name, const std::string& v) {
  const int i = idx(f, name);
  if (v.empty()) {
    f.SetFieldNull(i);
  } else {
    f.SetField(i, v.c_str());
  }
}
void set_int(OGRFeature& f, const char* name, int64_t v) {
  f.SetField(idx(f, name), static_cast<GIntBig>(v));
}
void set_real(OGRFeature& f, const char* name, double v) {
  const int i = idx(f, name);
  if (std::isfinite(v)) {
    f.SetField(i, v);
  } else {
    f.SetFieldNull(i);
  }
}
void set_date(OGRFeature& f, const char* name, const std::string& v) {
  const int i = idx(f, name);
  if (v.empty()) {
    f.SetFieldNull(i);
    return;
  }
  int y = 0, m = 0, d = 0;
  std::sscanf(v.c_str(), "%d-%d-%d", &y, &m, &d);
  f.SetField(i, y, m, d, 0, 0, 0.0f, 0);
}
std::string text(const OGRFeature& f, const char* name) {
  const int i = f.GetFieldIndex(name);
  return i >= 0 && f.IsFieldSetAndNotNull(i) ? f.GetFieldAsString(i) : "";
}
int64_t integer(const OGRFeature& f, const char* name) {
  const int i = f.GetFieldIndex(name);
  return i >= 0 && f.IsFieldSetAndNotNull(i) ? f.GetFieldAsInteger64(i) : 0;
}
double real(const OGRFeature& f, const char* name) {
  const int i = f.GetFieldIndex(name);
  return i >= 0 && f.IsFieldSetAndNotNull(i) ? f.GetFieldAsDouble(i)
                                             : std::numeric_limits<double>::quiet_NaN();
}
std::string date(const OGRFeature& f, const char* name) {
  const int i = f.GetFieldIndex(name);
  if (i < 0 || !f.IsFieldSetAndNotNull(i)) return "";
  int y = 0, m = 0, d = 0, hh = 0, mm = 0, tz = 0;
  float ss = 0;
  f.GetFieldAsDateTime(i, &y, &m, &d, &hh, &mm, &ss, &tz);
  char b[16];
  std::snprintf(b, sizeof b, "%04d-%02d-%02d", y, m, d);
  return b;
}

void set_counts(OGRFeature& f, const Counts& c) {
  set_int(f, "new_cases", c.new_cases);
  set_int(f, "persisting", c.persisting);
  set_int(f, "expanded", c.expanded);
  set_int(f, "resolved", c.resolved);
  set_int(f, "unobserved", c.unobserved);
  set_int(f, "merged", c.merged);
  set_int(f, "verified", c.verified);
  set_int(f, "overdue", c.overdue);
  set_int(f, "open_cases", c.open);
}

RunRow run_row(const OGRFeature& f) {
  RunRow r;
  r.run_id = integer(f, "run_id");
  r.run_key = text(f, "run_key");
  r.run_date = date(f, "run_date");
  r.finished = text(f, "finished");
  r.pipeline = text(f, "pipeline");
  r.counts.new_cases = integer(f, "new_cases");
  r.counts.persisting = integer(f, "persisting");
  r.counts.expanded = integer(f, "expanded");
  r.counts.resolved = integer(f, "resolved");
  r.counts.unobserved = integer(f, "unobserved");
  r.counts.merged = integer(f, "merged");
  r.counts.verified = integer(f, "verified");
  r.counts.overdue = integer(f, "overdue");
  r.counts.open = integer(f, "open_cases");
  return r;
}

void fill_track(OGRFeature& f, const Track& t, int version) {
  set_text(f, "track_id", t.track_id);
  set_text(f, "category", t.category);
  set_text(f, "family", t.family);
  set_text(f, "status", t.status);
  set_text(f, "confidence", t.confidence);
  set_date(f, "first_seen", t.first_seen);
  set_date(f, "last_seen", t.last_seen);
  set_date(f, "due_date", t.due_date);
  set_text(f, "patch_id", t.patch_id);
  set_text(f, "township", t.township);
  set_text(f, "village", t.village);
  set_int(f, "is_open", t.open);
  set_int(f, "suppressed", t.suppressed);
  set_int(f, "overdue", t.overdue);
  set_int(f, "priority", t.priority);
  set_int(f, "times_seen", t.times_seen);
  set_int(f, "consecutive", t.consecutive);
  set_int(f, "days_open", t.days_open);
  set_real(f, "area_m2", t.area_m2);
  set_real(f, "first_area_m2", t.first_area_m2);
  set_int(f, "last_run", t.last_run);
  if (version >= 2) {
    set_text(f, "verification_result", t.verification_result);
    set_text(f, "legal", t.legal);
    set_text(f, "verified_by", t.verified_by);
    set_date(f, "verified_at", t.verified_at);
    set_text(f, "remarks", t.remarks);
  }
}

Track read_track(OGRFeature& f) {
  Track t;
  t.fid = f.GetFID();
  t.track_id = text(f, "track_id");
  t.category = text(f, "category");
  t.family = text(f, "family");
  t.status = text(f, "status");
  t.confidence = text(f, "confidence");
  t.first_seen = date(f, "first_seen");
  t.last_seen = date(f, "last_seen");
  t.due_date = date(f, "due_date");
  t.patch_id = text(f, "patch_id");
  t.township = text(f, "township");
  t.village = text(f, "village");
  t.open = integer(f, "is_open") != 0;
  t.suppressed = integer(f, "suppressed") != 0;
  t.overdue = integer(f, "overdue") != 0;
  t.priority = static_cast<int>(integer(f, "priority"));
  t.times_seen = static_cast<int>(integer(f, "times_seen"));
  t.consecutive = static_cast<int>(integer(f, "consecutive"));
  t.days_open = static_cast<int>(integer(f, "days_open"));
  t.area_m2 = real(f, "area_m2");
  t.first_area_m2 = real(f, "first_area_m2");
  t.last_run = integer(f, "last_run");
  t.verification_result = text(f, "verification_result");
  t.legal = text(f, "legal");
  t.verified_by = text(f, "verified_by");
  t.verified_at = date(f, "verified_at");
  t.remarks = text(f, "remarks");
  if (OGRGeometry* g = f.StealGeometry()) t.geom.reset(g);
  return t;
}

ParcelRow read_parcel(const OGRFeature& f) {
  ParcelRow p;
  p.parcel_id = text(f, "parcel_id");
  p.valid_fraction = real(f, "valid_fraction");
  p.ndvi_t0 = real(f, "ndvi_t0");
  p.ndvi_t1 = real(f, "ndvi_t1");
  p.ndvi_delta = real(f, "ndvi_delta");
  p.encroach_area_m2 = real(f, "encroach_area_m2");
  p.alert = static_cast<int>(integer(f, "alert"));
  p.cloud_blocked = integer(f, "cloud_blocked") != 0;
  p.blocked_runs = static_cast<int>(integer(f, "blocked_runs"));
  return p;
}

// The rows of a table that pass `where` ("" = all), read by `read`, sorted by `key`.
template <class T, class Read, class Key>
std::vector<T> select(OGRLayer* l, const std::string& where, Read read, Key key) {
  l->SetAttributeFilter(where.empty() ? nullptr : where.c_str());
  l->ResetReading();
  std::vector<T> out;
  for (auto& f : *l) out.push_back(read(*f));
  l->SetAttributeFilter(nullptr);
  std::sort(out.begin(), out.end(), [&](const T& a, const T& b) { return key(a) < key(b); });
  return out;
}

// Silences GDAL's error handler for probes whose failure is expected (a table not there yet).
struct Quiet {
  Quiet() { CPLPushErrorHandler(CPLQuietErrorHandler); }
  ~Quiet() {
    CPLPopErrorHandler();
    CPLErrorReset();
  }
};

}  // namespace

std::unique_ptr<Store> Store::open_existing(const std::string& where, bool writer) {
  if (where.rfind("PG:", 0) != 0 && !fs::exists(where))
    throw_input("no history store here (a run with history.store creates it)",
                {.file = display_name(where)});
  return open(where, Crs{}, kSchemaVersion, writer);
}

std::unique_ptr<Store> Store::open(const std::string& where, const Crs& crs, int version,
                                   bool writer) {
  init_gdal();
  std::unique_ptr<Store> s(new Store());
  s->where_ = where;
  s->name_ = display_name(where);
  s->pg_ = where.rfind("PG:", 0) == 0;
  if (s->pg_) {
    s->ds_.reset(static_cast<GDALDataset*>(
        GDALOpenEx(where.c_str(), GDAL_OF_VECTOR | GDAL_OF_UPDATE, nullptr, nullptr, nullptr)));
    if (!s->ds_)
      throw_input("cannot open the PostgreSQL history store: " + last_gdal_error(),
                  {.file = display_name(where)});
  } else {
    const bool exists = fs::exists(where);
    if (exists) {
      s->ds_.reset(static_cast<GDALDataset*>(
          GDALOpenEx(where.c_str(), GDAL_OF_VECTOR | GDAL_OF_UPDATE, nullptr, nullptr, nullptr)));
      if (!s->ds_)
        throw_input("not a GeoPackage history store: " + last_gdal_error(),
                    {.file = display_name(where)});
    } else {
      const fs::path parent = fs::path(where).parent_path();
      std::error_code ec;
      if (!parent.empty()) fs::create_directories(parent, ec);
      s->ds_.reset(driver("GPKG").Create(where.c_str(), 0, 0, 0, GDT_Unknown, nullptr));
      if (!s->ds_)
        throw_output("cannot create the history store: " + last_gdal_error(),
                     {.file = display_name(where)});
    }
  }
  if (writer) s->lock();
  // The schema version.
  OGRLayer* meta = nullptr;
  {
    Quiet q;
    meta = s->ds_->GetLayerByName("fw_meta");
  }
  if (meta) {
    meta->ResetReading();
    for (auto& f : *meta) {
      if (text(*f, "key") == "schema_version") s->version_ = std::atoi(text(*f, "value").c_str());
    }
    if (s->version_ > kSchemaVersion)
      throw_input("the history store has schema version " + std::to_string(s->version_) +
                      "; this farmwatch knows versions up to " + std::to_string(kSchemaVersion) +
                      " (use a newer farmwatch)",
                  {.file = display_name(where)});
  } else if (crs.empty()) {
    throw_input("not a farmwatch history store (no fw_meta table)", {.file = display_name(where)});
  } else if (!s->pg_ && s->ds_->GetLayerCount() > 0) {
    // Someone's GeoPackage (the parcels?): never write our tables into it.
    throw_usage("this GeoPackage holds other layers (" +
                    std::string(s->ds_->GetLayer(0)->GetName()) +
                    "...) and no farmwatch history: give history.store a file of its own",
                {.file = display_name(where)});
  }
  if (OGRLayer* t = s->version_ > 0 ? s->layer("fw_tracks") : nullptr)
    s->crs_ = Crs::from_ogr(t->GetSpatialRef());
  if (s->version_ == 0) s->crs_ = crs;
  if (writer && s->version_ < version) s->migrate(version);
  return s;
}

Store::~Store() {
  if (in_tx_) rollback();
  ds_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void Store::lock() {
  if (pg_) {
    OGRLayer* r = ds_->ExecuteSQL("SELECT pg_try_advisory_lock(hashtext(current_schema())) AS ok",
                                  nullptr, nullptr);
    std::string ok;
    if (r) {
      if (FeaturePtr f{r->GetNextFeature()}) ok = f->GetFieldAsString(0);
      ds_->ReleaseResultSet(r);
    }
    if (ok.empty())
      throw_input("cannot lock the history store: " + last_gdal_error(), {.file = name_});
    if (ok != "1" && ok != "t" && ok != "true")
      throw Error(ExitCode::kLocked, "another farmwatch run is updating this history store",
                  {.file = name_});
    return;
  }
  const std::string path = where_ + ".lock";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    throw_output("cannot create the history store's lock: " + std::string(std::strerror(errno)),
                 {.file = path});
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
    throw Error(ExitCode::kLocked, "another farmwatch run is updating this history store",
                {.file = name_});
}

void Store::begin() {
  if (ds_->StartTransaction(FALSE) != OGRERR_NONE)
    throw_output("cannot start a transaction: " + last_gdal_error(), {.file = name_});
  in_tx_ = true;
}

void Store::commit() {
  in_tx_ = false;
  if (ds_->CommitTransaction() != OGRERR_NONE)
    throw_output(
        "the history store refused the update (nothing of it was kept): " + last_gdal_error(),
        {.file = name_});
}

void Store::rollback() noexcept {
  in_tx_ = false;
  ds_->RollbackTransaction();
}

OGRLayer* Store::layer(const std::string& name) {
  OGRLayer* l = nullptr;
  {
    Quiet q;
    l = ds_->GetLayerByName(name.c_str());
  }
  if (!l)
    throw_input("the history store lacks its table " + name + " (not a farmwatch store?)",
                {.file = name_});
  return l;
}

void Store::migrate(int to) {
  const int from = version_;
  begin();
  try {
    auto create = [&](const char* name, const std::vector<Col>& cols, bool spatial) {
      GdalOptions opts{"FID=fid"};
      if (spatial) opts.add("GEOMETRY_NAME=geom");
      OGRSpatialReference* srs = nullptr;
      if (spatial && crs_.ogr()) srs = crs_.ogr()->Clone();
      OGRLayer* l = ds_->CreateLayer(name, srs, spatial ? wkbMultiPolygon : wkbNone, opts.get());
      if (srs) srs->Release();
      if (!l)
        throw_output(std::string("cannot create table ") + name + ": " + last_gdal_error(),
                     {.file = name_});
      for (const auto& c : cols) {
        OGRFieldDefn d(c.name, c.type);
        if (l->CreateField(&d) != OGRERR_NONE)
          throw_output(std::string("cannot create column ") + name + "." + c.name, {.file = name_});
      }
      return l;
    };
    auto add = [&](const char* name, const std::vector<Col>& cols) {
      OGRLayer* l = layer(name);
      for (const auto& c : cols) {
        OGRFieldDefn d(c.name, c.type);
        if (l->CreateField(&d) != OGRERR_NONE)
          throw_output(std::string("cannot add column ") + name + "." + c.name, {.file = name_});
      }
    };
    // Indexes on what each run looks up, so a store of many runs stays quick.
    auto index = [&](const char* table, const char* column) {
      const std::string sql = std::string("CREATE INDEX IF NOT EXISTS ") + table + "_" + column +
                              " ON " + table + " (" + column + ")";
      CPLErrorReset();
      OGRLayer* r = ds_->ExecuteSQL(sql.c_str(), nullptr, nullptr);
      if (r) ds_->ReleaseResultSet(r);
      if (CPLGetLastErrorType() >= CE_Failure)
        throw_output("cannot create an index on " + std::string(table) + ": " + last_gdal_error(),
                     {.file = name_});
    };
    if (from < 1 && to >= 1) {
      if (crs_.empty()) throw_internal("a new history store needs a CRS");
      OGRLayer* meta = create("fw_meta", kMetaCols, false);
      for (const auto& [k, v] :
           {std::pair<std::string, std::string>{"schema_version", "0"}, {"created", now_utc()}}) {
        OGRFeature f(meta->GetLayerDefn());
        f.SetField("key", k.c_str());
        f.SetField("value", v.c_str());
        if (meta->CreateFeature(&f) != OGRERR_NONE)
          throw_output("cannot write fw_meta: " + last_gdal_error(), {.file = name_});
      }
      create("fw_runs", kRunCols, false);
      create("fw_tracks", kTrackCols, true);
      create("fw_observations", kObsCols, false);
      // PostgreSQL creates a table when its first row or the transaction's end comes: flush the
      // deferred creations before indexing them.
      ds_->FlushCache();
      index("fw_runs", "run_key");
      index("fw_tracks", "track_id");
      index("fw_tracks", "is_open");
      index("fw_observations", "run_id");
    }
    if (from < 2 && to >= 2) {
      add("fw_tracks", kTrackColsV2);
      add("fw_observations", kObsColsV2);
      create("fw_parcel_series", kParcelCols, false);
      create("fw_verifications", kVerifCols, false);
      ds_->FlushCache();
      index("fw_parcel_series", "run_id");
    }
    OGRLayer* meta = layer("fw_meta");
    meta->ResetReading();
    bool done = false;
    for (auto& f : *meta) {
      if (text(*f, "key") == "schema_version") {
        f->SetField("value", std::to_string(to).c_str());
        if (meta->SetFeature(f.get()) != OGRERR_NONE)
          throw_output("cannot write fw_meta: " + last_gdal_error(), {.file = name_});
        done = true;
      }
    }
    if (!done) throw_internal("fw_meta lacks schema_version");
    commit();
  } catch (...) {
    if (in_tx_) rollback();
    throw;
  }
  if (from > 0)
    log::info("history store migrated",
              {{"store", name_}, {"from", std::to_string(from)}, {"to", std::to_string(to)}});
  version_ = to;
}

std::optional<RunRow> Store::find_run(const std::string& run_key) {
  OGRLayer* l = layer("fw_runs");
  l->SetAttributeFilter(("run_key = '" + run_key + "'").c_str());
  l->ResetReading();
  std::optional<RunRow> r;
  for (auto& f : *l) r = run_row(*f);
  l->SetAttributeFilter(nullptr);
  return r;
}

std::optional<RunRow> Store::last_run() {
  OGRLayer* l = layer("fw_runs");
  l->ResetReading();
  std::optional<RunRow> r;
  for (auto& f : *l) {
    RunRow x = run_row(*f);
    if (!r || x.run_id > r->run_id) r = x;
  }
  return r;
}

std::vector<Track> Store::load_tracks(bool all) {
  return select<Track>(layer("fw_tracks"), all ? "" : "is_open = 1 OR suppressed = 1", read_track,
                       [](const Track& t) -> const std::string& { return t.track_id; });
}

std::vector<Observation> Store::load_observations(int64_t run_id) {
  return select<Observation>(
      layer("fw_observations"), "run_id = " + std::to_string(run_id),
      [](const OGRFeature& f) {
        Observation o;
        o.track_id = text(f, "track_id");
        o.patch_id = text(f, "patch_id");
        o.category = text(f, "category");
        o.status = text(f, "status");
        o.confidence = text(f, "confidence");
        o.first_seen = date(f, "first_seen");
        o.last_seen = date(f, "last_seen");
        o.due_date = date(f, "due_date");
        o.priority = static_cast<int>(integer(f, "priority"));
        o.times_seen = static_cast<int>(integer(f, "times_seen"));
        o.days_open = static_cast<int>(integer(f, "days_open"));
        o.overdue = integer(f, "overdue") != 0;
        o.alert = integer(f, "alert") != 0;
        o.area_m2 = real(f, "area_m2");
        o.previous_area_m2 = real(f, "previous_area_m2");
        o.observed_fraction = real(f, "observed_fraction");
        o.verification_result = text(f, "verification_result");
        o.legal = text(f, "legal");
        return o;
      },
      [](const Observation& o) -> const std::string& { return o.track_id; });
}

std::vector<ParcelRow> Store::load_parcels(int64_t run_id) {
  return select<ParcelRow>(layer("fw_parcel_series"), "run_id = " + std::to_string(run_id),
                           read_parcel,
                           [](const ParcelRow& p) -> const std::string& { return p.parcel_id; });
}

std::vector<RunRow> Store::load_runs() {
  return select<RunRow>(layer("fw_runs"), "", run_row, [](const RunRow& r) { return r.run_id; });
}

std::vector<std::pair<int64_t, ParcelRow>> Store::parcel_series(const std::string& parcel_id) {
  std::string quoted;
  for (char c : parcel_id) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return select<std::pair<int64_t, ParcelRow>>(
      layer("fw_parcel_series"), "parcel_id = '" + quoted + "'",
      [](const OGRFeature& f) {
        return std::pair{integer(f, "run_id"), read_parcel(f)};
      },
      [](const auto& r) { return r.first; });
}

std::unordered_map<std::string, int> Store::blocked_runs(int64_t run_id) {
  // Only the parcels blocked in that run: the others start again from zero.
  OGRLayer* l = layer("fw_parcel_series");
  l->SetAttributeFilter(("run_id = " + std::to_string(run_id) + " AND blocked_runs > 0").c_str());
  l->ResetReading();
  std::unordered_map<std::string, int> m;
  for (auto& f : *l) m[text(*f, "parcel_id")] = static_cast<int>(integer(*f, "blocked_runs"));
  l->SetAttributeFilter(nullptr);
  return m;
}

int64_t Store::count(const std::string& table) {
  return layer(table)->GetFeatureCount(TRUE);
}

void Store::write_run(RunRow& run, std::vector<Track>& tracks,
                      const std::vector<Observation>& observations,
                      const std::vector<ParcelRow>& parcels) {
  int64_t written = 0;
  const int64_t kill_at = kill_after();
  auto step = [&] {
    if (kill_at > 0 && ++written == kill_at) ::raise(SIGKILL);
  };
  auto check = [&](OGRErr e, const char* table) {
    if (e != OGRERR_NONE)
      throw_output(std::string("cannot write ") + table + ": " + last_gdal_error(),
                   {.file = name_});
  };
  // COPY for the inserts into PostgreSQL.
  CPLSetThreadLocalConfigOption("PG_USE_COPY", "YES");
  begin();
  try {
    OGRLayer* runs = layer("fw_runs");
    OGRLayer* tl = layer("fw_tracks");
    OGRLayer* ol = layer("fw_observations");
    OGRLayer* pl = layer("fw_parcel_series");
    // The cases this run changed are replaced: deleted by id in a few statements, then written
    // again with the new ones (in PostgreSQL by COPY, which runs until another statement; a
    // row-by-row UPDATE would cost a round trip per case).
    std::vector<int64_t> replaced;
    for (const Track& t : tracks) {
      if (t.fid >= 0) replaced.push_back(t.fid);
    }
    for (std::size_t i = 0; i < replaced.size(); i += 2000) {
      std::string sql = "DELETE FROM fw_tracks WHERE fid IN (";
      for (std::size_t k = i; k < std::min(replaced.size(), i + 2000); ++k)
        sql += (k > i ? "," : "") + std::to_string(replaced[k]);
      sql += ")";
      CPLErrorReset();
      OGRLayer* r = ds_->ExecuteSQL(sql.c_str(), nullptr, nullptr);
      if (r) ds_->ReleaseResultSet(r);
      if (CPLGetLastErrorType() >= CE_Failure)
        throw_output("cannot update fw_tracks: " + last_gdal_error(), {.file = name_});
      step();
    }
    {
      OGRFeature f(runs->GetLayerDefn());
      set_int(f, "run_id", run.run_id);
      set_text(f, "run_key", run.run_key);
      set_date(f, "run_date", run.run_date);
      set_text(f, "finished", run.finished.empty() ? now_utc() : run.finished);
      set_text(f, "pipeline", run.pipeline);
      set_int(f, "patches", static_cast<int64_t>(observations.size()));
      set_counts(f, run.counts);
      check(runs->CreateFeature(&f), "fw_runs");
      step();
    }
    for (Track& t : tracks) {
      OGRFeature f(tl->GetLayerDefn());
      fill_track(f, t, version_);
      if (t.geom) f.SetGeometry(t.geom.get());
      check(tl->CreateFeature(&f), "fw_tracks");
      step();
    }
    for (const Observation& o : observations) {
      OGRFeature f(ol->GetLayerDefn());
      set_int(f, "run_id", run.run_id);
      set_text(f, "track_id", o.track_id);
      set_text(f, "patch_id", o.patch_id);
      set_text(f, "category", o.category);
      set_text(f, "status", o.status);
      set_text(f, "confidence", o.confidence);
      set_date(f, "first_seen", o.first_seen);
      set_date(f, "last_seen", o.last_seen);
      set_date(f, "due_date", o.due_date);
      set_int(f, "priority", o.priority);
      set_int(f, "times_seen", o.times_seen);
      set_int(f, "days_open", o.days_open);
      set_int(f, "overdue", o.overdue);
      set_int(f, "alert", o.alert);
      set_real(f, "area_m2", o.area_m2);
      set_real(f, "previous_area_m2", o.previous_area_m2);
      set_real(f, "observed_fraction", o.observed_fraction);
      set_text(f, "verification_result", o.verification_result);
      set_text(f, "legal", o.legal);
      check(ol->CreateFeature(&f), "fw_observations");
      step();
    }
    for (const ParcelRow& p : parcels) {
      OGRFeature f(pl->GetLayerDefn());
      set_int(f, "run_id", run.run_id);
      set_text(f, "parcel_id", p.parcel_id);
      set_real(f, "valid_fraction", p.valid_fraction);
      set_real(f, "ndvi_t0", p.ndvi_t0);
      set_real(f, "ndvi_t1", p.ndvi_t1);
      set_real(f, "ndvi_delta", p.ndvi_delta);
      set_real(f, "encroach_area_m2", p.encroach_area_m2);
      set_int(f, "alert", p.alert);
      set_int(f, "cloud_blocked", p.cloud_blocked);
      set_int(f, "blocked_runs", p.blocked_runs);
      check(pl->CreateFeature(&f), "fw_parcel_series");
      step();
    }
    commit();
  } catch (...) {
    if (in_tx_) rollback();
    CPLSetThreadLocalConfigOption("PG_USE_COPY", nullptr);
    throw;
  }
  CPLSetThreadLocalConfigOption("PG_USE_COPY", nullptr);
}

void Store::write_verifications(const std::vector<Verification>& rows, const std::string& source,
                                std::vector<Track>& changed) {
  begin();
  try {
    OGRLayer* vl = layer("fw_verifications");
    OGRLayer* tl = layer("fw_tracks");
    const std::string now = now_utc();
    for (const auto& v : rows) {
      OGRFeature f(vl->GetLayerDefn());
      set_text(f, "track_id", v.track_id);
      set_text(f, "verification_result", v.result);
      set_text(f, "legal", v.legal);
      set_text(f, "verified_by", v.verified_by);
      set_date(f, "verified_at", v.verified_at);
      set_text(f, "remarks", v.remarks);
      set_text(f, "source", source);
      set_text(f, "imported", now);
      if (vl->CreateFeature(&f) != OGRERR_NONE)
        throw_output("cannot write fw_verifications: " + last_gdal_error(), {.file = name_});
    }
    for (Track& t : changed) {
      OGRFeature f(tl->GetLayerDefn());
      f.SetFID(t.fid);
      fill_track(f, t, version_);
      if (t.geom) f.SetGeometry(t.geom.get());
      if (tl->SetFeature(&f) != OGRERR_NONE)
        throw_output("cannot write fw_tracks: " + last_gdal_error(), {.file = name_});
    }
    commit();
  } catch (...) {
    if (in_tx_) rollback();
    throw;
  }
}

}  // namespace fw::pipelines::history
