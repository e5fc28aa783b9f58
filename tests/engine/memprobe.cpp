// Runs the block scheduler over a large sparse raster and prints this process's peak memory, so
// that the memory-budget test can compare peaks for different raster sizes.
// usage: fw_memprobe PATH SIZE BUDGET_MIB CACHE_MIB
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "engine/raster_io.hpp"
#include "engine/scheduler.hpp"

namespace {
long status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::string(key).size());
  }
  return -1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  const std::string path = argv[1];
  const int size = std::atoi(argv[2]);
  const double budget = std::atof(argv[3]);
  fw::init_gdal();
  fw::set_gdal_cache_bytes(static_cast<int64_t>(std::atof(argv[4]) * 1024 * 1024));
  {
    const fw::Grid grid(fw::GeoTransform::north_up(0, 0, 10, 10), size, size);
    fw::DatasetPtr ds = fw::create_gtiff(
        path, grid, 4, GDT_UInt16,
        fw::GdalOptions{}.set("COMPRESS", "NONE").set("SPARSE_OK", "TRUE").set("PREDICTOR", "1"));
    // One written block, the rest sparse.
    std::vector<uint16_t> block(256 * 256, 7);
    fw::write_window(*ds, 1, {0, 0, 256, 256}, block);
    fw::close_dataset(ds, path);
  }
  const long before = status_kb("VmRSS:");
  fw::SchedulerOptions so;
  so.memory_mib = budget;
  fw::BlockScheduler sched(so);
  fw::DatasetPool pool(path);
  const fw::WindowPlan plan = sched.plan(size, size, 256, 256, 4 * 2);
  const uint64_t sum = sched.reduce<uint64_t>(
      plan,
      [&](const fw::Window& w, std::size_t) {
        std::vector<uint16_t> buf;
        uint64_t s = 0;
        for (int b = 1; b <= 4; ++b) {
          fw::read_window(pool.local(), b, w, buf);
          for (uint16_t v : buf) s += v;
        }
        return s;
      },
      uint64_t{0}, [](uint64_t& acc, uint64_t part) { acc += part; });
  std::printf("%ld %ld %zu %d %llu\n", before, status_kb("VmHWM:"), plan.size(), sched.tokens(),
              static_cast<unsigned long long>(sum));
  std::remove(path.c_str());
  return sum == 7ull * 256 * 256 ? 0 : 1;
}
