// The block scheduler on a pass-through kernel beside a plain GDAL RasterIO loop, on the same
// file and with the same output settings. Input: FW_BENCH_INPUT (a multiband GeoTIFF, for
// example a synth date); bench/run_bench.sh makes one.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>

#include "engine/raster_io.hpp"
#include "engine/scheduler.hpp"

namespace {

std::string input() {
  const char* p = std::getenv("FW_BENCH_INPUT");
  return p ? p : "bench/out/scene/date1.tif";
}
const std::string kOut = "/tmp/fw_bench_copy.tif";

fw::GdalOptions out_options(int threads) {
  fw::GdalOptions o;
  o.set("ZLEVEL", "6").set("NUM_THREADS", std::to_string(threads));
  return o;
}

// Decoding only: every band read block row by block row with one handle.
void BM_GdalRasterIO_Read(benchmark::State& state) {
  fw::init_gdal();
  for (auto _ : state) {
    fw::DatasetPtr ds = fw::open_raster(input());
    const int w = ds->GetRasterXSize(), h = ds->GetRasterYSize(), nb = ds->GetRasterCount();
    int bw, bh;
    fw::block_size(*ds, bw, bh);
    std::vector<uint16_t> buf(static_cast<std::size_t>(w) * bh);
    uint64_t sum = 0;
    for (int b = 1; b <= nb; ++b) {
      for (int y = 0; y < h; y += bh) {
        const int rows = std::min(bh, h - y);
        fw::read_window(*ds, b, {0, y, w, rows}, GDT_UInt16, buf.data());
        sum += buf[0];
      }
    }
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(state.items_processed() + int64_t{w} * h);
  }
}

// Decoding + re-encoding: the plain GDAL loop, one thread.
void BM_GdalRasterIO_Copy(benchmark::State& state) {
  fw::init_gdal();
  for (auto _ : state) {
    fw::DatasetPtr ds = fw::open_raster(input());
    const fw::Grid grid = fw::Grid::of(*ds);
    const int w = ds->GetRasterXSize(), h = ds->GetRasterYSize(), nb = ds->GetRasterCount();
    int bw, bh;
    fw::block_size(*ds, bw, bh);
    fw::DatasetPtr out = fw::create_gtiff(kOut, grid, nb, GDT_UInt16, out_options(1));
    std::vector<uint16_t> buf(static_cast<std::size_t>(w) * bh);
    for (int y = 0; y < h; y += bh) {
      const int rows = std::min(bh, h - y);
      for (int b = 1; b <= nb; ++b) {
        fw::read_window(*ds, b, {0, y, w, rows}, GDT_UInt16, buf.data());
        fw::write_window(*out, b, {0, y, w, rows}, GDT_UInt16, buf.data());
      }
    }
    fw::close_dataset(out, kOut);
    state.SetItemsProcessed(state.items_processed() + int64_t{w} * h);
  }
  std::remove(kOut.c_str());
}

fw::SchedulerOptions sched_options(int threads) {
  fw::SchedulerOptions o;
  o.threads = threads;
  o.memory_mib = 256;
  return o;
}

void BM_Scheduler_Read(benchmark::State& state) {
  fw::init_gdal();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    fw::DatasetPool pool(input());
    GDALDataset& ds0 = pool.local();
    const int w = ds0.GetRasterXSize(), h = ds0.GetRasterYSize(), nb = ds0.GetRasterCount();
    int bw, bh;
    fw::block_size(ds0, bw, bh);
    fw::BlockScheduler s(sched_options(threads));
    const uint64_t sum = s.reduce<uint64_t>(
        s.plan(w, h, bw, bh, 2.0 * nb),
        [&](const fw::Window& win, std::size_t) {
          std::vector<uint16_t> buf;
          uint64_t acc = 0;
          for (int b = 1; b <= nb; ++b) {
            fw::read_window(pool.local(), b, win, buf);
            acc += buf[0];
          }
          return acc;
        },
        uint64_t{0}, [](uint64_t& a, uint64_t p) { a += p; });
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(state.items_processed() + int64_t{w} * h);
  }
}

void BM_Scheduler_Copy(benchmark::State& state) {
  fw::init_gdal();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    fw::DatasetPool pool(input());
    GDALDataset& ds0 = pool.local();
    const fw::Grid grid = fw::Grid::of(ds0);
    const int w = ds0.GetRasterXSize(), h = ds0.GetRasterYSize(), nb = ds0.GetRasterCount();
    int bw, bh;
    fw::block_size(ds0, bw, bh);
    fw::DatasetPtr out = fw::create_gtiff(kOut, grid, nb, GDT_UInt16, out_options(threads));
    fw::BlockScheduler s(sched_options(threads));
    s.run<std::vector<uint16_t>>(
        s.plan(w, h, bw, bh, 2.0 * nb),
        [&](const fw::Window& win, std::size_t) {
          std::vector<uint16_t> buf(static_cast<std::size_t>(win.pixels() * nb));
          for (int b = 0; b < nb; ++b) {
            fw::read_window(pool.local(), b + 1, win, GDT_UInt16,
                            buf.data() + static_cast<std::size_t>(b * win.pixels()));
          }
          return buf;
        },
        [&](const fw::Window& win, std::size_t, std::vector<uint16_t>& buf) {
          for (int b = 0; b < nb; ++b) {
            fw::write_window(*out, b + 1, win, GDT_UInt16,
                             buf.data() + static_cast<std::size_t>(b * win.pixels()));
          }
        });
    fw::close_dataset(out, kOut);
    state.SetItemsProcessed(state.items_processed() + int64_t{w} * h);
  }
  std::remove(kOut.c_str());
}

BENCHMARK(BM_GdalRasterIO_Read)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Scheduler_Read)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GdalRasterIO_Copy)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Scheduler_Copy)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
