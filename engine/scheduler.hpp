// The block scheduler: streams rasters window by window (windows aligned to the source block
// layout) through read -> compute (parallel, oneTBB) -> consume (serial, in window order), with
// a memory budget that bounds the windows in flight, progress and cancellation.
#pragma once

#include <tbb/enumerable_thread_specific.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/grid.hpp"
#include "engine/progress.hpp"
#include "engine/raster_io.hpp"
#include "engine/shard_session.hpp"
#include "engine/tiff_tiles.hpp"

namespace fw {

// Process-wide default thread count (0 = all cores) and memory budget, set by the CLI.
void set_default_threads(int threads);
int default_threads();
void set_default_memory_mib(double mib);
double default_memory_mib();

// f(i) for i in [0, n) in parallel on at most `threads` threads (0 = default_threads()), so
// that --threads bounds every parallel loop, not only the block scheduler's.
template <class F>
void parallel_for_n(std::size_t n, F&& f, int threads = 0) {
  const int t = threads > 0 ? threads : default_threads();
  if (n == 0) return;
  if (tbb::this_task_arena::max_concurrency() <= t) {
    tbb::parallel_for(std::size_t{0}, n, f);
    return;
  }
  tbb::task_arena arena(t);
  arena.execute([&] { tbb::parallel_for(std::size_t{0}, n, f); });
}

// Windows covering a width x height raster, row-major, each a whole number of blocks (the last
// row/column clipped to the raster).
struct WindowPlan {
  int64_t width = 0, height = 0;
  int block_w = 256, block_h = 256;
  int64_t win_w = 0, win_h = 0;
  std::vector<Window> windows;

  // The largest block-aligned windows of at most max_pixels pixels (at least one block),
  // preferring full-width rows of blocks when they fit.
  static WindowPlan make(int64_t width, int64_t height, int block_w, int block_h,
                         int64_t max_pixels);
  std::size_t size() const { return windows.size(); }
};

struct SchedulerOptions {
  int threads = 0;                      // 0: default_threads()
  double memory_mib = 0;                // 0: default_memory_mib()
  ProgressFn progress;                  // optional
  std::string label = "working";        // progress label
  const CancelToken* cancel = nullptr;  // optional; the process token is always honoured
  // A sharded run (engine/shard_session.hpp): passes are replayed from the shards' stored
  // results, computed for one shard's windows, or computed here.
  std::shared_ptr<ShardSession> shard;
  // What a window weighs when a pass's windows are split among shards (the same on every shard;
  // default: its pixels).
  std::function<int64_t(const Window&)> shard_weight;
};

class BlockScheduler {
 public:
  // Windows in flight at most, whatever the thread count: each window gets budget / kMaxTokens.
  static constexpr int kMaxTokens = 16;

  explicit BlockScheduler(SchedulerOptions options = {});

  int threads() const { return threads_; }
  // Windows in flight at most (each holds its buffers from read to consume).
  int tokens() const { return tokens_; }
  int64_t budget_bytes() const { return budget_bytes_; }

  // A plan whose windows in flight fit the memory budget, given the bytes each pixel of a window
  // needs (all bands read, computed and written, kernel scratch included).
  WindowPlan plan(int64_t width, int64_t height, int block_w, int block_h,
                  double bytes_per_pixel) const;

  // compute(const Window&, std::size_t index) -> R runs in parallel;
  // consume(const Window&, std::size_t index, R&) runs serially in window order.
  // In a sharded run, a pass whose R is Shippable is replayed or computed for one shard instead
  // (engine/shard_session.hpp).
  template <class R, class Compute, class Consume>
  void run(const WindowPlan& plan, Compute&& compute, Consume&& consume);

  // A deterministic reduction: one partial per window, merged into `acc` in window order,
  // so the result has the same bits for any thread count.
  template <class P, class Compute, class Merge>
  P reduce(const WindowPlan& plan, Compute&& compute, P acc, Merge&& merge) {
    run<P>(plan, std::forward<Compute>(compute),
           [&](const Window&, std::size_t, P& part) { merge(acc, part); });
    return acc;
  }

  // In a sharded run: this shard's windows of `plan`, balanced by SchedulerOptions::shard_weight.
  ShardRange shard_windows(const WindowPlan& plan) const;

  // The most windows that were in flight at once during the last run.
  int peak_in_flight() const { return peak_in_flight_; }

 private:
  template <class R, class Compute, class Consume>
  bool run_shard_pass(const WindowPlan& plan, Compute& compute, Consume& consume);
  bool cancelled() const;
  void report(std::size_t done, std::size_t total) const;
  int threads_;
  int tokens_;
  int64_t budget_bytes_;
  SchedulerOptions options_;
  int peak_in_flight_ = 0;
};

// Per-thread read-only handles on one raster (GDAL datasets are not thread-safe).
class DatasetPool {
 public:
  explicit DatasetPool(std::string path);
  ~DatasetPool();
  GDALDataset& local();
  const std::string& path() const { return path_; }

  // read_window over this thread's handle, or straight from the tiles when the file is a tiled
  // DEFLATE GeoTIFF (engine/tiff_tiles.hpp): the same values.
  void read(int band, const Window& win, GDALDataType type, void* buf, double fill = 0.0);
  template <class T>
  void read(int band, const Window& win, std::vector<T>& out, double fill = 0.0) {
    out.resize(static_cast<std::size_t>(win.pixels()));
    read(band, win, gdal_type<T>(), out.data(), fill);
  }

 private:
  std::string path_;
  tbb::enumerable_thread_specific<DatasetPtr> handles_;
  std::unique_ptr<TiffTiles> direct_;
};

// A hash of the plan's geometry (FNV-1a over the raster size, block and window sizes and every
// window), so that shards cut differently are told apart.
uint64_t plan_hash(const WindowPlan& plan);

// A raster pass split across shards: each shard computes its windows and stores their results
// (compute_shard); whoever needs the pass's outcome reads every shard's results and consumes
// them in window order (replay), making the same merges in the same order as a one-machine run
// of BlockScheduler::run, hence the same bits (docs/scale-out.md).
//
// compute(const Window&, std::size_t global_index) -> R in parallel for the windows of `range`;
// serialize(const R&) -> std::string; the results go to `out` (committed by the caller).
// The plan of `range`'s windows only (their indices start again from 0).
inline WindowPlan windows_of(const WindowPlan& plan, ShardRange range) {
  WindowPlan part = plan;
  part.windows.assign(plan.windows.begin() + static_cast<std::ptrdiff_t>(range.begin),
                      plan.windows.begin() + static_cast<std::ptrdiff_t>(range.end));
  return part;
}

template <class R, class Compute, class Serialize>
void compute_shard(BlockScheduler& sched, const WindowPlan& plan, ShardRange range,
                   Compute&& compute, Serialize&& serialize, PartialWriter& out) {
  sched.run<std::string>(
      windows_of(plan, range),
      [&](const Window& w, std::size_t i) { return serialize(compute(w, range.begin + i)); },
      [&](const Window&, std::size_t i, std::string& bytes) { out.add(range.begin + i, bytes); });
}

// consume(const Window&, std::size_t index, R&) serially in window order, R from
// deserialize(ByteReader&) on each stored window (one window in memory at a time).
template <class R, class Deserialize, class Consume>
void replay(const WindowPlan& plan, const PartialSet& set, Deserialize&& deserialize,
            Consume&& consume) {
  if (set.size() != plan.windows.size()) throw_internal("partial results of another plan");
  for (std::size_t i = 0; i < plan.windows.size(); ++i) {
    const std::string bytes = set.window(i);
    ByteReader r(bytes, set.file_of(i) + ", window " + std::to_string(i));
    R item = deserialize(r);
    consume(plan.windows[i], i, item);
  }
}

// ---------------------------------------------------------------------------------------------

inline ShardRange BlockScheduler::shard_windows(const WindowPlan& plan) const {
  std::vector<int64_t> weights(plan.size());
  for (std::size_t i = 0; i < plan.size(); ++i)
    weights[i] =
        options_.shard_weight ? options_.shard_weight(plan.windows[i]) : plan.windows[i].pixels();
  return assign_shards(
      weights,
      options_.shard->spec().count)[static_cast<std::size_t>(options_.shard->spec().index)];
}

template <class R, class Compute, class Consume>
bool BlockScheduler::run_shard_pass(const WindowPlan& plan, Compute& compute, Consume& consume) {
  ShardSession& s = *options_.shard;
  const ShardSession::Pass pass = s.begin_pass(options_.label, Shippable<R>);
  if constexpr (Shippable<R>) {
    const PartialKey key = s.key(pass.number, options_.label, plan.size(), plan_hash(plan));
    if (pass.action == ShardSession::Action::kReplay) {
      report(0, plan.size());
      replay<R>(
          plan, PartialSet(s.files(pass.number), key), [](ByteReader& in) { return R::read(in); },
          [&](const Window& w, std::size_t i, R& item) {
            if (cancelled())
              throw Error(ExitCode::kCancelled, "cancelled", {.stage = options_.label});
            consume(w, i, item);
            report(i + 1, plan.size());
          });
      return true;
    }
    if (pass.action == ShardSession::Action::kCompute) {
      // This shard's windows (balanced by weight), computed on a scheduler of its own.
      const ShardRange range = shard_windows(plan);
      SchedulerOptions local = options_;
      local.shard.reset();
      BlockScheduler sched(local);
      PartialWriter out(s.output_file(), key);
      compute_shard<R>(
          sched, plan, range, compute,
          [](const R& r) {
            ByteWriter b;
            r.write(b);
            return b.take();
          },
          out);
      out.commit();
      s.computed(options_.label, range, plan.size());
    }
  }
  return false;
}

template <class R, class Compute, class Consume>
void BlockScheduler::run(const WindowPlan& plan, Compute&& compute, Consume&& consume) {
  if (options_.shard && run_shard_pass<R>(plan, compute, consume)) return;
  const std::size_t total = plan.windows.size();
  std::size_t next = 0, done = 0;
  std::atomic<int> in_flight{0};
  std::atomic<int> peak{0};
  report(0, total);
  std::unique_ptr<tbb::global_control> allow;
  if (threads_ > tbb::this_task_arena::max_concurrency()) {
    allow = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                  static_cast<std::size_t>(threads_));
  }
  tbb::task_arena arena(threads_);
  // Results live in slots owned here, not in the pipeline's tokens: when a kernel throws, oneTBB
  // cancels the pipeline without destroying the objects in flight, and the slots still free them.
  std::vector<std::unique_ptr<R>> slots(total);
  arena.execute([&] {
    tbb::parallel_pipeline(static_cast<std::size_t>(tokens_),
                           tbb::make_filter<void, std::size_t>(
                               tbb::filter_mode::serial_in_order,
                               [&](tbb::flow_control& fc) -> std::size_t {
                                 if (next >= total || cancelled()) {
                                   fc.stop();
                                   return 0;
                                 }
                                 const int now = ++in_flight;
                                 int seen = peak.load();
                                 while (now > seen && !peak.compare_exchange_weak(seen, now)) {
                                 }
                                 return next++;
                               }) &
                               tbb::make_filter<std::size_t, std::size_t>(
                                   tbb::filter_mode::parallel,
                                   [&](std::size_t i) -> std::size_t {
                                     if (!cancelled())
                                       slots[i] = std::make_unique<R>(compute(plan.windows[i], i));
                                     return i;
                                   }) &
                               tbb::make_filter<std::size_t, void>(
                                   tbb::filter_mode::serial_in_order, [&](std::size_t i) {
                                     // Windows arrive here in order.
                                     done = i + 1;
                                     std::unique_ptr<R> item = std::move(slots[i]);
                                     if (item && !cancelled()) consume(plan.windows[i], i, *item);
                                     item.reset();
                                     --in_flight;
                                     report(done, total);
                                   }));
  });
  peak_in_flight_ = peak.load();
  if (cancelled()) throw Error(ExitCode::kCancelled, "cancelled", {.stage = options_.label});
}

}  // namespace fw
