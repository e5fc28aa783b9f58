// Cloud-Optimized GeoTIFF output, written atomically: windows go into an uncompressed tiled
// temporary beside the target; commit() builds overviews and statistics, encodes the COG with
// GDAL's COG driver (tiles compressed on all threads) and renames it into place.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/atomic_file.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/grid.hpp"

namespace fw::rasters {

struct CogOptions {
  GDALDataType type = GDT_Float32;
  double nodata = -9999.0;
  std::string compress = "DEFLATE";      // DEFLATE, ZSTD, LZW, NONE
  int level = 1;                         // codec level (DEFLATE 1..9, ZSTD 1..22)
  std::string overview_resampling = "AVERAGE";  // NEAREST for classes
  std::vector<std::string> descriptions;  // per band
  double scale = 1.0, offset = 0.0;       // GDAL band scale/offset (Int16 x 10000: 1e-4)
  std::map<std::string, std::string> metadata;
  std::vector<std::array<short, 4>> colors;   // colour table (class rasters), index = value
  std::vector<std::string> category_names;    // raster attribute names, index = value
  int threads = 0;                            // 0 = default_threads()
};

class CogWriter {
 public:
  CogWriter(std::string path, const Grid& grid, int bands, CogOptions options);
  ~CogWriter();
  CogWriter(const CogWriter&) = delete;
  CogWriter& operator=(const CogWriter&) = delete;

  // Writes a window of band `band` (1-based); `data` holds win.pixels() values of options.type.
  void write(int band, const Window& win, const void* data);
  // Finishes the file and moves it into place; throws fw::Error (output) on failure.
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  CogOptions options_;
  AtomicPath final_, raw_;
  DatasetPtr ds_;
};

}  // namespace fw::rasters
