// A direct reader of tiled, DEFLATE-compressed (or uncompressed) little-endian GeoTIFFs, the
// layout farmwatch writes and reads back between stages (Cloud-Optimized GeoTIFFs): it reads a
// tile's bytes with pread, inflates them with GDAL's libdeflate-backed CPLZLibInflate and undoes
// the predictor itself. libtiff undoes the horizontal and floating-point predictors a byte at a
// time through memory (each byte's sum waits for the previous store), which costs more than the
// inflate on Float32 rasters; here the running sum stays in a register and the floating-point
// byte planes are put back together in the same loop. Anything else (other compressions,
// big-endian files, strips, sparse tiles, odd sample sizes) is left to GDAL: open() returns
// null, and DatasetPool reads through GDAL as before; so is a file whose tiles do not all lie
// inside it (truncated). The values are GDAL's, bit for bit (tested against RasterIO for every
// predictor, type and interleave). FW_TIFF_DIRECT=NO (environment or GDAL config option) turns
// the reader off, for comparisons.
#pragma once

#include <gdal_priv.h>

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include <tbb/enumerable_thread_specific.h>

#include "engine/grid.hpp"

namespace fw {

// The size in bytes of one value of TIFF field type `type` (1 BYTE ... 18 IFD8), 0 if unknown.
std::size_t tiff_type_size(uint16_t type);

class TiffTiles {
 public:
  // The reader for `path`'s full-resolution image when its layout is one this reader handles
  // and it agrees with what GDAL sees in `ds` (size, band count, type); null otherwise.
  static std::unique_ptr<TiffTiles> open(const std::string& path, GDALDataset& ds);
  ~TiffTiles();
  TiffTiles(const TiffTiles&) = delete;
  TiffTiles& operator=(const TiffTiles&) = delete;

  // Reads band `band` (1-based) over `win`, which lies inside the raster, into `buf` (rows
  // `stride` values apart, of type `type`, converted as GDALCopyWords does). False when a tile
  // is sparse (no bytes): the caller reads through GDAL then.
  bool read(int band, const Window& win, GDALDataType type, void* buf, int64_t stride) const;

 private:
  TiffTiles() = default;
  // The decoded tile `index` (all its samples), from this thread's cache or decoded now; null
  // when the tile is sparse. Each thread keeps its most recent tiles: two, or for a
  // pixel-interleaved file (read band by band) a row of tiles and one more, up to 32 MiB.
  const uint8_t* tile(int64_t index) const;
  void decode(int64_t index, std::vector<uint8_t>& out) const;

  std::string path_;
  int fd_ = -1;
  int64_t width_ = 0, height_ = 0, tile_w_ = 0, tile_h_ = 0, across_ = 0, down_ = 0;
  int samples_ = 1, bytes_ = 1, compression_ = 1, predictor_ = 1;
  bool separate_ = false;
  GDALDataType type_ = GDT_Unknown;
  std::vector<uint64_t> offsets_, counts_;
  struct Tile {
    int64_t index = -1;
    std::vector<uint8_t> data;
  };
  struct Cache {
    std::list<Tile> tiles;  // most recent first
  };
  std::size_t cache_tiles_ = 2;
  mutable tbb::enumerable_thread_specific<Cache> cache_;
};

}  // namespace fw
