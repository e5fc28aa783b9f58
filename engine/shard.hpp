// Shards of a run: `--shard i/N` names shard i (0-based) of N, and the windows of a plan are
// split into N contiguous runs balanced by weight (for example valid pixels and parcels per
// window), deterministically, so that every shard and the merge agree on who does what.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fw {

struct ShardSpec {
  int index = 0;  // 0-based
  int count = 1;

  // "i/N" with 0 <= i < N; throws fw::Error (usage) naming the text and what was expected.
  static ShardSpec parse(const std::string& text);
  bool whole() const { return count == 1; }
  std::string text() const;  // "i/N"
};

// Half-open window index ranges [begin, end).
struct ShardRange {
  std::size_t begin = 0, end = 0;
  std::size_t size() const { return end - begin; }
  bool empty() const { return end == begin; }
  bool operator==(const ShardRange&) const = default;
};

// `count` contiguous ranges covering [0, weights.size()) in order. Shard k ends at the first
// window where the running total of the weights reaches k+1 N-ths of the total, within the
// limits that leave every shard at least one window when there are at least `count` windows
// (with fewer, the last shards are empty). All weights zero: every window weighs 1. Each shard's
// total is at most total / count plus the largest single weight.
std::vector<ShardRange> assign_shards(const std::vector<int64_t>& weights, int count);

}  // namespace fw
