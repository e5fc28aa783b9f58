// The stage registry: every stage of a run registered once, by name, with its job, its typed
// options (the pipeline keys it reads, their defaults and documentation) and the function that
// runs it. The pipeline validator, `farmwatch stages` and docs/pipeline.md all read this one
// list.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "pipelines/config.hpp"

namespace fw::pipelines {

struct RunContext;  // pipelines/run.hpp

struct StageSpec {
  std::string name;  // "change"
  std::string doc;   // one line: its job
  std::vector<OptionSpec> options;
  std::vector<std::string> writes;       // the files it writes in the run folder
  std::function<void(RunContext&)> run;  // null for sections that are read by other stages
};

// Every stage, in run order (readers first, writers last).
const std::vector<StageSpec>& stages();
const StageSpec* find_stage(const std::string& name);
// Every option of every stage.
std::vector<const OptionSpec*> all_options();

}  // namespace fw::pipelines
