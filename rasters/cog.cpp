#include "rasters/cog.hpp"

#include <gdal_rat.h>

#include <algorithm>

#include <chrono>

#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/raster_io.hpp"
#include "engine/scheduler.hpp"

namespace fw::rasters {

CogWriter::CogWriter(std::string path, const Grid& grid, int bands, CogOptions options)
    : path_(std::move(path)),
      options_(std::move(options)),
      final_(path_),
      raw_(final_.temp() + ".raw.tif") {
  ds_ = create_gtiff(raw_.temp(), grid, bands, options_.type,
                     GdalOptions{}.set("COMPRESS", "NONE").set("PREDICTOR", "1").set("BIGTIFF", "IF_NEEDED"),
                     512);
  for (int b = 1; b <= bands; ++b) {
    GDALRasterBand* band = ds_->GetRasterBand(b);
    band->SetNoDataValue(options_.nodata);
    if (static_cast<std::size_t>(b) <= options_.descriptions.size()) {
      band->SetDescription(options_.descriptions[static_cast<std::size_t>(b - 1)].c_str());
    }
    if (options_.scale != 1.0) band->SetScale(options_.scale);
    if (options_.offset != 0.0) band->SetOffset(options_.offset);
    if (!options_.colors.empty()) {
      GDALColorTable ct;
      for (std::size_t i = 0; i < options_.colors.size(); ++i) {
        const auto& c = options_.colors[i];
        GDALColorEntry e{c[0], c[1], c[2], c[3]};
        ct.SetColorEntry(static_cast<int>(i), &e);
      }
      band->SetColorTable(&ct);
    }
    if (!options_.category_names.empty()) {
      CPLStringList names;
      for (const auto& n : options_.category_names) names.AddString(n.c_str());
      band->SetCategoryNames(names.List());
    }
  }
  for (const auto& [k, v] : options_.metadata) ds_->SetMetadataItem(k.c_str(), v.c_str());
}

CogWriter::~CogWriter() { ds_.reset(); }

void CogWriter::write(int band, const Window& win, const void* data) {
  try {
    write_window(*ds_, band, win, options_.type, data);
  } catch (const Error& e) {
    throw Error(e.code(), e.message(), {.file = path_, .band = band});
  }
}

void CogWriter::commit() {
  const int threads = options_.threads > 0 ? options_.threads : default_threads();
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [&t0] {
    return std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  // Overviews on the uncompressed temporary, halving until the smaller side fits one tile.
  std::vector<int> levels;
  for (int f = 2; std::max(ds_->GetRasterXSize(), ds_->GetRasterYSize()) / f >= 256; f *= 2) {
    levels.push_back(f);
  }
  CPLErrorReset();
  if (!levels.empty() &&
      ds_->BuildOverviews(options_.overview_resampling.c_str(), static_cast<int>(levels.size()),
                          levels.data(), 0, nullptr, nullptr, nullptr) != CE_None) {
    throw_output("cannot build overviews: " + last_gdal_error(), {.file = path_});
  }
  log::debug("overviews built", {{"file", path_}, {"s", since()}});
  for (int b = 1; b <= ds_->GetRasterCount(); ++b) {
    double mn, mx, mean, sd;
    CPLErrorReset();
    // Exact statistics over valid pixels (an all-nodata band has none: skip, not an error).
    if (ds_->GetRasterBand(b)->ComputeStatistics(false, &mn, &mx, &mean, &sd, nullptr, nullptr) ==
        CE_None) {
      ds_->GetRasterBand(b)->SetStatistics(mn, mx, mean, sd);
    }
  }
  ds_->FlushCache(true);
  log::debug("statistics computed", {{"file", path_}, {"s", since()}});
  GdalOptions co;
  co.set("COMPRESS", options_.compress).set("NUM_THREADS", std::to_string(threads));
  co.set("BIGTIFF", "IF_SAFER").set("OVERVIEWS", "FORCE_USE_EXISTING").set("BLOCKSIZE", "512");
  if (options_.compress != "NONE") {
    co.set("PREDICTOR", "YES");
    if (options_.compress == "DEFLATE" || options_.compress == "ZSTD") {
      co.set("LEVEL", std::to_string(options_.level));
    }
  }
  CPLErrorReset();
  DatasetPtr out(driver("COG").CreateCopy(final_.temp().c_str(), ds_.get(), false, co.get(),
                                          nullptr, nullptr));
  if (!out) throw_output("cannot write the Cloud-Optimized GeoTIFF: " + last_gdal_error(), {.file = path_});
  close_dataset(out, path_);
  log::debug("COG encoded", {{"file", path_}, {"s", since()}});
  ds_.reset();
  raw_.discard();
  final_.commit();
}

}  // namespace fw::rasters
