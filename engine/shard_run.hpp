// A raster pass split across shards: each shard computes its windows and stores their results
// (compute_shard); whoever needs the pass's outcome reads every shard's results and consumes
// them in window order (replay), making the same merges in the same order as a one-machine run
// of BlockScheduler::run, hence the same bits (docs/scale-out.md).
#pragma once

#include <string>
#include <utility>

#include "engine/partials.hpp"
#include "engine/scheduler.hpp"
#include "engine/shard.hpp"

namespace fw {

// compute(const Window&, std::size_t global_index) -> R in parallel for the windows of `range`;
// serialize(const R&) -> std::string; the results go to `out` (committed by the caller).
template <class R, class Compute, class Serialize>
void compute_shard(BlockScheduler& sched, const WindowPlan& plan, ShardRange range,
                   Compute&& compute, Serialize&& serialize, PartialWriter& out) {
  WindowPlan part = plan;
  part.windows.assign(plan.windows.begin() + static_cast<std::ptrdiff_t>(range.begin),
                      plan.windows.begin() + static_cast<std::ptrdiff_t>(range.end));
  sched.run<std::string>(
      part, [&](const Window& w, std::size_t i) { return serialize(compute(w, range.begin + i)); },
      [&](const Window&, std::size_t i, std::string& bytes) { out.add(range.begin + i, bytes); });
}

// consume(const Window&, std::size_t index, R&) serially in window order, R from
// deserialize(ByteReader&) on each stored window.
template <class R, class Deserialize, class Consume>
void replay(const WindowPlan& plan, const PartialSet& set, Deserialize&& deserialize,
            Consume&& consume) {
  if (set.size() != plan.windows.size()) throw_internal("partial results of another plan");
  for (std::size_t i = 0; i < plan.windows.size(); ++i) {
    const std::string bytes = set.window(i);  // one window in memory at a time
    ByteReader r(bytes, set.file_of(i) + ", window " + std::to_string(i));
    R item = deserialize(r);
    consume(plan.windows[i], i, item);
  }
}

}  // namespace fw
