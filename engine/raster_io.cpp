#include "engine/raster_io.hpp"

#include <algorithm>
#include <cstring>

#include "engine/error.hpp"

namespace fw {

void read_window(GDALDataset& ds, int band, const Window& win, GDALDataType type, void* buf,
                 double fill) {
  const std::string path = ds.GetDescription();
  if (band < 1 || band > ds.GetRasterCount()) {
    throw_input("band " + std::to_string(band) + " does not exist (the raster has " +
                    std::to_string(ds.GetRasterCount()) + ")",
                {.file = path});
  }
  const Window full{0, 0, ds.GetRasterXSize(), ds.GetRasterYSize()};
  const Window in = win.intersection(full);
  const int tsize = GDALGetDataTypeSizeBytes(type);
  if (!(in == win)) {
    // Fill the whole buffer first, then read the inside part.
    GDALCopyWords64(&fill, GDT_Float64, 0, buf, type, tsize, win.pixels());
    if (in.empty()) return;
  }
  GDALRasterBand* b = ds.GetRasterBand(band);
  auto* dst = static_cast<unsigned char*>(buf) +
              ((in.y - win.y) * win.w + (in.x - win.x)) * static_cast<int64_t>(tsize);
  CPLErrorReset();
  if (b->RasterIO(GF_Read, static_cast<int>(in.x), static_cast<int>(in.y), static_cast<int>(in.w),
                  static_cast<int>(in.h), dst, static_cast<int>(in.w), static_cast<int>(in.h), type,
                  tsize, static_cast<GSpacing>(win.w) * tsize, nullptr) != CE_None) {
    throw_input("read failed (corrupt or truncated raster?): " + last_gdal_error(),
                {.file = path, .band = band});
  }
}

void write_window(GDALDataset& ds, int band, const Window& win, GDALDataType type,
                  const void* buf) {
  GDALRasterBand* b = ds.GetRasterBand(band);
  CPLErrorReset();
  if (b->RasterIO(GF_Write, static_cast<int>(win.x), static_cast<int>(win.y),
                  static_cast<int>(win.w), static_cast<int>(win.h), const_cast<void*>(buf),
                  static_cast<int>(win.w), static_cast<int>(win.h), type, 0, 0,
                  nullptr) != CE_None) {
    throw_output("write failed: " + last_gdal_error(), {.file = ds.GetDescription(), .band = band});
  }
}

void block_size(GDALDataset& ds, int& bw, int& bh) {
  ds.GetRasterBand(1)->GetBlockSize(&bw, &bh);
}

DatasetPtr create_gtiff(const std::string& path, const Grid& grid, int bands, GDALDataType type,
                        const GdalOptions& extra, int tile) {
  GdalOptions o;
  o.set("TILED", "YES").set("BLOCKXSIZE", std::to_string(tile));
  o.set("BLOCKYSIZE", std::to_string(tile)).set("COMPRESS", "DEFLATE");
  o.set("PREDICTOR", (type == GDT_Float32 || type == GDT_Float64) ? "3" : "2");
  o.set("BIGTIFF", "IF_SAFER").set("INTERLEAVE", "BAND");
  for (char** it = extra.get(); it && *it; ++it) {
    char* key = nullptr;
    const char* value = CPLParseNameValue(*it, &key);
    if (key && value) o.set(key, value);
    CPLFree(key);
  }
  CPLErrorReset();
  DatasetPtr ds(driver("GTiff").Create(path.c_str(), static_cast<int>(grid.width()),
                                       static_cast<int>(grid.height()), bands, type, o.get()));
  if (!ds) throw_output("cannot create GeoTIFF: " + last_gdal_error(), {.file = path});
  ds->SetGeoTransform(const_cast<double*>(grid.transform().c.data()));
  if (!grid.crs().empty()) ds->SetSpatialRef(grid.crs().ogr());
  return ds;
}

}  // namespace fw
