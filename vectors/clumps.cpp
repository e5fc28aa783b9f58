#include "vectors/clumps.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <tuple>

#include "engine/error.hpp"

namespace fw::vectors {

ClumpFinder::ClumpFinder(int64_t width, Sink sink, int64_t first_row)
    : width_(width), sink_(std::move(sink)), first_row_(first_row), row_(first_row) {}

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
  x->c.merge(y->c);
  x->seen_row = std::max(x->seen_row, y->seen_row);
  if (!y->firsts.empty()) {
    x->firsts.insert(x->firsts.end(), y->firsts.begin(), y->firsts.end());
    y->firsts.clear();
  }
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
  c.firsts.clear();
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
        if (z == z) s.add(z);
      }
    }
    if (row_ == first_row_) {
      c.firsts.push_back(static_cast<int32_t>(first_runs_.size()));
      first_runs_.push_back({a, b, code, 0, 0});
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
    for (int32_t k : c.firsts) {
      first_runs_[static_cast<std::size_t>(k)].seed_row = c.c.seed_row;
      first_runs_[static_cast<std::size_t>(k)].seed_col = c.c.seed_col;
    }
    c.firsts.clear();
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
  last_runs_.clear();
  for (const Run& r : prev_) {
    const Clump& c = comps_[static_cast<std::size_t>(find(r.comp))].c;
    last_runs_.push_back({r.c0, r.c1, r.code, c.seed_row, c.seed_col});
  }
  cur_.clear();
  close_finished();
  prev_.clear();
}

std::vector<Clump> stitch_bands(const std::vector<ClumpBand>& bands) {
  // Every open clump, by its first cell.
  std::vector<const Clump*> all;
  std::map<std::pair<int64_t, int64_t>, std::size_t> by_seed;
  for (const ClumpBand& b : bands) {
    for (const Clump& c : b.open) {
      by_seed.emplace(std::make_pair(c.seed_row, c.seed_col), all.size());
      all.push_back(&c);
    }
  }
  std::vector<std::size_t> parent(all.size());
  std::iota(parent.begin(), parent.end(), std::size_t{0});
  auto find = [&](std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  auto of = [&](const BoundaryRun& r) {
    const auto it = by_seed.find({r.seed_row, r.seed_col});
    if (it == by_seed.end())
      throw_internal("clump band: a boundary run at column " + std::to_string(r.c0) +
                     " names no open clump (first cell row " + std::to_string(r.seed_row) +
                     ", column " + std::to_string(r.seed_col) + ")");
    return it->second;
  };
  for (std::size_t k = 0; k + 1 < bands.size(); ++k) {
    const ClumpBand &up = bands[k], &down = bands[k + 1];
    if (down.first_row != up.last_row + 1)
      throw_internal("clump bands leave a gap: rows " + std::to_string(up.last_row) + " and " +
                     std::to_string(down.first_row));
    // Runs of one row are in column order and apart, so both lists advance together.
    std::size_t j = 0;
    for (const BoundaryRun& t : down.top) {
      while (j < up.bottom.size() && up.bottom[j].c1 < t.c0) ++j;
      for (std::size_t q = j; q < up.bottom.size() && up.bottom[q].c0 <= t.c1; ++q) {
        if (up.bottom[q].code != t.code) continue;
        const std::size_t a = find(of(up.bottom[q])), b = find(of(t));
        if (a != b) parent[std::max(a, b)] = std::min(a, b);
      }
    }
  }
  std::map<std::size_t, Clump> joined;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const Clump& y = *all[i];
    auto [it, fresh] = joined.try_emplace(find(i), y);
    if (!fresh) it->second.merge(y);
  }
  std::vector<Clump> out;
  out.reserve(joined.size());
  for (auto& [root, c] : joined) out.push_back(c);
  std::sort(out.begin(), out.end(), [](const Clump& a, const Clump& b) {
    return std::tie(a.seed_row, a.seed_col) < std::tie(b.seed_row, b.seed_col);
  });
  return out;
}

}  // namespace fw::vectors
