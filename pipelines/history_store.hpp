// The history store behind one interface: a GeoPackage (one file per monitoring area, opens in
// QGIS) or a PostgreSQL + PostGIS database (a "PG:" connection string, e.g.
// "PG:host=db dbname=farm active_schema=district_a"), both through GDAL's drivers, with the same
// tables, the same types and the same code:
//
//   fw_meta          key, value: schema_version, created
//   fw_runs          run_id, run_key, run_date, finished, pipeline, patches, new_cases, ...
//   fw_tracks        the cases (MultiPolygon, the CRS of the first run): status, first and last
//                    seen, times seen, confidence, due date, overdue, verification fields
//   fw_observations  per run and case: status, area, confidence, due date (history.csv's rows)
//   fw_parcel_series per run and parcel: cloud-free share, NDVI, encroachment, alert, blocked
//   fw_verifications every imported verification row, with the file it came from
//
// Schema versions: 1 (runs, tracks, observations), 2 (parcel series, verifications and the
// verification fields of the cases). Opening an older store migrates it in one transaction; a
// store of a newer version than this build knows is refused. Writers take a lock (flock on a
// GeoPackage's ".lock" sidecar, an advisory lock in PostgreSQL) so two runs never interleave.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/crs.hpp"
#include "engine/gdal_handles.hpp"
#include "pipelines/history.hpp"

namespace fw::pipelines::history {

inline constexpr int kSchemaVersion = 2;

struct RunRow {
  int64_t run_id = 0;
  std::string run_key, run_date, finished, pipeline;
  Counts counts;
};

class Store {
 public:
  // Opens (creating it when absent) and migrates. `crs`: the cases' CRS of a new store.
  // `version`: the schema to create or migrate to (tests make old stores with it).
  // `writer`: takes the store's lock (exit 6 when another run holds it).
  static std::unique_ptr<Store> open(const std::string& where, const Crs& crs,
                                     int version = kSchemaVersion, bool writer = true);
  // Opens an existing store (an error naming it when there is none).
  static std::unique_ptr<Store> open_existing(const std::string& where, bool writer);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schema_version() const { return version_; }
  const Crs& crs() const { return crs_; }

  std::optional<RunRow> find_run(const std::string& run_key);
  std::optional<RunRow> last_run();
  // Open and suppressed cases (all = every case), ordered by track id.
  std::vector<Track> load_tracks(bool all = false);
  std::vector<Observation> load_observations(int64_t run_id);
  std::vector<ParcelRow> load_parcels(int64_t run_id);
  // Every run, by id; one parcel's rows of every run (run id -> row).
  std::vector<RunRow> load_runs();
  std::vector<std::pair<int64_t, ParcelRow>> parcel_series(const std::string& parcel_id);
  // Per parcel: consecutive cloud-blocked runs as of run `run_id`.
  std::unordered_map<std::string, int> blocked_runs(int64_t run_id);
  int64_t count(const std::string& table);

  // One run's update, in one transaction: the run row, the changed and new cases, the
  // observations and the parcel series. On failure nothing is kept (throws fw::Error output).
  void write_run(RunRow& run, std::vector<Track>& tracks,
                 const std::vector<Observation>& observations,
                 const std::vector<ParcelRow>& parcels);
  // Verification rows applied to their cases, in one transaction.
  struct Verification {
    std::string track_id, result, legal, verified_by, verified_at, remarks;
  };
  void write_verifications(const std::vector<Verification>& rows, const std::string& source,
                           std::vector<Track>& changed);

 private:
  Store() = default;
  void begin();
  void commit();
  void rollback() noexcept;
  void migrate(int to);
  OGRLayer* layer(const std::string& name);
  void lock();

  std::string where_, name_;  // name_: where_ without its password, for messages
  bool pg_ = false;
  int version_ = 0;
  Crs crs_;
  DatasetPtr ds_;
  int lock_fd_ = -1;
  bool in_tx_ = false;
};

}  // namespace fw::pipelines::history
