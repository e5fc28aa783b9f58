#include "pipelines/slurm.hpp"

#include <stdio.h>
#include <sys/wait.h>

#include <filesystem>
#include <sstream>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"

namespace fw::pipelines {

namespace fs = std::filesystem;

int shard_phases(const Config& c) {
  int k = 2;  // the indices of both dates
  if (c.str("steps.change.method") == "irmad" && c.flag("steps.change.normalize")) ++k;
  k += 2;  // change statistics, change classes
  if (c.flag("steps.change.cover")) ++k;
  const std::string& e = c.str("steps.ecology.enabled");
  const bool ecology =
      e == "true" ||
      (e == "auto" && (!c.path("inputs.zones.file").empty() || !c.path("inputs.dem.file").empty()));
  if (ecology) {
    k += 3;                                          // FVC and RSEI: moments, scores, outputs
    if (!c.path("inputs.dem.file").empty()) k += 2;  // slope, per-parcel terrain
    if (!c.path("inputs.zones.file").empty()) ++k;   // per-zone statistics
  }
  ++k;  // the patches: each shard draws those inside its band of rows, the merge stitches the rest
  ++k;  // the per-parcel indicators
  return k;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-./=:,@%+") == std::string::npos)
    return s;
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

namespace {

std::string header(const SlurmJob& j, const std::string& name, const std::string& out) {
  std::ostringstream t;
  t << "#!/bin/bash\n"
    << "#SBATCH --job-name=farmwatch-" << name << "\n"
    << "#SBATCH --output=" << out << "\n";
  if (!j.partition.empty()) t << "#SBATCH --partition=" << j.partition << "\n";
  if (!j.time.empty()) t << "#SBATCH --time=" << j.time << "\n";
  if (j.cpus_per_task > 0) t << "#SBATCH --cpus-per-task=" << j.cpus_per_task << "\n";
  return t.str();
}

// farmwatch with the options every job shares.
std::string command(const SlurmJob& j, const std::string& sub) {
  std::ostringstream t;
  t << shell_quote(j.farmwatch);
  if (j.cpus_per_task > 0) t << " --threads \"${SLURM_CPUS_PER_TASK:-" << j.cpus_per_task << "}\"";
  if (j.memory_mib > 0) {
    std::ostringstream m;
    m << j.memory_mib;
    t << " --memory " << m.str();
  }
  t << " " << sub << " " << shell_quote(fs::absolute(j.pipeline).lexically_normal().string());
  for (const auto& s : j.sets) t << " --set " << shell_quote(s);
  return t.str();
}

}  // namespace

std::vector<SlurmScript> slurm_scripts(const SlurmJob& j) {
  if (j.shards < 1) throw_usage("--shards must be 1 or more");
  if (j.phases < 1) throw_usage("a sharded run has at least one phase");
  const std::string run = fs::absolute(j.run_dir).lexically_normal().string();
  const std::string logs = run + "/slurm";
  std::vector<SlurmScript> out;
  for (int k = 1; k <= j.phases; ++k) {
    const std::string name = "phase-" + std::to_string(k);
    std::ostringstream t;
    t << header(j, name, logs + "/" + name + "-%a.out") << "#SBATCH --array=0-" << j.shards - 1
      << "\n"
      << "# Phase " << k << " of " << j.phases << ": every shard computes its windows of pass " << k
      << "\n# (earlier passes are replayed from the shards' results in " << run << ").\n"
      << "set -euo pipefail\n"
      << "exec " << command(j, "run") << " --shard \"$SLURM_ARRAY_TASK_ID/" << j.shards
      << "\" --phase " << k << " --run-dir " << shell_quote(run) << "\n";
    out.push_back({name + ".sbatch", t.str()});
  }
  std::ostringstream t;
  t << header(j, "merge", logs + "/merge.out")
    << "# The merge: checks every shard of every phase, then writes the outputs of a\n"
    << "# one-machine run and the history store update.\n"
    << "set -euo pipefail\n"
    << "exec " << command(j, "merge") << " --run-dir " << shell_quote(run) << " --shards "
    << j.shards << "\n";
  out.push_back({"merge.sbatch", t.str()});
  return out;
}

std::vector<std::string> submit_slurm(const SlurmJob& j) {
  const auto scripts = slurm_scripts(j);
  const std::string dir = fs::absolute(j.run_dir).lexically_normal().string() + "/slurm";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_output("cannot create folder: " + ec.message(), {.file = dir});
  std::vector<std::string> ids;
  for (const auto& s : scripts) {
    const std::string path = dir + "/" + s.name;
    write_file_atomic(path, s.text);
    std::string cmd = "sbatch --parsable";
    if (!ids.empty()) cmd += " --dependency=afterok:" + ids.back();
    cmd += " " + shell_quote(path) + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) throw_output("cannot run sbatch", {.file = path});
    std::string said;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) said += buf;
    const int status = ::pclose(p);
    while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
    if (status != 0 || said.empty() ||
        said.find_first_not_of("0123456789;_abcdefghijklmnopqrstuvwxyz-") != std::string::npos) {
      throw Error(ExitCode::kOutput,
                  "sbatch refused the job" +
                      (ids.empty() ? std::string()
                                   : " (jobs already submitted: " +
                                         [&] {
                                           std::string all;
                                           for (const auto& i : ids)
                                             all += (all.empty() ? "" : " ") + i;
                                           return all;
                                         }() +
                                         "; scancel them)") +
                      ": " + said,
                  {.file = path});
    }
    ids.push_back(said.substr(0, said.find(';')));  // "id;cluster" on federated setups
  }
  return ids;
}

}  // namespace fw::pipelines
