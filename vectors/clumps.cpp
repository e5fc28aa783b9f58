#include "vectors/clumps.hpp"

#include <algorithm>
#include <cstring>
#include <tuple>

namespace fw::vectors {

ClumpFinder::ClumpFinder(int64_t width, Sink sink) : width_(width), sink_(std::move(sink)) {}

int32_t ClumpFinder::find(int32_t x) {
  while (comps_[static_cast<std::size_t>(x)].parent != x) {
    auto& c = comps_[static_cast<std::size_t>(x)];
    c.parent = comps_[static_cast<std::size_t>(c.parent)].parent;
    x = c.parent;
  }
  return x;
}

// The clump whose first cell comes first in raster order survives (so the result does not depend
// on the order runs meet); the other is merged into it and freed after the row.
int32_t ClumpFinder::unite(int32_t a, int32_t b) {
  Comp* x = &comps_[static_cast<std::size_t>(a)];
  Comp* y = &comps_[static_cast<std::size_t>(b)];
  if (std::tie(y->c.seed_row, y->c.seed_col) < std::tie(x->c.seed_row, x->c.seed_col)) {
    std::swap(a, b);
    std::swap(x, y);
  }
  x->c.cells += y->c.cells;
  x->c.row0 = std::min(x->c.row0, y->c.row0);
  x->c.col0 = std::min(x->c.col0, y->c.col0);
  x->c.row1 = std::max(x->c.row1, y->c.row1);
  x->c.col1 = std::max(x->c.col1, y->c.col1);
  x->seen_row = std::max(x->seen_row, y->seen_row);
  for (int k = 0; k < Clump::kChannels; ++k) x->c.channels[k].merge(y->c.channels[k]);
  y->parent = a;
  merged_.push_back(b);
  return a;
}

int32_t ClumpFinder::make(int code, int64_t row, int32_t col) {
  int32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<int32_t>(comps_.size());
    comps_.emplace_back();
  }
  Comp& c = comps_[static_cast<std::size_t>(id)];
  c.parent = id;
  c.seen_row = row;
  c.c = Clump{};
  c.c.code = code;
  c.c.row0 = c.c.row1 = c.c.seed_row = row;
  c.c.col0 = c.c.col1 = c.c.seed_col = col;
  return id;
}

void ClumpFinder::push_row(const uint8_t* codes,
                           const std::array<const float*, Clump::kChannels>& values) {
  cur_.clear();
  const auto w = static_cast<int32_t>(width_);
  std::size_t j = 0;
  int32_t x = 0;
  while (x < w) {
    // Skip the background eight cells at a time.
    while (x + 8 <= w) {
      uint64_t v;
      std::memcpy(&v, codes + x, 8);
      if (v) break;
      x += 8;
    }
    while (x < w && codes[x] == 0) ++x;
    if (x >= w) break;
    const uint8_t code = codes[x];
    const int32_t a = x;
    while (x < w && codes[x] == code) ++x;
    const int32_t b = x;
    // Runs of the row above touching [a - 1, b] (8-connected) with the same code.
    while (j < prev_.size() && prev_[j].c1 < a) ++j;
    int32_t root = -1;
    for (std::size_t k = j; k < prev_.size() && prev_[k].c0 <= b; ++k) {
      if (prev_[k].code != code) continue;
      const int32_t r = find(prev_[k].comp);
      root = root < 0 ? r : (r == root ? root : unite(root, r));
    }
    if (root < 0) root = make(code, row_, a);
    Comp& c = comps_[static_cast<std::size_t>(root)];
    c.c.cells += b - a;
    c.c.col0 = std::min<int64_t>(c.c.col0, a);
    c.c.col1 = std::max<int64_t>(c.c.col1, b - 1);
    c.c.row1 = row_;
    c.seen_row = row_;
    for (int k = 0; k < Clump::kChannels; ++k) {
      const float* v = values[static_cast<std::size_t>(k)];
      if (!v) continue;
      ChannelStats& s = c.c.channels[static_cast<std::size_t>(k)];
      for (int32_t q = a; q < b; ++q) {
        const double z = v[q];
        if (z != z) continue;
        s.sum += z;
        ++s.count;
        if (z > s.max) s.max = z;
      }
    }
    cur_.push_back({a, b, root, code});
  }
  for (Run& r : cur_) r.comp = find(r.comp);
  close_finished();
  std::swap(prev_, cur_);
  ++row_;
}

// Clumps on the previous row without a cell on this one are complete: reported, then freed
// with the clumps merged during this row.
void ClumpFinder::close_finished() {
  for (const Run& r : prev_) {
    const int32_t root = find(r.comp);
    Comp& c = comps_[static_cast<std::size_t>(root)];
    if (c.seen_row == row_ || c.seen_row < 0) continue;
    sink_(c.c);
    c.seen_row = -1;
    free_.push_back(root);
  }
  for (int32_t m : merged_) free_.push_back(m);
  merged_.clear();
}

int64_t ClumpFinder::oldest_open_row() {
  int64_t r = row_;
  for (const Run& run : prev_)
    r = std::min(r, comps_[static_cast<std::size_t>(find(run.comp))].c.row0);
  return r;
}

void ClumpFinder::finish() {
  cur_.clear();
  close_finished();
  prev_.clear();
}

}  // namespace fw::vectors
