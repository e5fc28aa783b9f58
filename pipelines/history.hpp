// History and timeliness (分时效): what each run's patches are against the earlier runs' cases.
//
// A monitoring area keeps a store (pipelines/history_store.hpp): a GeoPackage, or PostgreSQL +
// PostGIS. Each run's patches are matched to the store's open cases by overlap (intersection
// over union at least `iou`, or at least `contained` of the earlier case inside the new patch,
// same category family), one to one, best overlap first. A matched case is `persisting`, or
// `expanded` when its area grew by more than `expanded`; an unmatched patch opens a `new` case;
// an open case left unmatched is `resolved` when at least `observed` of its area was cloud-free
// this run, `merged` when the run's patches of its family cover at least `contained` of it, and
// `unobserved` otherwise (still open). Confidence rises with consecutive detections (low, high,
// highest); a run that could not see the case does not break the streak. Due dates come from the
// priority (P1 7 days, P2 30, P3 90 by default) counted from the first detection; `overdue` when
// the run's date is past it while the case is open. Cases confirmed legal or found false by field
// verification are not alerted again: patches matching them get status `verified`.
//
// The update of a run is one transaction; a run already in the store (same run key: inputs,
// configuration and software) is not recorded twice: its recorded outcome is read back instead.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/gdal_handles.hpp"
#include "engine/scheduler.hpp"
#include "vectors/indicators.hpp"
#include "vectors/patches.hpp"

namespace fw::pipelines::history {

// Calendar dates as "YYYY-MM-DD".
// Days since 1970-01-01; throws fw::Error (usage) naming `what` when `text` is not a real date.
int64_t parse_date(const std::string& text, const std::string& what = "date");
std::string format_date(int64_t days);
std::string today_utc();
std::string now_utc();  // "2026-11-28T23:47:03Z"

// A store (or any text holding connection strings) fit to show: "password=..." masked as
// "password=***".
std::string display_name(std::string store);

struct Settings {
  std::string store;       // GeoPackage path or "PG:..." connection string
  std::string run_date;    // this run's date (YYYY-MM-DD)
  double iou = 0.3;        // a match: intersection over union at least this...
  double contained = 0.5;  // ...or at least this share of the earlier case inside the patch
  double expanded = 0.2;   // area grown by more than this share: expanded
  double observed = 0.5;   // an undetected case is resolved when this share of it was seen
  std::array<int, 3> due_days{7, 30, 90};     // P1, P2, P3
  std::map<std::string, std::string> family;  // category -> family (default: itself)
};
// construction and bare_soil share the family built_up (a site is bare before it is built).
std::map<std::string, std::string> default_families();
// "built_up: construction|bare_soil" -> entries of the map; throws fw::Error (usage).
void parse_family(const std::string& text, std::map<std::string, std::string>& family);
// "7,30,90"; throws fw::Error (usage).
std::array<int, 3> parse_due_days(const std::string& text);

// A case: one change followed from run to run.
struct Track {
  int64_t fid = -1;  // in the store (-1: new)
  std::string track_id, category, family, status, confidence;
  std::string first_seen, last_seen, due_date, patch_id, township, village;
  bool open = true, suppressed = false, overdue = false;
  int priority = 3, times_seen = 0, consecutive = 0, days_open = 0;
  double area_m2 = 0, first_area_m2 = 0;
  int64_t last_run = 0;
  std::string verification_result, legal, verified_by, verified_at, remarks;
  GeometryPtr geom;  // in the store's CRS
};

// One case's outcome in one run: a row of history.csv and of the store's observations.
struct Observation {
  std::string track_id, patch_id, category, status, confidence, first_seen, last_seen, due_date;
  std::string verification_result, legal;
  int priority = 3, times_seen = 0, days_open = 0;
  bool overdue = false, alert = true;
  double area_m2 = 0, previous_area_m2 = 0, observed_fraction = 0;
};

// A parcel's row of the indicator time series.
struct ParcelRow {
  std::string parcel_id;
  double valid_fraction = 0, ndvi_t0 = 0, ndvi_t1 = 0, ndvi_delta = 0, encroach_area_m2 = 0;
  int alert = 0;
  bool cloud_blocked = false;
  int blocked_runs = 0;  // consecutive runs cloud-blocked, this one included
};

struct Counts {
  int64_t new_cases = 0, persisting = 0, expanded = 0, resolved = 0, unobserved = 0, merged = 0;
  int64_t verified = 0, overdue = 0, open = 0;
};

struct Result {
  std::string store, run_date;
  int64_t run_id = 0;
  bool replayed = false;                        // the store already held this run
  std::vector<Observation> observations;        // every case touched, by track id
  std::map<std::string, std::size_t> by_patch;  // patch id -> index in observations
  std::vector<ParcelRow> parcels;
  Counts counts;
};

// The pure tracking step. `tracks`: the store's open and suppressed cases (updated in place;
// new cases appended). `patches`: this run's patches, geometries in the store's CRS.
// `observed(geoms)`: the cloud-free share of each geometry (store CRS) this run.
struct CurrentPatch {
  std::string patch_id, category, township, village;
  int priority = 3;
  double area_m2 = 0;
  const OGRGeometry* geom = nullptr;
};
std::vector<Observation> track(
    const Settings& settings, int64_t run_id, std::vector<Track>& tracks,
    const std::vector<CurrentPatch>& patches,
    const std::function<std::vector<double>(const std::vector<const OGRGeometry*>&)>& observed);

// What a run gives the history.
struct RunInput {
  std::string run_key;
  const vectors::PatchSet* patches = nullptr;
  std::string change_class;  // this run's change map: its no-data cells are unobserved
  const vectors::ParcelSet* parcels = nullptr;
  const vectors::Indicators* indicators = nullptr;
  std::string pipeline;  // for the runs table
};

// Records the run in the store (one transaction) and returns every case's outcome. Throws
// fw::Error: usage (a run date not after the store's last run), input (an unreadable store, a
// newer schema), output (the store refused the update: nothing of the run is kept).
Result record_run(const Settings& settings, const RunInput& input,
                  const SchedulerOptions& scheduler = {});

// The columns the run's patch outputs gain, and a patch's values for them.
const std::vector<FieldDef>& patch_fields();
std::vector<std::string> patch_values(const Result& result, const std::string& patch_id);

// history.csv: one row per case touched by the run.
std::string history_csv(const Result& result);
// parcel_history.csv: per parcel, cloud-blocked this run and for how many runs in a row.
std::string parcel_history_csv(const Result& result);

// What a store holds, as CSV text (`farmwatch history`): every run with its counts; the cases
// (open and alerted ones only, or all); one parcel's indicator series, run by run. Throws
// fw::Error (input) when there is no store or no such parcel.
std::string runs_csv(const std::string& store);
std::string cases_csv(const std::string& store, bool all_cases);
std::string parcel_series_csv(const std::string& store, const std::string& parcel_id);

// Field verification. Export: the open cases (or every case) with empty verification fields,
// as .gpkg, .geojson, .csv or .shp by the file's extension. Import: reads such a file (any OGR
// format with a track_id field), checks every row (known track ids; verification_result one of
// confirmed, false_alarm, pending; legal one of yes, no, unknown; verified_at a date) and applies
// them all in one transaction, or nothing with an error listing every problem.
struct ExportReport {
  int64_t cases = 0;
};
ExportReport export_verification(const std::string& store, const std::string& path, bool all_cases);
struct ImportReport {
  int64_t rows = 0, applied = 0, closed = 0, unchanged = 0;
};
ImportReport import_verification(const std::string& store, const std::string& path);

}  // namespace fw::pipelines::history
