// Cloud-Optimized GeoTIFF output, written atomically.
//
// Fast path (single band, DEFLATE or no compression): tiles are encoded (predictor + DEFLATE, via
// GDAL's libdeflate-backed CPLZLibDeflate) in the scheduler's parallel stage, the overview pyramid
// is built on the fly from 2x2-reduced blocks, statistics are accumulated per window and merged
// in window order; commit() writes the IFDs first, then the overviews (smallest first), then the
// full-resolution tiles, as the COG layout requires. Georeferencing and GDAL metadata tags are
// taken from a one-pixel GeoTIFF that GDAL writes, so any CRS is encoded exactly as GDAL does.
// Other codecs (ZSTD, LZW) and multiband outputs go through GDAL's COG driver.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/atomic_file.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/grid.hpp"
#include "engine/partials.hpp"

namespace fw::rasters {

struct CogOptions {
  GDALDataType type = GDT_Float32;  // Float32, Int16, UInt16 or Byte
  double nodata = -9999.0;
  std::string compress = "DEFLATE";             // DEFLATE, ZSTD, LZW, NONE
  int level = 1;                                // codec level (DEFLATE 1..12, ZSTD 1..22)
  std::string overview_resampling = "AVERAGE";  // AVERAGE or NEAREST (classes)
  std::vector<std::string> descriptions;        // per band
  double scale = 1.0, offset = 0.0;             // GDAL band scale/offset (Int16 x 10000: 1e-4)
  std::map<std::string, std::string> metadata;  // dataset metadata
  std::vector<std::array<short, 4>> colors;     // colour table (class rasters), index = value
  std::vector<std::string> category_names;      // category names, index = value
  int threads = 0;                              // 0 = default_threads()
};

class CogWriter {
 public:
  // Tile size of the output, and the alignment that windows passed to encode() must have.
  static constexpr int kTile = 512;

  CogWriter(std::string path, const Grid& grid, int bands, CogOptions options);
  ~CogWriter();
  CogWriter(const CogWriter&) = delete;
  CogWriter& operator=(const CogWriter&) = delete;

  // A window's encoded data. encode() is thread-safe (call it from the parallel stage); add()
  // must be called serially, in window order. Windows start on multiples of kTile.
  struct Chunk;
  std::shared_ptr<Chunk> encode(int band, const Window& win, const void* data) const;
  // The same from values already as float (of the output type's range: integers for integer
  // types), skipping a conversion.
  std::shared_ptr<Chunk> encode_values(int band, const Window& win, const float* values) const;
  void add(const std::shared_ptr<Chunk>& chunk);
  // A chunk stored and read back exactly (shards ship their windows' chunks; the merge adds
  // them in window order and gets the one-machine file, byte for byte).
  static void write_chunk(const Chunk& chunk, ByteWriter& out);
  static std::shared_ptr<Chunk> read_chunk(ByteReader& in);
  // Several chunks (null ones included) stored and read back exactly.
  static void write_chunks(const std::vector<std::shared_ptr<Chunk>>& chunks, ByteWriter& out);
  static std::vector<std::shared_ptr<Chunk>> read_chunks(ByteReader& in);
  void write(int band, const Window& win, const void* data) { add(encode(band, win, data)); }

  // Finishes the file and moves it into place; throws fw::Error (output) on failure.
  void commit();
  const std::string& path() const { return path_; }
  bool fast_path() const { return fast_ != nullptr; }
  bool draft() const { return draft_; }

  // While a DraftScope lives, new writers write drafts: scratch rasters that only this process
  // reads back (a shard's replayed intermediates). A draft holds the same pixel values but has
  // no overviews, statistics or styling, and is not flushed to disk (a multi-band or classified
  // raster is its raw data described by a VRT); its chunks are complete, so a merge can still
  // write the whole file from them.
  class DraftScope {
   public:
    DraftScope();
    ~DraftScope();
    DraftScope(const DraftScope&) = delete;
    DraftScope& operator=(const DraftScope&) = delete;
  };

 private:
  struct Fast;
  bool draft_ = false;
  int full_levels_ = 0;  // fast path: the levels of the whole file (a draft writes the first)
  std::string path_;
  Grid grid_;
  CogOptions options_;
  AtomicPath final_, raw_;
  // GDAL path: the windows go into a plain band-sequential file with our own writes (GDAL's
  // block cache is shared by every thread: a dirty block of a dataset written here could be
  // flushed by another thread's read, racing the writes), read back through a VRT at commit().
  int raw_fd_ = -1;
  int bands_ = 1;
  std::unique_ptr<Fast> fast_;  // fast path state
};

// A pass's per-window result: encoded chunks, shipped between shards as they are
// (engine/shard_session.hpp).
struct Chunks {
  std::vector<std::shared_ptr<CogWriter::Chunk>> chunks;
  void write(ByteWriter& b) const { CogWriter::write_chunks(chunks, b); }
  static Chunks read(ByteReader& b) { return {CogWriter::read_chunks(b)}; }
};

// The same with a trivially copyable summary (counts, sums).
template <class S>
struct ChunksWith {
  std::vector<std::shared_ptr<CogWriter::Chunk>> chunks;
  S summary{};
  void write(ByteWriter& b) const {
    CogWriter::write_chunks(chunks, b);
    b.put(summary);
  }
  static ChunksWith read(ByteReader& b) {
    ChunksWith o;
    o.chunks = CogWriter::read_chunks(b);
    o.summary = b.get<S>();
    return o;
  }
};

}  // namespace fw::rasters
