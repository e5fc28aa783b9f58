// The declarative pipeline: a YAML (or JSON) file an analyst writes once, validated against the
// options the registered stages declare (pipelines/stages.hpp) before any work is done.
//
//   inputs:  before / after (files, sensor, bands, mask...), parcels, zones
//   grid:    crs, resolution
//   steps:   indices, change, classify, zonal, patches, report (one section per stage)
//   outputs: dir, formats, styles
//
// Every mistake is reported as `file:line:column: what was expected`, all of them at once.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/error.hpp"

namespace fw::pipelines {

enum class OptType {
  kString,    // any scalar
  kChoice,    // one of `choices`
  kNumber,    // a real number within [min, max]
  kInt,       // an integer within [min, max]
  kBool,      // true/false (yes/no, on/off)
  kList,      // a list of scalars (a single scalar is a one-item list)
  kFile,      // a path that must exist (relative paths: from the pipeline file's folder)
  kFileList,  // a list of such paths
  kPath,      // a path that need not exist (outputs)
};
const char* opt_type_name(OptType t);

struct OptionSpec {
  std::string key;  // full dotted path, e.g. "steps.change.method"
  OptType type = OptType::kString;
  std::string def;  // default as text ("" = none); lists: comma-separated
  std::string doc;
  bool required = false;
  std::vector<std::string> choices;  // kChoice
  double min = -1e300, max = 1e300;  // kNumber, kInt
  // Further checks of one value (a band map, a rule): "" when fine, else what is wrong.
  std::function<std::string(const std::string&)> check;
};

// Where a value came from.
struct Origin {
  std::string file;  // the pipeline file, "--set", or "default"
  int line = 0, column = 0;
  std::string describe() const;  // "file:line:column"
};

struct Value {
  std::vector<std::string> items;  // one item for scalars
  Origin origin;
  bool given = false;  // false: the default
};

// One validation problem.
struct Problem {
  Origin where;
  std::string message;
  std::string text() const { return where.describe() + ": " + message; }
};

// Thrown by load_pipeline when the file is wrong: every problem, one per line (exit 2).
class PipelineError : public Error {
 public:
  explicit PipelineError(std::vector<Problem> problems);
  const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::vector<Problem> problems_;
};

class Config {
 public:
  const std::string& file() const { return file_; }
  const std::string& base_dir() const { return base_; }
  bool given(const std::string& key) const;
  const std::string& str(const std::string& key) const;  // scalar text ("" when unset)
  double num(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  bool flag(const std::string& key) const;
  std::vector<std::string> list(const std::string& key) const;
  std::string path(const std::string& key) const;  // resolved against base_dir ("" when unset)
  std::vector<std::string> paths(const std::string& key) const;
  const Origin& origin(const std::string& key) const;
  // Every option with its effective value, as canonical JSON text (sorted keys, paths
  // resolved): what the manifest records and the run key hashes.
  std::string effective_json() const;
  // For programmatic pipelines (monitor): set a value as if --set key=value.
  void set(const std::string& key, const std::vector<std::string>& items);

 private:
  friend Config load_pipeline_text(const std::string&, const std::string&,
                                   const std::vector<std::string>&);
  const Value& at(const std::string& key) const;
  std::string file_, base_;
  std::map<std::string, Value> values_;
};

// Loads and validates a pipeline file; `overrides` are "key.path=value" (YAML scalar or
// [list]). Throws PipelineError listing every problem, fw::Error (input) when the file cannot
// be read.
Config load_pipeline(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from text (`name` is used in messages; relative paths resolve from the current folder
// when name has no folder).
Config load_pipeline_text(const std::string& text, const std::string& name,
                          const std::vector<std::string>& overrides = {});

}  // namespace fw::pipelines
