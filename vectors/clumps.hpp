// 8-connected clumps of equal non-zero codes, found in one streaming pass over the rows of a
// code raster (0 = background). Memory is bounded by the row width (the clumps open on the
// previous row), never by the raster's height; each clump is reported once, as soon as the row
// below it has none of its cells.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

namespace fw::vectors {

// Statistics of one value channel over a clump's cells (NaN cells skipped).
struct ChannelStats {
  double sum = 0;
  int64_t count = 0;
  double max = -std::numeric_limits<double>::infinity();
  void merge(const ChannelStats& o) {
    sum += o.sum;
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
};

class ClumpFinder {
 public:
  using Sink = std::function<void(const Clump&)>;
  ClumpFinder(int64_t width, Sink sink);

  // The next row: `width` codes, and optionally up to Clump::kChannels rows of values (NaN:
  // no value; null: channel absent) accumulated over each clump's cells.
  void push_row(const uint8_t* codes,
                const std::array<const float*, Clump::kChannels>& values = {});
  // Reports the clumps still open (call once, after the last row).
  void finish();

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
  };
  int32_t find(int32_t x);
  int32_t unite(int32_t a, int32_t b);
  int32_t make(int code, int64_t row, int32_t col);
  void close_finished();

  int64_t width_;
  Sink sink_;
  int64_t row_ = 0;
  std::vector<Comp> comps_;
  std::vector<int32_t> free_, merged_;
  std::vector<Run> prev_, cur_;
};

}  // namespace fw::vectors
