// The shared run folder of a sharded run (docs/scale-out.md): shard i of N writes its partial
// results into <run>/shards/<i>/ with a manifest, shard.json (run key, i/N, status, files), and
// publishes the folder in one step, replacing an earlier attempt of the same shard; nothing of
// a failed attempt is published but its manifest, marked failed, with the error. The merge
// checks every shard's manifest before it reads anything.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/shard.hpp"

namespace fw::pipelines {

struct ShardManifest {
  std::string run_key;
  int index = 0, count = 1;
  std::string status;  // ok, failed
  std::string error;   // failed: why
  std::string finished;
  double seconds = 0;
  std::vector<std::string> files;  // relative to the shard's folder
  nlohmann::json json;             // the whole manifest
};

// <run>/<group>/<i>: group "shards" for a one-pass command (farmwatch zonal), "phase-<k>" for
// phase k of a pipeline run.
std::string shard_folder(const std::string& run_dir, int index,
                         const std::string& group = "shards");

// A shard's folder while it is written: files go into staging(); publish() writes the manifest
// and moves the folder into place; fail() publishes a manifest marked failed instead (and no
// partial results); a ShardOutput destroyed before either leaves the published folder as it was.
class ShardOutput {
 public:
  ShardOutput(std::string run_dir, ShardSpec shard, std::string run_key,
              std::string group = "shards");
  ~ShardOutput();
  ShardOutput(const ShardOutput&) = delete;
  ShardOutput& operator=(const ShardOutput&) = delete;

  const std::string& staging() const { return staging_; }
  void publish(double seconds);
  void fail(const std::string& error);
  // More manifest fields (for example a pipeline shard's phase and pass).
  nlohmann::json& extra() { return extra_; }

 private:
  void finish(const std::string& status, const std::string& error, double seconds);
  std::string run_dir_, staging_;
  ShardSpec shard_;
  std::string run_key_, group_;
  nlohmann::json extra_ = nlohmann::json::object();
  bool done_ = false;
};

// Every shard's manifest, checked for a merge of `count` shards of run `run_key`. Throws
// fw::Error (input), naming the shard's folder, when a shard is missing, failed, of another run
// (other inputs or configuration), of another shard count, or when there are more shard
// folders than `count`.
std::vector<ShardManifest> check_shards(const std::string& run_dir, int count,
                                        const std::string& run_key,
                                        const std::string& group = "shards");

}  // namespace fw::pipelines
