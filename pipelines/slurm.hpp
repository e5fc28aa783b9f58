// A sharded run on Slurm (farmwatch slurm): one job array per phase, each depending on the one
// before (afterok), then the merge job; see docs/scale-out.md and deploy/slurm/.
#pragma once

#include <string>
#include <vector>

#include "pipelines/config.hpp"

namespace fw::pipelines {

// The phases worth running for `cfg`: the passes the shards can take before the first that
// only the merge runs (the indices of both dates, the change statistics and classes, the
// sub-pixel cover when asked for, the zonal statistics when no ecology pass comes first). More
// phases than passes are harmless (they record that they had nothing to do), fewer leave the
// rest to the merge; the outputs are the same either way.
int shard_phases(const Config& cfg);

struct SlurmJob {
  std::string pipeline;           // the pipeline file, as given
  std::vector<std::string> sets;  // --set overrides, passed on to every job
  std::string run_dir;            // the shared run folder
  std::string farmwatch;          // the executable the jobs run
  int shards = 1, phases = 1;
  double memory_mib = 0;        // --memory of every job (the window plan depends on it)
  std::string partition, time;  // optional #SBATCH lines
  int cpus_per_task = 0;        // 0: Slurm's default
};

struct SlurmScript {
  std::string name;  // phase-1.sbatch ... merge.sbatch
  std::string text;
};

// One batch script per phase (an array of `shards` tasks) and the merge script.
std::vector<SlurmScript> slurm_scripts(const SlurmJob& job);

// Writes the scripts into <run_dir>/slurm/ and submits them with sbatch, each phase after the
// one before and the merge after the last (afterok). Returns the job ids, in order. Throws
// fw::Error naming the script when sbatch fails.
std::vector<std::string> submit_slurm(const SlurmJob& job);

// A word quoted for a POSIX shell.
std::string shell_quote(const std::string& s);

}  // namespace fw::pipelines
