// A monitoring run: the registered stages executed in order into a staging folder beside the
// target, then swapped into place in one step, under a per-folder lock, skipped when nothing
// changed, with a manifest of what went in and what came out.
//
// Nightly safety:
// - outputs are written into `.<name>.staging-<pid>` beside the target and exchanged with it
//   atomically (renameat2 RENAME_EXCHANGE; a plain rename when the target does not exist yet),
//   so a reader never sees a half-written folder and a failed or killed run leaves the previous
//   outputs as they were;
// - `.<name>.lock` beside the target is held with flock for the whole run: a second run exits at
//   once (exit 6) naming the holder; a dead holder's lock is free (the kernel drops it), and its
//   staging folder is removed by the next run;
// - a run whose inputs (content hashes), configuration and software are those of the target's
//   manifest is skipped unless forced.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/scheduler.hpp"
#include "pipelines/config.hpp"
#include "pipelines/ecology_run.hpp"
#include "pipelines/history.hpp"
#include "pipelines/patch_run.hpp"
#include "rasters/change.hpp"
#include "rasters/imagery.hpp"
#include "vectors/indicators.hpp"
#include "vectors/parcels.hpp"

namespace fw::pipelines {

// What the stages share while a run is under way.
struct RunContext {
  const Config& cfg;
  std::string dir;  // the staging folder
  SchedulerOptions so;
  std::optional<rasters::Imagery> before, after;
  Grid grid;
  std::optional<vectors::ParcelSet> parcels, zones, admin;
  vectors::ZoneOptions zone_options;
  std::string ndvi_before, ndvi_after;  // written by the indices stage
  std::optional<rasters::ChangeResult> change;
  std::optional<EcologyRunResult> ecology;  // when zones or a DEM are given
  std::optional<vectors::Indicators> indicators;
  std::optional<PatchRunResult> patches;
  std::string run_key;                               // inputs, configuration and software
  std::optional<history::Result> history;            // when the run keeps a history
  nlohmann::json counts = nlohmann::json::object();  // per stage, for the manifest
  std::vector<std::string> warnings;
};

struct RunOptions {
  bool force = false;  // run even when the target is up to date
  SchedulerOptions scheduler;
  // A merge (farmwatch merge): the shared run folder the shards wrote, and their count. The run
  // replays the passes the shards computed and writes exactly a one-machine run's outputs.
  std::string merge_dir;
  int shards = 0;
  // Test hook: called with each stage's name before it runs.
  std::function<void(const std::string&)> before_stage;
};

struct RunReport {
  std::string target;
  bool skipped = false;                   // up to date
  std::vector<std::string> files;         // relative to target
  std::map<std::string, double> seconds;  // per stage
  nlohmann::json manifest;
};

// Throws fw::Error: locked (6) when another run holds the folder, and the stages' errors (the
// target then keeps its previous outputs). A merge also refuses, publishing nothing, a shard
// that is missing, failed, of other inputs or configuration, or of another shard count, and a
// run folder another merge holds.
RunReport run_pipeline(const Config& cfg, const RunOptions& options = {});

// What a run is: its inputs (paths, sizes, content hashes) and its key (the inputs' hashes, the
// effective configuration and the software version); and the key shards check each other's
// results with (the inputs' paths, sizes and modification times instead of their contents, so
// that no shard reads every input; the merge hashes the contents once). Without `contents`,
// only shard_key is set.
struct RunIdentity {
  nlohmann::json inputs;
  std::string run_key, shard_key;
};
RunIdentity identify_run(const Config& cfg, bool contents = true);

// Phase `phase` of shard `spec` of a sharded run (farmwatch run --shard i/N --phase k): replays
// the passes of the earlier phases from <run_dir>/phase-<j>/*, computes this shard's windows of
// pass `phase` and publishes them with a manifest in <run_dir>/phase-<phase>/<i>/ (replacing an
// earlier attempt). A phase past the passes the shards can take publishes a manifest that says
// so (computed false); a failure publishes a manifest marked failed and rethrows.
struct ShardReport {
  bool computed = false;
  std::string pass;    // the pass computed, or where the shard stopped
  ShardRange windows;  // computed: the windows of the pass's plan, [begin, end)
  std::size_t of = 0;  // the plan's windows
  std::string folder;
  double seconds = 0;
};
ShardReport run_shard(const Config& cfg, const RunOptions& options, ShardSpec spec, int phase,
                      const std::string& run_dir);

// A sharded run's window weights (SchedulerOptions::shard_weight): a window's valid pixels
// (both dates' masks, sampled coarsely: rasters::sample_valid; all pixels without `valid`), a
// quarter of its masked ones (still read and written), and 10,000 per parcel whose box centre
// lies in it (a parcel's coverage, overlays and table rows), so that a shard of clouds, empty
// land or sea is not a shard of work.
std::function<int64_t(const Window&)> shard_weights(
    const vectors::ParcelSet& set, const Grid& grid,
    std::shared_ptr<const rasters::ValidSamples> valid = nullptr);

// Every regular file under `dir`, relative, sorted.
std::vector<std::string> list_files(const std::string& dir);

// The target folder's lock, held while the object lives. Throws fw::Error (locked) naming the
// holder's pid and start time when another live process holds it.
class RunLock {
 public:
  explicit RunLock(const std::string& target);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
  std::string path_;
};

// A 64-bit content hash of a file, as 16 hex digits (reads the whole file).
std::string hash_file(const std::string& path);

}  // namespace fw::pipelines
