// The history store's update at district scale: 50,000 patches and 100,000 parcels per run.
// Run 1 records every patch as a new case; run 2 moves 45,000 of them by one cell (persisting),
// drops 5,000 (resolved: seen cloud-free) and adds 5,000 new ones. Prints the seconds of each
// run's record_run (matching, observation of the undetected cases, the store transaction) and
// the peak memory.
//
//   bench_history --store FILE.gpkg|PG:... [--patches 50000] [--parcels 100000] [--dir /tmp/x]
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/grid.hpp"
#include "engine/log.hpp"
#include "pipelines/history.hpp"

namespace h = fw::pipelines::history;

namespace {

fw::GeometryPtr square(double x0, double y0, double side) {
  auto ring = std::make_unique<OGRLinearRing>();
  ring->addPoint(x0, y0);
  ring->addPoint(x0 + side, y0);
  ring->addPoint(x0 + side, y0 - side);
  ring->addPoint(x0, y0 - side);
  ring->addPoint(x0, y0);
  auto poly = std::make_unique<OGRPolygon>();
  poly->addRingDirectly(ring.release());
  return fw::GeometryPtr(poly.release());
}

double peak_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string store, dir = "/tmp/fw-bench-history";
  int64_t npatch = 50000, nparcel = 100000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--store") store = argv[i + 1];
    if (a == "--patches") npatch = std::atoll(argv[i + 1]);
    if (a == "--parcels") nparcel = std::atoll(argv[i + 1]);
    if (a == "--dir") dir = argv[i + 1];
  }
  if (store.empty()) {
    std::fprintf(stderr,
                 "usage: bench_history --store FILE.gpkg|PG:... [--patches N] [--parcels N]\n");
    return 2;
  }
  try {
    fw::init_gdal();
    if (std::getenv("FW_BENCH_DEBUG")) fw::log::set_level(fw::log::Level::kDebug);
    std::filesystem::create_directories(dir);
    // Patches on a lattice of 100 m, each 40 m square; the change map covers them all.
    const auto side = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(npatch) * 1.2)));
    const double x0 = 500000, y0 = 3400000;
    const int64_t px = side * 10 + 10;
    const fw::Grid grid(fw::GeoTransform::north_up(x0, y0, 10, 10), px, px,
                        fw::Crs::from_epsg(32650));
    const std::string cls = dir + "/change_class.tif";
    {
      fw::DatasetPtr ds(fw::driver("GTiff").Create(cls.c_str(), static_cast<int>(px),
                                                   static_cast<int>(px), 1, GDT_Byte, nullptr));
      double gt[6];
      std::copy(grid.transform().c.begin(), grid.transform().c.end(), gt);
      ds->SetGeoTransform(gt);
      ds->SetProjection(grid.crs().wkt().c_str());
      ds->GetRasterBand(1)->SetNoDataValue(255);
      ds->GetRasterBand(1)->Fill(0);
    }
    auto make = [&](int run, fw::vectors::PatchSet& set) {
      set.grid = grid;
      const char* cats[] = {"construction", "bare_soil", "water_gain", "vegetation_loss"};
      // Run 2: one in ten gone, the rest moved by a cell, as many new ones further on.
      const int64_t end = npatch + (run == 2 ? npatch / 10 : 0);
      for (int64_t k = 0; k < end; ++k) {
        if (run == 2 && k < npatch && k % 10 == 9) continue;
        const int64_t r = k / side, c = k % side;
        fw::vectors::Patch p;
        char id[64];
        std::snprintf(id, sizeof id, "CP-%06lld-%06lld", static_cast<long long>(r),
                      static_cast<long long>(c));
        p.id = id;
        p.category = cats[k % 4];
        p.priority = static_cast<int>(k % 3) + 1;
        const double shift = run == 2 && k < npatch ? 10 : 0;
        p.geom = square(x0 + static_cast<double>(c) * 100 + 20 + shift,
                        y0 - static_cast<double>(r) * 100 - 20, 40);
        p.area_m2 = 1600;
        set.patches.push_back(std::move(p));
      }
    };
    fw::vectors::ParcelSet parcels;
    fw::vectors::Indicators ind;
    ind.columns = fw::vectors::indicator_columns();
    for (int64_t i = 0; i < nparcel; ++i) {
      fw::vectors::Parcel p;
      char id[64];
      std::snprintf(id, sizeof id, "P%07lld", static_cast<long long>(i));
      p.id = id;
      parcels.parcels.push_back(std::move(p));
      std::vector<double> row(ind.columns.size(), 0.5);
      row[2] = row[3] = (i % 20 == 0) ? 0.2 : 1.0;  // 1 in 20 cloud-blocked
      ind.rows.push_back(std::move(row));
      ind.alert.push_back(0);
      ind.flags.emplace_back();
    }
    std::printf("store %s: %lld patches, %lld parcels per run\n",
                store.rfind("PG:", 0) == 0 ? "PostGIS" : "GeoPackage",
                static_cast<long long>(npatch), static_cast<long long>(nparcel));
    for (int run = 1; run <= 2; ++run) {
      fw::vectors::PatchSet set;
      make(run, set);
      h::Settings s;
      s.store = store;
      s.run_date = run == 1 ? "2026-01-01" : "2026-02-01";
      s.family = h::default_families();
      h::RunInput in;
      in.run_key = "bench-" + std::to_string(run);
      in.patches = &set;
      in.change_class = cls;
      in.parcels = &parcels;
      in.indicators = &ind;
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = h::record_run(s, in);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf(
          "run %d: %.2f s  (%zu patches: %lld new, %lld persisting, %lld expanded, %lld "
          "resolved; %zu parcel rows)  peak %.0f MiB\n",
          run, secs, set.patches.size(), static_cast<long long>(r.counts.new_cases),
          static_cast<long long>(r.counts.persisting), static_cast<long long>(r.counts.expanded),
          static_cast<long long>(r.counts.resolved), r.parcels.size(), peak_mib());
      std::fflush(stdout);
    }
  } catch (const fw::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
