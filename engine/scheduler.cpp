#include "engine/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

namespace fw {
namespace {
std::atomic<int> g_threads{0};
std::atomic<double> g_memory_mib{256.0};
}  // namespace

void set_default_threads(int threads) {
  g_threads = std::max(0, threads);
}
int default_threads() {
  const int t = g_threads.load();
  if (t > 0) return t;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}
void set_default_memory_mib(double mib) {
  g_memory_mib = mib;
}
double default_memory_mib() {
  return g_memory_mib.load();
}

WindowPlan WindowPlan::make(int64_t width, int64_t height, int block_w, int block_h,
                            int64_t max_pixels) {
  WindowPlan p;
  p.width = width;
  p.height = height;
  p.block_w = std::max(1, std::min<int>(block_w, static_cast<int>(std::max<int64_t>(1, width))));
  p.block_h = std::max(1, std::min<int>(block_h, static_cast<int>(std::max<int64_t>(1, height))));
  if (width <= 0 || height <= 0) return p;
  const int64_t block_px = static_cast<int64_t>(p.block_w) * p.block_h;
  const int64_t blocks_budget = std::max<int64_t>(1, max_pixels / block_px);
  const int64_t blocks_x = (width + p.block_w - 1) / p.block_w;
  const int64_t blocks_y = (height + p.block_h - 1) / p.block_h;
  int64_t bx, by;
  if (blocks_budget >= blocks_x) {
    // Full-width strips of whole block rows: the cheapest access for both tiles and strips.
    bx = blocks_x;
    by = std::min(blocks_y, blocks_budget / blocks_x);
  } else {
    // Squarish groups of blocks.
    bx = std::max<int64_t>(1, static_cast<int64_t>(std::sqrt(static_cast<double>(blocks_budget))));
    bx = std::min(bx, blocks_x);
    by = std::max<int64_t>(1, std::min(blocks_y, blocks_budget / bx));
  }
  p.win_w = bx * p.block_w;
  p.win_h = by * p.block_h;
  for (int64_t y = 0; y < height; y += p.win_h) {
    for (int64_t x = 0; x < width; x += p.win_w) {
      p.windows.push_back({x, y, std::min(p.win_w, width - x), std::min(p.win_h, height - y)});
    }
  }
  return p;
}

BlockScheduler::BlockScheduler(SchedulerOptions options) : options_(std::move(options)) {
  threads_ = options_.threads > 0 ? options_.threads : default_threads();
  tokens_ = std::clamp(2 * threads_, 2, kMaxTokens);
  const double mib = options_.memory_mib > 0 ? options_.memory_mib : default_memory_mib();
  budget_bytes_ = static_cast<int64_t>(mib * 1024.0 * 1024.0);
}

WindowPlan BlockScheduler::plan(int64_t width, int64_t height, int block_w, int block_h,
                                double bytes_per_pixel) const {
  // The window size depends on the budget only, never on the thread count, so that results
  // (reductions included) are identical for any number of threads.
  const double per_window = static_cast<double>(budget_bytes_) / kMaxTokens;
  const auto max_px = static_cast<int64_t>(per_window / std::max(1.0, bytes_per_pixel));
  return WindowPlan::make(width, height, block_w, block_h, max_px);
}

bool BlockScheduler::cancelled() const {
  return process_cancel_token().cancelled() || (options_.cancel && options_.cancel->cancelled());
}

void BlockScheduler::report(std::size_t done, std::size_t total) const {
  if (options_.progress) {
    options_.progress(total ? static_cast<double>(done) / static_cast<double>(total) : 1.0,
                      options_.label);
  }
}

DatasetPool::DatasetPool(std::string path) : path_(std::move(path)) {
  // Open once here so that a bad path fails early, on the calling thread.
  handles_.local() = open_raster(path_);
  direct_ = TiffTiles::open(path_, *handles_.local());
}

DatasetPool::~DatasetPool() = default;

void DatasetPool::read(int band, const Window& win, GDALDataType type, void* buf, double fill) {
  GDALDataset& ds = local();
  if (direct_ && band >= 1 && band <= ds.GetRasterCount()) {
    const Window in = win.intersection({0, 0, ds.GetRasterXSize(), ds.GetRasterYSize()});
    const int tsize = GDALGetDataTypeSizeBytes(type);
    if (!(in == win)) GDALCopyWords64(&fill, GDT_Float64, 0, buf, type, tsize, win.pixels());
    if (in.empty()) return;
    auto* dst = static_cast<unsigned char*>(buf) +
                ((in.y - win.y) * win.w + (in.x - win.x)) * static_cast<int64_t>(tsize);
    if (direct_->read(band, in, type, dst, win.w)) return;
  }
  read_window(ds, band, win, type, buf, fill);
}

GDALDataset& DatasetPool::local() {
  bool exists = false;
  DatasetPtr& h = handles_.local(exists);
  if (!h) h = open_raster(path_);
  return *h;
}

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
