#include "pipelines/run.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/hash.hpp"
#include "engine/log.hpp"
#include "engine/versions.hpp"
#include "pipelines/shards.hpp"
#include "pipelines/stages.hpp"
#include "rasters/cog.hpp"

namespace fw::pipelines {
namespace {

namespace fs = std::filesystem;

std::string hex64(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

// The files an input path stands for: a shapefile's sidecars too.
std::vector<std::string> input_files(const std::string& path) {
  std::vector<std::string> out{path};
  const fs::path p(path);
  std::string ext = p.extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (ext == ".shp") {
    for (const char* s : {".shx", ".dbf", ".prj", ".cpg"}) {
      fs::path q = p;
      q.replace_extension(s);
      if (fs::exists(q)) out.push_back(q.string());
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> list_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string hash_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input("cannot read", {.file = path});
  uint64_t h = 0x9e3779b97f4a7c15ull;
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<std::size_t>(in.gcount());
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, buf.data() + i, 8);
      h = mix64(h ^ w);
    }
    for (; i < n; ++i) h = mix64(h ^ static_cast<uint8_t>(buf[i]));
    total += n;
  }
  return hex64(mix64(h ^ total));
}

RunLock::RunLock(const std::string& target) {
  const fs::path t = fs::absolute(target).lexically_normal();
  path_ = (t.parent_path() / ("." + t.filename().string() + ".lock")).string();
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw_output("cannot create the run lock: " + std::string(std::strerror(errno)),
                 {.file = path_});
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[256] = {0};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "unknown";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    throw Error(ExitCode::kLocked,
                "another farmwatch run is writing " + t.string() + " (" + holder +
                    "); this run stops without touching it",
                {.file = path_});
  }
  // Whoever held it before is gone: the kernel released the lock with the process.
  const std::string me =
      "pid " + std::to_string(::getpid()) + ", started " + history::now_utc() + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t w = ::pwrite(fd_, me.data(), me.size(), 0);
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

RunIdentity identify_run(const Config& cfg, bool contents) {
  RunIdentity id;
  id.inputs = nlohmann::json::array();
  std::vector<std::string> paths;
  for (const OptionSpec* o : all_options()) {
    if (o->type == OptType::kFile && !cfg.path(o->key).empty()) paths.push_back(cfg.path(o->key));
    if (o->type == OptType::kFileList) {
      for (const auto& p : cfg.paths(o->key)) paths.push_back(p);
    }
  }
  std::set<std::string> seen;
  std::vector<std::string> files;
  for (const auto& p : paths) {
    for (const auto& f : input_files(p)) {
      if (seen.insert(f).second) files.push_back(f);
    }
  }
  std::vector<std::string> hashes(files.size());
  if (contents)
    parallel_for_n(files.size(), [&](std::size_t i) { hashes[i] = hash_file(files[i]); });
  uint64_t key = mix64(0xfa53u), stat_key = mix64(0x5a4du);
  auto mix_text = [](uint64_t& k, const std::string& t) {
    for (char ch : t) k = mix64(k ^ static_cast<uint8_t>(ch));
  };
  for (std::size_t i = 0; i < files.size(); ++i) {
    struct stat st {};
    if (::stat(files[i].c_str(), &st) != 0) throw_input("cannot read", {.file = files[i]});
    const auto size = static_cast<int64_t>(st.st_size);
    mix_text(stat_key, files[i] + "|" + std::to_string(size) + "|" +
                           std::to_string(st.st_mtim.tv_sec) + "." +
                           std::to_string(st.st_mtim.tv_nsec));
    if (!contents) continue;
    id.inputs.push_back({{"path", files[i]}, {"bytes", size}, {"hash", hashes[i]}});
    mix_text(key, hashes[i]);
  }
  const std::string config_json = cfg.effective_json();
  for (uint64_t* k : {&key, &stat_key}) {
    mix_text(*k, config_json);
    mix_text(*k, farmwatch_version());
  }
  if (contents) id.run_key = hex64(key);
  id.shard_key = hex64(stat_key);
  return id;
}

namespace {

std::string phase_group(int phase) {
  return "phase-" + std::to_string(phase);
}

ShardSession::Folder phase_folders(const std::string& run_dir) {
  return
      [run_dir](int phase, int shard) { return shard_folder(run_dir, shard, phase_group(phase)); };
}

}  // namespace

RunReport run_pipeline(const Config& cfg, const RunOptions& ro) {
  RunReport rep;
  const fs::path target = fs::absolute(cfg.path("outputs.dir")).lexically_normal();
  rep.target = target.string();
  const fs::path parent = target.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw_output("cannot create folder: " + ec.message(), {.file = parent.string()});
  RunLock lock(target.string());

  // What goes in: every input file's size and content hash, the configuration, the software.
  const auto t_start = std::chrono::steady_clock::now();
  const RunIdentity id = identify_run(cfg);
  const nlohmann::json& inputs = id.inputs;
  const std::string& run_key = id.run_key;
  const std::string config_json = cfg.effective_json();

  // A merge: every phase the shards ran, checked before anything is read (the shared run
  // folder's lock keeps a second merge out).
  std::optional<RunLock> merge_lock;
  std::shared_ptr<ShardSession> session;
  nlohmann::json sharded;
  if (!ro.merge_dir.empty()) {
    if (ro.shards < 1) throw_usage("a merge needs the shard count (--shards N)");
    merge_lock.emplace(ro.merge_dir);
    int phases = 0;
    for (int k = 1;; ++k) {
      const std::string group = phase_group(k);
      if (k > 1 && !fs::exists(fs::path(ro.merge_dir) / group)) break;
      const auto shards = check_shards(ro.merge_dir, ro.shards, id.shard_key, group);
      const bool computed = shards[0].json.value("computed", false);
      for (const auto& m : shards) {
        if (m.json.value("computed", false) != computed)
          throw Error(ExitCode::kInput,
                      "the shards of " + group + " disagree on what they computed (shard 0: " +
                          shards[0].json.value("pass", "") + ", shard " + std::to_string(m.index) +
                          ": " + m.json.value("pass", "") + ")",
                      {.file = shard_folder(ro.merge_dir, m.index, group)});
      }
      if (!computed) break;  // this phase and the rest are the merge's
      phases = k;
    }
    session = ShardSession::merge(ro.shards, phases, id.shard_key, phase_folders(ro.merge_dir));
    sharded = {{"run_dir", fs::absolute(ro.merge_dir).lexically_normal().string()},
               {"shards", ro.shards},
               {"phases", phases}};
    log::info("merging a sharded run", {{"run_dir", ro.merge_dir},
                                        {"shards", std::to_string(ro.shards)},
                                        {"phases", std::to_string(phases)}});
  }

  // Up to date?
  const fs::path old_manifest = target / "manifest.json";
  if (!ro.force && fs::exists(old_manifest)) {
    try {
      std::ifstream in(old_manifest);
      const nlohmann::json m = nlohmann::json::parse(in);
      if (m.value("run_key", "") == run_key && m.value("status", "") == "ok") {
        rep.skipped = true;
        rep.manifest = m;
        log::info("up to date: inputs, configuration and software unchanged (--force to rerun)",
                  {{"dir", target.string()}, {"run_key", run_key}});
        return rep;
      }
    } catch (const std::exception&) {
      // An unreadable manifest: run.
    }
  }

  // Leftovers of runs that died (we hold the lock: nobody else is writing them).
  const std::string stem = "." + target.filename().string();
  for (const auto& e : fs::directory_iterator(parent)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(stem + ".staging-", 0) == 0 || n.rfind(stem + ".previous-", 0) == 0) {
      log::info("removing the leftovers of an interrupted run", {{"dir", e.path().string()}});
      fs::remove_all(e.path(), ec);
    }
  }
  const std::string pid = std::to_string(::getpid());
  const fs::path staging = parent / (stem + ".staging-" + pid);
  fs::create_directories(staging, ec);
  if (ec) throw_output("cannot create folder: " + ec.message(), {.file = staging.string()});

  RunContext x{cfg, staging.string(), ro.scheduler};
  x.run_key = run_key;
  x.so.shard = session;
  nlohmann::json timings = nlohmann::json::object();
  try {
    for (const StageSpec& s : stages()) {
      if (!s.run) continue;
      if (ro.before_stage) ro.before_stage(s.name);
      log::info("stage", {{"stage", s.name}});
      const auto t0 = std::chrono::steady_clock::now();
      try {
        s.run(x);
      } catch (const Error& e) {
        throw e.with({.stage = s.name});
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rep.seconds[s.name] = secs;
      timings[s.name] = std::round(secs * 1000) / 1000;
    }
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }

  // The manifest, last, then the swap.
  try {
    nlohmann::json m;
    m["farmwatch"] = farmwatch_version();
    nlohmann::json libs = nlohmann::json::object();
    for (const auto& [name, version] : version_info().libraries) libs[name] = version;
    m["libraries"] = libs;
    m["pipeline"] = cfg.file();
    m["run_key"] = run_key;
    m["finished"] = history::now_utc();
    m["inputs"] = inputs;
    m["configuration"] = nlohmann::json::parse(history::display_name(config_json));
    if (x.change) {
      nlohmann::json th = nlohmann::json::array();
      for (const auto& t : x.change->thresholds)
        th.push_back({{"index", t.index},
                      {"median", t.median},
                      {"mad", t.mad},
                      {"threshold", t.threshold},
                      {"method", t.method}});
      m["thresholds"] = th;
    }
    if (session) {
      // Fragments of patches the merge joined across the borders of the shards' bands of rows.
      if (x.patches) sharded["patch_fragments_joined"] = x.patches->set.stitched;
      m["sharded"] = sharded;
    }
    m["seconds"] = timings;
    m["seconds_total"] =
        std::round(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() *
            1000) /
        1000;
    m["counts"] = x.counts;
    m["warnings"] = x.warnings;
    m["status"] = "ok";
    m["exit_code"] = 0;
    rep.files = list_files(staging.string());
    rep.files.push_back("manifest.json");
    std::sort(rep.files.begin(), rep.files.end());
    m["files"] = rep.files;
    write_file_atomic((staging / "manifest.json").string(), m.dump(2) + "\n");
    sync_folder(staging.string());
    rep.manifest = m;

    if (ro.before_stage) ro.before_stage("swap");
    replace_folder(staging.string(), target.string());
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  log::info("run complete",
            {{"dir", target.string()}, {"files", std::to_string(rep.files.size())}});
  return rep;
}

ShardReport run_shard(const Config& cfg, const RunOptions& ro, ShardSpec spec, int phase,
                      const std::string& run_dir) {
  if (phase < 1) throw_usage("--phase is 1 or more, not " + std::to_string(phase));
  const auto t_start = std::chrono::steady_clock::now();
  // Shards check their inputs by path, size and time (the merge hashes their contents once).
  const RunIdentity id = identify_run(cfg, false);
  ShardOutput out(run_dir, spec, id.shard_key, phase_group(phase));
  // Intermediate rasters the shard replays (earlier passes) are written here, never published.
  const fs::path scratch =
      fs::path(out.staging()).parent_path() /
      (".scratch-" + std::to_string(spec.index) + "-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(scratch, ec);
  fs::create_directories(scratch, ec);
  if (ec) throw_output("cannot create folder: " + ec.message(), {.file = scratch.string()});
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{scratch};

  // Nothing the shard writes but its results is published: intermediates are drafts.
  rasters::CogWriter::DraftScope drafts;
  RunContext x{cfg, scratch.string(), ro.scheduler};
  x.run_key = id.shard_key;
  x.so.shard =
      ShardSession::shard(spec, phase, id.shard_key, phase_folders(run_dir), out.staging());
  ShardReport rep;
  rep.pass = "the end of the raster passes";
  try {
    try {
      for (const StageSpec& s : stages()) {
        if (!s.run) continue;
        // What follows the raster passes (the history store, the report) is the merge's.
        if (s.name == "history" || s.name == "writers") break;
        log::info("stage",
                  {{"stage", s.name}, {"shard", spec.text()}, {"phase", std::to_string(phase)}});
        try {
          s.run(x);
        } catch (const Error& e) {
          throw e.with({.stage = s.name});
        }
      }
    } catch (const ShardPhaseDone& done) {
      rep.computed = done.computed;
      rep.pass = done.pass;
      rep.windows = done.windows;
      rep.of = done.of;
    }
  } catch (const std::exception& e) {
    out.fail(e.what());
    throw;
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  out.extra() = {{"phase", phase}, {"computed", rep.computed}, {"pass", rep.pass}};
  if (rep.computed)
    out.extra()["windows"] = {
        {"first", rep.windows.begin}, {"count", rep.windows.size()}, {"of", rep.of}};
  out.publish(rep.seconds);
  rep.folder = shard_folder(run_dir, spec.index, phase_group(phase));
  log::info(rep.computed ? "shard phase computed" : "shard phase: nothing to compute",
            {{"shard", spec.text()}, {"phase", std::to_string(phase)}, {"pass", rep.pass}});
  return rep;
}

}  // namespace fw::pipelines
