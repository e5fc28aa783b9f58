#include "engine/shard_run.hpp"

namespace fw {

uint64_t plan_hash(const WindowPlan& plan) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](int64_t v) {
    for (int b = 0; b < 8; ++b) {
      h ^= static_cast<uint64_t>(v >> (8 * b)) & 0xff;
      h *= 1099511628211ULL;
    }
  };
  mix(plan.width), mix(plan.height), mix(plan.block_w), mix(plan.block_h);
  mix(plan.win_w), mix(plan.win_h);
  for (const Window& w : plan.windows) mix(w.x), mix(w.y), mix(w.w), mix(w.h);
  return h;
}

}  // namespace fw
