// Spectral index kernels: small pure functions over reflectance spans. Each index declares the
// roles it needs; a zero denominator or an invalid input gives NaN, which writers turn into nodata.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "engine/scheduler.hpp"
#include "rasters/imagery.hpp"

namespace fw::rasters {

enum class IndexId { kNdvi, kEvi, kSavi, kMsavi2, kNdwi, kMndwi, kNdbi, kBsi, kNbr, kCount };

struct IndexInfo {
  IndexId id;
  const char* name;     // "ndvi"
  const char* formula;  // documentation
  std::vector<Role> needs;
};

const std::vector<IndexInfo>& all_indices();
const IndexInfo& index_info(IndexId id);
// "ndvi" (any case) -> kNdvi; throws fw::Error (usage) listing the known indices.
IndexId parse_index(const std::string& name);
std::vector<IndexId> parse_index_list(const std::string& comma_separated);

// Role arrays of reflectance (NaN = invalid), indexed by Role; only the roles the index needs
// are read. Writes n values; NaN where the result is undefined or not finite.
using RoleSpans = std::array<const float*, kRoleCount>;
void compute_index(IndexId id, const RoleSpans& bands, std::size_t n, float* out);

// Writing indices of one date.
struct IndexJob {
  std::vector<IndexId> indices;
  std::string out_dir;
  bool int16 = false;  // Int16 x 10000 instead of Float32
  std::string compress = "DEFLATE";
  int level = 1;
  std::string prefix;  // file name prefix, e.g. "t0_"
};

struct IndexRunResult {
  std::vector<std::string> files;
  int64_t valid = 0, total = 0;  // pixels valid in every needed band and the mask
};

// One pass over the bands (each read once) computing every index; Cloud-Optimized GeoTIFFs
// written atomically. Throws fw::Error (no_data) when no pixel is valid, writing nothing.
IndexRunResult compute_indices(const Imagery& imagery, const Grid& analysis, const IndexJob& job,
                               const SchedulerOptions& scheduler = {});

}  // namespace fw::rasters
