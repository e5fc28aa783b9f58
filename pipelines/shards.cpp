#include "pipelines/shards.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "pipelines/history.hpp"
#include "pipelines/run.hpp"

namespace fw::pipelines {
namespace fs = std::filesystem;

std::string shard_folder(const std::string& run_dir, int index, const std::string& group) {
  return (fs::path(run_dir) / group / std::to_string(index)).string();
}

ShardOutput::ShardOutput(std::string run_dir, ShardSpec shard, std::string run_key,
                         std::string group)
    : run_dir_(std::move(run_dir)),
      shard_(shard),
      run_key_(std::move(run_key)),
      group_(std::move(group)) {
  const fs::path target = shard_folder(run_dir_, shard_.index, group_);
  fs::create_directories(target.parent_path());
  staging_ = (target.parent_path() /
              ("." + target.filename().string() + ".staging-" + std::to_string(::getpid())))
                 .string();
  std::error_code ec;
  fs::remove_all(staging_, ec);
  fs::create_directories(staging_);
}

ShardOutput::~ShardOutput() {
  if (!done_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

void ShardOutput::finish(const std::string& status, const std::string& error, double seconds) {
  nlohmann::json m = extra_;
  m["run_key"] = run_key_;
  m["shard"] = shard_.index;
  m["shards"] = shard_.count;
  m["status"] = status;
  if (!error.empty()) m["error"] = error;
  m["finished"] = history::now_utc();
  m["seconds"] = seconds;
  m["files"] = list_files(staging_);
  write_file_atomic((fs::path(staging_) / "shard.json").string(), m.dump(2) + "\n");
  replace_folder(staging_, shard_folder(run_dir_, shard_.index, group_));
  done_ = true;
}

void ShardOutput::publish(double seconds) {
  finish("ok", "", seconds);
}

void ShardOutput::fail(const std::string& error) {
  // Nothing of a failed attempt is read: only its manifest is published.
  for (const auto& e : fs::directory_iterator(staging_)) fs::remove_all(e.path());
  finish("failed", error, 0);
}

std::vector<ShardManifest> check_shards(const std::string& run_dir, int count,
                                        const std::string& run_key, const std::string& group) {
  std::vector<ShardManifest> out;
  const std::string phase = group == "shards" ? "" : " (" + group + ")";
  for (int i = 0; i < count; ++i) {
    const std::string dir = shard_folder(run_dir, i, group);
    const std::string path = (fs::path(dir) / "shard.json").string();
    if (!fs::exists(path)) {
      throw Error(ExitCode::kInput,
                  "shard " + std::to_string(i) + " of " + std::to_string(count) + phase +
                      " is missing (not run, or still running): run it, then merge again",
                  {.file = dir});
    }
    nlohmann::json m;
    try {
      m = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
      throw Error(ExitCode::kInput, std::string("unreadable shard manifest: ") + e.what(),
                  {.file = path});
    }
    ShardManifest s;
    s.run_key = m.value("run_key", "");
    s.index = m.value("shard", -1);
    s.count = m.value("shards", -1);
    s.status = m.value("status", "");
    s.error = m.value("error", "");
    s.finished = m.value("finished", "");
    s.seconds = m.value("seconds", 0.0);
    s.files = m.value("files", std::vector<std::string>{});
    s.json = m;
    const std::string name = "shard " + std::to_string(i) + phase;
    if (s.status != "ok") {
      throw Error(ExitCode::kInput,
                  name + " failed (" + (s.error.empty() ? s.status : s.error) +
                      "): rerun it, then merge again",
                  {.file = dir});
    }
    if (s.count != count) {
      throw Error(ExitCode::kInput,
                  name + " belongs to a run of " + std::to_string(s.count) + " shards, not " +
                      std::to_string(count) + ": the shard count does not match",
                  {.file = dir});
    }
    if (s.index != i) {
      throw Error(ExitCode::kInput, name + "'s folder holds shard " + std::to_string(s.index),
                  {.file = dir});
    }
    if (s.run_key != run_key) {
      throw Error(ExitCode::kInput,
                  name + " ran on other inputs or another configuration (run key " + s.run_key +
                      ", expected " + run_key + ")",
                  {.file = dir});
    }
    out.push_back(std::move(s));
  }
  const fs::path extra = shard_folder(run_dir, count, group);
  if (fs::exists(extra)) {
    throw Error(ExitCode::kInput,
                "a shard folder beyond the " + std::to_string(count) +
                    " shards: the shard count does not match (remove the run folder's " + group +
                    "/ to start over)",
                {.file = extra.string()});
  }
  return out;
}

}  // namespace fw::pipelines
