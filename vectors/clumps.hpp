// 8-connected clumps of equal non-zero codes, found in one streaming pass over the rows of a
// code raster (0 = background), or of a band of its rows (then the runs on the band's first and
// last rows tell which clumps continue into the neighbouring bands). Memory is bounded by the row
// width (the clumps open on the previous row), never by the raster's height; each clump is reported
// once, as soon as the row below it has none of its cells.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

namespace fw::vectors {

// Statistics of one value channel over a clump's cells (NaN cells skipped). The sum is kept in
// fixed point (units of 2^-36, values truncated toward zero, magnitudes clamped to 2^26), in
// 128 bits: exact whatever the order of the additions, so a clump stitched from the pieces
// shards found (pipelines' patch fragments) has the bits of the clump found whole.
struct ChannelStats {
  __extension__ using Fixed = __int128;
  static constexpr double kScale = 68719476736.0;          // 2^36
  static constexpr double kLimit = 4611686018427387904.0;  // 2^62, in units
  Fixed fixed = 0;
  int64_t count = 0;
  double max = -std::numeric_limits<double>::infinity();
  void add(double z) {
    const double u = z * kScale;
    fixed += static_cast<int64_t>(u < -kLimit ? -kLimit : (u > kLimit ? kLimit : u));
    ++count;
    if (z > max) max = z;
  }
  double sum() const { return static_cast<double>(fixed) / kScale; }
  double mean() const {
    return count ? sum() / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
  }
  void merge(const ChannelStats& o) {
    fixed += o.fixed;
    count += o.count;
    max = o.max > max ? o.max : max;
  }
};

struct Clump {
  static constexpr int kChannels = 4;
  int code = 0;
  int64_t cells = 0;
  int64_t row0 = 0, col0 = 0, row1 = 0, col1 = 0;  // bounding box, inclusive
  int64_t seed_row = 0, seed_col = 0;              // its first cell in raster order
  std::array<ChannelStats, kChannels> channels{};  // the values given with the rows

  // Joins another clump of the same code: cells, box, first cell and channels.
  void merge(const Clump& o) {
    cells += o.cells;
    row0 = o.row0 < row0 ? o.row0 : row0;
    col0 = o.col0 < col0 ? o.col0 : col0;
    row1 = o.row1 > row1 ? o.row1 : row1;
    col1 = o.col1 > col1 ? o.col1 : col1;
    if (o.seed_row < seed_row || (o.seed_row == seed_row && o.seed_col < seed_col))
      seed_row = o.seed_row, seed_col = o.seed_col;
    for (int k = 0; k < kChannels; ++k) channels[k].merge(o.channels[k]);
  }
};

// A run of one row's cells with one code, and the first cell of its clump (a clump's identity).
struct BoundaryRun {
  int32_t c0 = 0, c1 = 0;  // columns [c0, c1)
  int32_t code = 0;
  int64_t seed_row = 0, seed_col = 0;
};

class ClumpFinder {
 public:
  using Sink = std::function<void(const Clump&)>;
  // Rows are numbered from `first_row` (the raster row of the first row pushed).
  ClumpFinder(int64_t width, Sink sink, int64_t first_row = 0);

  // The next row: `width` codes, and optionally up to Clump::kChannels rows of values (NaN:
  // no value; null: channel absent) accumulated over each clump's cells.
  void push_row(const uint8_t* codes,
                const std::array<const float*, Clump::kChannels>& values = {});
  // Reports the clumps still open (call once, after the last row).
  void finish();

  // The runs of the first row pushed and, after finish(), of the last, each with its clump's
  // first cell: what joins a band of rows to the bands above and below it.
  const std::vector<BoundaryRun>& first_runs() const { return first_runs_; }
  const std::vector<BoundaryRun>& last_runs() const { return last_runs_; }

  // The row after the last pushed (first_row + rows pushed).
  int64_t rows() const { return row_; }
  // The first row of the oldest clump still open (rows() when none is).
  int64_t oldest_open_row();

 private:
  struct Run {
    int32_t c0, c1;  // columns [c0, c1)
    int32_t comp;
    uint8_t code;
  };
  struct Comp {
    int32_t parent;
    int64_t seen_row;  // the last row with a cell of it
    Clump c;
    std::vector<int32_t> firsts;  // its runs on the first row (indices into first_runs_)
  };
  int32_t find(int32_t x);
  int32_t unite(int32_t a, int32_t b);
  int32_t make(int code, int64_t row, int32_t col);
  void close_finished();

  int64_t width_;
  Sink sink_;
  int64_t first_row_ = 0, row_ = 0;
  std::vector<BoundaryRun> first_runs_, last_runs_;
  std::vector<Comp> comps_;
  std::vector<int32_t> free_, merged_;
  std::vector<Run> prev_, cur_;
};

// One band of rows (a shard's): the clumps that touch its first or last row (they may continue
// into the bands above or below), and its runs on those rows.
struct ClumpBand {
  int64_t first_row = 0, last_row = 0;  // inclusive
  std::vector<Clump> open;
  std::vector<BoundaryRun> top, bottom;
};

// Joins the open clumps of bands that follow each other (in row order, without gaps) where their
// boundary runs touch (8-connected, same code). Every open clump is in exactly one result; each
// result has the cells, box, first cell and channel statistics of the clump one pass over the
// whole raster finds. In first-cell order. Throws fw::Error (internal) when bands leave a gap or
// a run names no clump of its band.
std::vector<Clump> stitch_bands(const std::vector<ClumpBand>& bands);

}  // namespace fw::vectors
