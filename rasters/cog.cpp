#include "rasters/cog.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_vsi.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>

#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/raster_io.hpp"
#include "engine/scheduler.hpp"
#include "engine/tiff_tiles.hpp"

namespace fw::rasters {

namespace {

constexpr int kT = CogWriter::kTile;

int type_size(GDALDataType t) {
  return GDALGetDataTypeSizeBytes(t);
}

// A colour table (index = value) on a band; nothing when `colors` is empty.
void set_colors(GDALRasterBand& band, const std::vector<std::array<short, 4>>& colors) {
  if (colors.empty()) return;
  GDALColorTable ct;
  for (std::size_t i = 0; i < colors.size(); ++i) {
    const auto& c = colors[i];
    GDALColorEntry e{c[0], c[1], c[2], c[3]};
    ct.SetColorEntry(static_cast<int>(i), &e);
  }
  band.SetColorTable(&ct);
}

// Converts float values to the output type (values are already in range; nodata stays nodata).
void to_type(const float* in, std::size_t n, GDALDataType t, void* out) {
  GDALCopyWords64(in, GDT_Float32, 4, out, t, type_size(t), static_cast<GPtrDiff_t>(n));
}

// TIFF horizontal predictors, in place, on one tile of kT x kT samples.
void predict(unsigned char* tile, GDALDataType t, std::vector<unsigned char>& scratch) {
  const int sz = type_size(t);
  const std::size_t row_bytes = static_cast<std::size_t>(kT) * sz;
  if (t == GDT_Float32) {
    // Predictor 3: bytes of each row reordered into planes (most significant first), then
    // differenced byte by byte (libtiff's fpDiff).
    scratch.resize(row_bytes);
    for (int r = 0; r < kT; ++r) {
      unsigned char* row = tile + r * row_bytes;
      // Byte planes into the scratch row, most significant first (little-endian host) ...
      unsigned char* s = scratch.data();
      for (int i = 0; i < kT; ++i) {
        s[3 * kT + i] = row[4 * i];
        s[2 * kT + i] = row[4 * i + 1];
        s[kT + i] = row[4 * i + 2];
        s[i] = row[4 * i + 3];
      }
      // ... then each byte minus the previous one (no loop-carried dependency: vectorisable).
      row[0] = s[0];
      for (std::size_t j = 1; j < row_bytes; ++j)
        row[j] = static_cast<unsigned char>(s[j] - s[j - 1]);
    }
    return;
  }
  // Predictor 2: horizontal differencing of samples.
  for (int r = 0; r < kT; ++r) {
    unsigned char* row = tile + r * row_bytes;
    if (sz == 1) {
      for (int i = kT - 1; i > 0; --i) row[i] = static_cast<unsigned char>(row[i] - row[i - 1]);
    } else {
      auto* v = reinterpret_cast<uint16_t*>(row);
      for (int i = kT - 1; i > 0; --i) v[i] = static_cast<uint16_t>(v[i] - v[i - 1]);
    }
  }
}

struct EncodedTile {
  int64_t tx = 0, ty = 0;
  std::vector<unsigned char> bytes;
};

struct Stats {
  int64_t count = 0;
  double sum = 0, sumsq = 0;
  double min = std::numeric_limits<double>::infinity(),
         max = -std::numeric_limits<double>::infinity();
  void merge(const Stats& o) {
    count += o.count, sum += o.sum, sumsq += o.sumsq;
    min = std::min(min, o.min), max = std::max(max, o.max);
  }
};

// Encodes the tiles of a block (values as float, row-major, `w` x `h`, placed at (x0, y0) of a
// level `lw` x `lh`); x0, y0 multiples of kT.
std::vector<EncodedTile> encode_tiles(const float* data, int64_t x0, int64_t y0, int64_t w,
                                      int64_t h, const CogOptions& o, float nodata, bool parallel) {
  const int64_t ntx = (w + kT - 1) / kT, nty = (h + kT - 1) / kT;
  std::vector<EncodedTile> out(static_cast<std::size_t>(ntx * nty));
  const int sz = type_size(o.type);
  auto one = [&](std::size_t k) {
    const int64_t tx = static_cast<int64_t>(k) % ntx, ty = static_cast<int64_t>(k) / ntx;
    const int64_t cw = std::min<int64_t>(kT, w - tx * kT), chh = std::min<int64_t>(kT, h - ty * kT);
    // The tile as float, padded with nodata where it extends past the data.
    thread_local std::vector<float> tile;
    thread_local std::vector<unsigned char> raw, scratch;
    tile.resize(static_cast<std::size_t>(kT) * kT);
    if (cw < kT || chh < kT) std::fill(tile.begin(), tile.end(), nodata);
    for (int64_t r = 0; r < chh; ++r) {
      std::memcpy(tile.data() + r * kT, data + (ty * kT + r) * w + tx * kT,
                  static_cast<std::size_t>(cw) * sizeof(float));
    }
    raw.resize(static_cast<std::size_t>(kT) * kT * sz);
    if (o.type == GDT_Float32) {
      std::memcpy(raw.data(), tile.data(), raw.size());
    } else {
      to_type(tile.data(), tile.size(), o.type, raw.data());
    }
    EncodedTile& e = out[k];
    e.tx = x0 / kT + tx;
    e.ty = y0 / kT + ty;
    if (o.compress == "NONE") {
      e.bytes = raw;
      return;
    }
    predict(raw.data(), o.type, scratch);
    e.bytes.resize(raw.size() + raw.size() / 64 + 1024);
    size_t got = 0;
    if (!CPLZLibDeflate(raw.data(), raw.size(), o.level, e.bytes.data(), e.bytes.size(), &got)) {
      throw_internal("DEFLATE compression failed");
    }
    e.bytes.resize(got);
    e.bytes.shrink_to_fit();
  };
  if (parallel && out.size() > 1) {
    parallel_for_n(out.size(), one);
  } else {
    for (std::size_t k = 0; k < out.size(); ++k) one(k);
  }
  return out;
}

// 2x2 reduction of a w x h float block; AVERAGE over valid pixels, or NEAREST (top-left).
std::vector<float> halve(const float* in, int64_t w, int64_t h, float nodata, bool average) {
  const int64_t hw = (w + 1) / 2, hh = (h + 1) / 2;
  std::vector<float> out(static_cast<std::size_t>(hw * hh));
  for (int64_t r = 0; r < hh; ++r) {
    for (int64_t c = 0; c < hw; ++c) {
      float res = nodata;
      if (average) {
        double s = 0;
        int n = 0;
        for (int64_t dr = 0; dr < 2 && 2 * r + dr < h; ++dr) {
          for (int64_t dc = 0; dc < 2 && 2 * c + dc < w; ++dc) {
            const float v = in[(2 * r + dr) * w + 2 * c + dc];
            if (v != nodata) s += v, ++n;
          }
        }
        if (n) res = static_cast<float>(s / n);
      } else {
        res = in[(2 * r) * w + 2 * c];
      }
      out[static_cast<std::size_t>(r * hw + c)] = res;
    }
  }
  return out;
}

// A little-endian TIFF IFD entry: tag, type, count and the value bytes.
struct Entry {
  uint16_t tag;
  uint16_t type;
  uint64_t count;
  std::vector<unsigned char> value;
};

template <class T>
Entry entry(uint16_t tag, uint16_t type, const std::vector<T>& values) {
  Entry e{tag, type, values.size(), {}};
  e.value.resize(values.size() * sizeof(T));
  std::memcpy(e.value.data(), values.data(), e.value.size());
  return e;
}

// Reads the first IFD of a classic little-endian TIFF in memory.
std::vector<Entry> read_ifd(const std::vector<unsigned char>& f) {
  auto u16 = [&](std::size_t o) {
    uint16_t v;
    std::memcpy(&v, &f.at(o + 1) - 1, 2);
    return v;
  };
  auto u32 = [&](std::size_t o) {
    uint32_t v;
    std::memcpy(&v, &f.at(o + 3) - 3, 4);
    return v;
  };
  if (f.size() < 8 || f[0] != 'I' || u16(2) != 42) throw_internal("unexpected template TIFF");
  const std::size_t ifd = u32(4);
  const uint16_t n = u16(ifd);
  std::vector<Entry> out;
  for (uint16_t i = 0; i < n; ++i) {
    const std::size_t p = ifd + 2 + 12u * i;
    Entry e{u16(p), u16(p + 2), u32(p + 4), {}};
    const std::size_t bytes = static_cast<std::size_t>(e.count) * tiff_type_size(e.type);
    const std::size_t at = bytes <= 4 ? p + 8 : u32(p + 8);
    if (at + bytes > f.size()) throw_internal("truncated template TIFF");
    e.value.assign(f.begin() + static_cast<std::ptrdiff_t>(at),
                   f.begin() + static_cast<std::ptrdiff_t>(at + bytes));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

struct CogWriter::Chunk {
  Window win;
  int band = 1;
  std::vector<unsigned char> raw;  // GDAL path: the window's values
  std::vector<EncodedTile> tiles;  // fast path
  std::vector<float> half;         // fast path: 2x2 reduction for overview 1
  Stats stats;
};

void CogWriter::write_chunk(const Chunk& c, ByteWriter& out) {
  out.put(c.win);
  out.put<int32_t>(c.band);
  // Raw values (GDAL's path: classes, covers, several bands) are deflated: they are mostly
  // runs, and a replay reads them back whole.
  out.put<uint64_t>(c.raw.size());
  if (!c.raw.empty()) {
    std::size_t n = 0;
    void* z = CPLZLibDeflate(c.raw.data(), c.raw.size(), 1, nullptr, 0, &n);
    if (!z) throw_internal("cannot deflate a raster chunk");
    std::string bytes(static_cast<const char*>(z), n);
    CPLFree(z);
    out.put_string(bytes);
  }
  out.put<uint64_t>(c.tiles.size());
  for (const auto& t : c.tiles) {
    out.put(t.tx);
    out.put(t.ty);
    out.put_vector(t.bytes);
  }
  out.put_vector(c.half);
  out.put(c.stats.count);
  out.put(c.stats.sum);
  out.put(c.stats.sumsq);
  out.put(c.stats.min);
  out.put(c.stats.max);
}

std::shared_ptr<CogWriter::Chunk> CogWriter::read_chunk(ByteReader& in) {
  auto c = std::make_shared<Chunk>();
  c->win = in.get<Window>();
  c->band = in.get<int32_t>();
  const auto raw = in.get<uint64_t>();
  if (raw > 0) {
    const std::string z = in.get_string();
    if (raw > (uint64_t{1} << 40))
      throw Error(ExitCode::kInput, "partial results: a corrupt raster chunk");
    c->raw.resize(static_cast<std::size_t>(raw));
    std::size_t n = 0;
    if (!CPLZLibInflate(z.data(), z.size(), c->raw.data(), c->raw.size(), &n) || n != raw)
      throw Error(ExitCode::kInput, "partial results: a corrupt raster chunk");
  }
  const auto n = in.get<uint64_t>();
  if (n > in.left()) throw Error(ExitCode::kInput, "partial results: a corrupt raster chunk");
  c->tiles.resize(static_cast<std::size_t>(n));
  for (auto& t : c->tiles) {
    t.tx = in.get<int64_t>();
    t.ty = in.get<int64_t>();
    t.bytes = in.get_vector<unsigned char>();
  }
  c->half = in.get_vector<float>();
  c->stats.count = in.get<int64_t>();
  c->stats.sum = in.get<double>();
  c->stats.sumsq = in.get<double>();
  c->stats.min = in.get<double>();
  c->stats.max = in.get<double>();
  return c;
}

void CogWriter::write_chunks(const std::vector<std::shared_ptr<Chunk>>& chunks, ByteWriter& out) {
  out.put<uint64_t>(chunks.size());
  for (const auto& c : chunks) {
    out.put<uint8_t>(c ? 1 : 0);
    if (c) write_chunk(*c, out);
  }
}

std::vector<std::shared_ptr<CogWriter::Chunk>> CogWriter::read_chunks(ByteReader& in) {
  const auto n = in.get<uint64_t>();
  if (n > in.left()) throw Error(ExitCode::kInput, "partial results: corrupt raster chunks");
  std::vector<std::shared_ptr<Chunk>> out(static_cast<std::size_t>(n));
  for (auto& c : out) {
    if (in.get<uint8_t>()) c = read_chunk(in);
  }
  return out;
}

struct CogWriter::Fast {
  struct Level {
    int64_t w = 0, h = 0, ntx = 0, nty = 0;
    std::vector<uint64_t> offsets, sizes;  // per tile, in the level's data file
    std::string file;
    std::FILE* fp = nullptr;
    uint64_t written = 0;
    // Rows [base, base + rows) of the level, for levels >= 1.
    int64_t base = 0;
    std::vector<float> buf;
  };
  std::vector<Level> levels;
  Stats stats;
  float nodata = 0;
  bool average = true;
  // Overview tile rows wait here to be encoded by the parallel stage (help()), so that the
  // serial stage only appends; encoded rows are appended in order by drain().
  struct Job {
    std::size_t level;
    int64_t base, rows;
    std::vector<float> data;
  };
  std::mutex mu;
  std::deque<Job> queue;
  std::vector<std::map<int64_t, std::pair<int64_t, std::vector<EncodedTile>>>> done;
  std::vector<int64_t> next_base;
  const CogOptions* options = nullptr;

  // Encodes one queued overview tile row, if any; thread-safe. Returns false when none waited.
  bool help() {
    Job job;
    {
      std::lock_guard lock(mu);
      if (queue.empty()) return false;
      job = std::move(queue.front());
      queue.pop_front();
    }
    auto tiles = encode_tiles(job.data.data(), 0, job.base, levels[job.level].w, job.rows, *options,
                              nodata, false);
    std::lock_guard lock(mu);
    done[job.level][job.base] = {job.rows, std::move(tiles)};
    return true;
  }

  // Appends the encoded overview rows that are next in order (serial stage).
  void drain(const std::string& path) {
    std::lock_guard lock(mu);
    for (std::size_t li = 1; li < levels.size(); ++li) {
      auto& m = done[li];
      for (auto it = m.find(next_base[li]); it != m.end(); it = m.find(next_base[li])) {
        append(levels[li], it->second.second, path);
        next_base[li] += it->second.first;
        m.erase(it);
      }
    }
  }

  ~Fast() {
    for (auto& l : levels) {
      if (l.fp) std::fclose(l.fp);
      if (!l.file.empty()) std::remove(l.file.c_str());
    }
  }

  void append(Level& l, std::vector<EncodedTile>& tiles, const std::string& path) {
    for (auto& t : tiles) {
      const std::size_t k = static_cast<std::size_t>(t.ty * l.ntx + t.tx);
      l.offsets[k] = l.written;
      l.sizes[k] = t.bytes.size();
      if (std::fwrite(t.bytes.data(), 1, t.bytes.size(), l.fp) != t.bytes.size()) {
        throw_output("cannot write temporary tile data (disk full?)", {.file = path});
      }
      l.written += t.bytes.size();
    }
  }

  // Places a block of level `li` (li >= 1) at (x, y).
  void put(std::size_t li, const float* data, int64_t x, int64_t y, int64_t w, int64_t h) {
    Level& l = levels[li];
    const int64_t need = (y + h - l.base) * l.w;
    if (static_cast<int64_t>(l.buf.size()) < need)
      l.buf.resize(static_cast<std::size_t>(need), nodata);
    for (int64_t r = 0; r < h; ++r) {
      std::memcpy(l.buf.data() + (y - l.base + r) * l.w + x, data + r * w,
                  static_cast<std::size_t>(w) * sizeof(float));
    }
  }

  // Rows < rows_done of level `li` are complete: queue whole tile rows for encoding, feed the
  // next level.
  void complete(std::size_t li, int64_t rows_done) {
    Level& l = levels[li];
    while (l.base < l.h && (l.base + kT <= rows_done || rows_done >= l.h)) {
      const int64_t rows = std::min<int64_t>(kT, l.h - l.base);
      if (static_cast<int64_t>(l.buf.size()) < rows * l.w)
        l.buf.resize(static_cast<std::size_t>(rows * l.w), nodata);
      {
        Job job{li, l.base, rows, std::vector<float>(l.buf.begin(), l.buf.begin() + rows * l.w)};
        std::lock_guard lock(mu);
        queue.push_back(std::move(job));
      }
      if (li + 1 < levels.size()) {
        const std::vector<float> h2 = halve(l.buf.data(), l.w, rows, nodata, average);
        put(li + 1, h2.data(), 0, l.base / 2, (l.w + 1) / 2, (rows + 1) / 2);
        complete(li + 1, (l.base + rows + 1) / 2);
      }
      // Drop the queued rows.
      l.buf.erase(l.buf.begin(),
                  l.buf.begin() + std::min<std::ptrdiff_t>(
                                      static_cast<std::ptrdiff_t>(l.buf.size()), rows * l.w));
      l.base += rows;
    }
  }
};

namespace {
std::atomic<int> g_drafts{0};
}  // namespace

CogWriter::DraftScope::DraftScope() {
  ++g_drafts;
}
CogWriter::DraftScope::~DraftScope() {
  --g_drafts;
}

CogWriter::CogWriter(std::string path, const Grid& grid, int bands, CogOptions options)
    : draft_(g_drafts.load() > 0),
      path_(std::move(path)),
      grid_(grid),
      options_(std::move(options)),
      final_(path_),
      raw_(final_.temp() + ".raw"),
      bands_(bands) {
  const bool fast = bands == 1 && options_.category_names.empty() &&
                    (options_.compress == "DEFLATE" || options_.compress == "NONE") &&
                    (options_.type == GDT_Float32 || options_.type == GDT_Int16 ||
                     options_.type == GDT_UInt16 || options_.type == GDT_Byte);
  if (fast) {
    fast_ = std::make_unique<Fast>();
    fast_->nodata = static_cast<float>(options_.nodata);
    fast_->average = options_.overview_resampling != "NEAREST";
    fast_->options = &options_;
    int64_t w = grid.width(), h = grid.height();
    for (int li = 0;; ++li) {
      ++full_levels_;
      if (draft_ && li > 0) {  // a draft keeps the full resolution only
        if (std::max(w, h) <= kT) break;
        w = (w + 1) / 2, h = (h + 1) / 2;
        continue;
      }
      Fast::Level l;
      l.w = w, l.h = h, l.ntx = (w + kT - 1) / kT, l.nty = (h + kT - 1) / kT;
      l.offsets.assign(static_cast<std::size_t>(l.ntx * l.nty), 0);
      l.sizes.assign(l.offsets.size(), 0);
      l.file = final_.temp() + ".level" + std::to_string(li);
      l.fp = std::fopen(l.file.c_str(), "wb");
      if (!l.fp) throw_output("cannot create a temporary file beside the output", {.file = path_});
      fast_->levels.push_back(std::move(l));
      if (std::max(w, h) <= kT) break;
      w = (w + 1) / 2, h = (h + 1) / 2;
    }
    fast_->done.resize(fast_->levels.size());
    fast_->next_base.assign(fast_->levels.size(), 0);
    return;
  }
  raw_fd_ = ::open(raw_.temp().c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (raw_fd_ < 0)
    throw_output(
        "cannot create a temporary file beside the output: " + std::string(std::strerror(errno)),
        {.file = raw_.temp()});
  const auto bytes =
      static_cast<off_t>(grid.width() * grid.height() * bands * type_size(options_.type));
  if (::ftruncate(raw_fd_, bytes) != 0)
    throw_output("cannot size a temporary file: " + std::string(std::strerror(errno)),
                 {.file = raw_.temp()});
}

CogWriter::~CogWriter() {
  if (raw_fd_ >= 0) ::close(raw_fd_);
}

std::shared_ptr<CogWriter::Chunk> CogWriter::encode(int band, const Window& win,
                                                    const void* data) const {
  const std::size_t n = static_cast<std::size_t>(win.pixels());
  if (!fast_) {
    auto c = std::make_shared<Chunk>();
    c->win = win;
    c->band = band;
    const auto* p = static_cast<const unsigned char*>(data);
    c->raw.assign(p, p + n * type_size(options_.type));
    return c;
  }
  if (options_.type == GDT_Float32)
    return encode_values(band, win, static_cast<const float*>(data));
  std::vector<float> converted(n);
  GDALCopyWords64(data, options_.type, type_size(options_.type), converted.data(), GDT_Float32, 4,
                  static_cast<GPtrDiff_t>(n));
  return encode_values(band, win, converted.data());
}

std::shared_ptr<CogWriter::Chunk> CogWriter::encode_values(int band, const Window& win,
                                                           const float* values) const {
  if (!fast_) {
    if (options_.type == GDT_Float32) return encode(band, win, values);
    std::vector<unsigned char> raw(static_cast<std::size_t>(win.pixels()) *
                                   static_cast<std::size_t>(type_size(options_.type)));
    to_type(values, raw.size() / static_cast<std::size_t>(type_size(options_.type)), options_.type,
            raw.data());
    return encode(band, win, raw.data());
  }
  if (win.x % kT || win.y % kT) throw_internal("COG windows must be aligned to the tile size");
  fast_->help();  // an overview tile row, if one waits
  auto c = std::make_shared<Chunk>();
  c->win = win;
  c->band = band;
  const float nd = fast_->nodata;
  Stats& st = c->stats;
  float mn = std::numeric_limits<float>::infinity(), mx = -mn;
  for (int64_t r = 0; r < win.h; ++r) {
    const float* row = values + r * win.w;
    double sum = 0, sumsq = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < win.w; ++i) {
      const float v = row[i];
      if (v == nd) continue;
      ++count;
      sum += v;
      sumsq += static_cast<double>(v) * v;
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
    st.count += count, st.sum += sum, st.sumsq += sumsq;
  }
  if (st.count) st.min = mn, st.max = mx;
  c->tiles = encode_tiles(values, win.x, win.y, win.w, win.h, options_, nd, false);
  // The 2 x 2 reduction for the overviews (a draft's chunks carry it too: they may be shipped
  // to a merge that writes the whole file).
  if (full_levels_ > 1) c->half = halve(values, win.w, win.h, nd, fast_->average);
  return c;
}

void CogWriter::add(const std::shared_ptr<Chunk>& c) {
  if (!fast_) {
    const auto ts = static_cast<int64_t>(type_size(options_.type));
    const int64_t W = grid_.width(), H = grid_.height();
    const auto row_bytes = static_cast<std::size_t>(c->win.w * ts);
    if (c->band < 1 || c->band > bands_ ||
        c->raw.size() != row_bytes * static_cast<std::size_t>(c->win.h))
      throw_internal("a raster chunk of another band or size");
    for (int64_t r = 0; r < c->win.h; ++r) {
      const auto at = static_cast<off_t>((((c->band - 1) * H + c->win.y + r) * W + c->win.x) * ts);
      const unsigned char* src = c->raw.data() + static_cast<std::size_t>(r) * row_bytes;
      std::size_t done = 0;
      while (done < row_bytes) {
        const ssize_t n =
            ::pwrite(raw_fd_, src + done, row_bytes - done, at + static_cast<off_t>(done));
        if (n <= 0)
          throw Error(ExitCode::kOutput,
                      "cannot write temporary raster data (disk full?): " +
                          std::string(std::strerror(errno)),
                      {.file = path_, .band = c->band});
        done += static_cast<std::size_t>(n);
      }
    }
    return;
  }
  Fast& f = *fast_;
  f.stats.merge(c->stats);
  f.append(f.levels[0], c->tiles, path_);
  if (f.levels.size() > 1) {
    f.put(1, c->half.data(), c->win.x / 2, c->win.y / 2, (c->win.w + 1) / 2, (c->win.h + 1) / 2);
    // A finished row of windows completes the level-1 rows above it.
    if (c->win.x_end() == grid_.width()) f.complete(1, (c->win.y_end() + 1) / 2);
  }
  f.drain(path_);
}

namespace {

// The GeoTIFF and GDAL tags GDAL would write for this grid and these options, from a one-pixel
// file in memory: georeferencing, nodata, metadata, colour map, sample format.
std::vector<Entry> template_tags(const Grid& grid, const CogOptions& o,
                                 const std::string& stats_min, const std::string& stats_max,
                                 const std::string& stats_mean, const std::string& stats_sd,
                                 const std::string& valid_percent) {
  static std::atomic<int> counter{0};
  const std::string mem = "/vsimem/fw_cog_template_" + std::to_string(counter++) + ".tif";
  {
    DatasetPtr t(driver("GTiff").Create(mem.c_str(), 1, 1, 1, o.type, nullptr));
    if (!t) throw_internal("cannot create the template GeoTIFF: " + last_gdal_error());
    t->SetGeoTransform(const_cast<double*>(grid.transform().c.data()));
    if (!grid.crs().empty()) t->SetSpatialRef(grid.crs().ogr());
    for (const auto& [k, v] : o.metadata) t->SetMetadataItem(k.c_str(), v.c_str());
    GDALRasterBand* b = t->GetRasterBand(1);
    b->SetNoDataValue(o.nodata);
    if (!o.descriptions.empty()) b->SetDescription(o.descriptions[0].c_str());
    if (o.scale != 1.0) b->SetScale(o.scale);
    if (o.offset != 0.0) b->SetOffset(o.offset);
    if (!stats_min.empty()) {
      b->SetMetadataItem("STATISTICS_MINIMUM", stats_min.c_str());
      b->SetMetadataItem("STATISTICS_MAXIMUM", stats_max.c_str());
      b->SetMetadataItem("STATISTICS_MEAN", stats_mean.c_str());
      b->SetMetadataItem("STATISTICS_STDDEV", stats_sd.c_str());
      b->SetMetadataItem("STATISTICS_VALID_PERCENT", valid_percent.c_str());
    }
    set_colors(*b, o.colors);
    close_dataset(t, mem);
  }
  vsi_l_offset len = 0;
  GByte* bytes = VSIGetMemFileBuffer(mem.c_str(), &len, FALSE);
  std::vector<unsigned char> file(bytes, bytes + len);
  VSIUnlink(mem.c_str());
  VSIUnlink((mem + ".aux.xml").c_str());
  return read_ifd(file);
}

// Serialises IFDs for the levels; `data_base` is where tile data starts.
std::vector<unsigned char> build_ifds(const std::vector<std::vector<Entry>>& ifds, bool big,
                                      uint64_t start) {
  const int slot = big ? 8 : 4;
  std::vector<unsigned char> out;
  auto put = [&out](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
  };
  for (std::size_t k = 0; k < ifds.size(); ++k) {
    const auto& entries = ifds[k];
    const uint64_t ifd_at = start + out.size();
    const uint64_t table = (big ? 8 : 2) + entries.size() * (big ? 20 : 12) + slot;
    uint64_t extra_at = ifd_at + table;
    std::vector<unsigned char> extra;
    put(entries.size(), big ? 8 : 2);
    for (const Entry& e : entries) {
      put(e.tag, 2);
      put(e.type, 2);
      put(e.count, big ? 8 : 4);
      if (e.value.size() <= static_cast<std::size_t>(slot)) {
        std::vector<unsigned char> v = e.value;
        v.resize(static_cast<std::size_t>(slot), 0);
        out.insert(out.end(), v.begin(), v.end());
      } else {
        put(extra_at + extra.size(), slot);
        extra.insert(extra.end(), e.value.begin(), e.value.end());
        if (extra.size() % 2) extra.push_back(0);
      }
    }
    const uint64_t next = k + 1 < ifds.size() ? extra_at + extra.size() : 0;
    put(next, slot);
    out.insert(out.end(), extra.begin(), extra.end());
  }
  return out;
}

}  // namespace

void CogWriter::commit() {
  const int threads = options_.threads > 0 ? options_.threads : default_threads();
  if (fast_) {
    Fast& f = *fast_;
    parallel_for_n(
        f.queue.size(), [&f](std::size_t) { f.help(); }, threads);
    while (f.help()) {
    }
    f.drain(path_);
    for (auto& l : f.levels) {
      if (std::fflush(l.fp) != 0) throw_output("cannot write temporary tile data", {.file = path_});
    }
    for (std::size_t li = 1; li < f.levels.size(); ++li) {
      if (f.levels[li].base < f.levels[li].h || f.next_base[li] < f.levels[li].h) {
        throw_internal("overview level " + std::to_string(li) + " incomplete", {.file = path_});
      }
    }
    // Statistics as GDAL writes them.
    std::string smin, smax, smean, ssd, svalid;
    if (f.stats.count > 0) {
      char buf[64];
      const double mean = f.stats.sum / f.stats.count;
      const double var = std::max(0.0, f.stats.sumsq / f.stats.count - mean * mean);
      auto fmt = [&buf](double v) {
        std::snprintf(buf, sizeof buf, "%.14g", v);
        return std::string(buf);
      };
      smin = fmt(f.stats.min), smax = fmt(f.stats.max), smean = fmt(mean),
      ssd = fmt(std::sqrt(var));
      svalid = fmt(100.0 * f.stats.count / (static_cast<double>(grid_.width()) * grid_.height()));
    }
    const std::vector<Entry> borrowed =
        template_tags(grid_, options_, smin, smax, smean, ssd, svalid);
    uint64_t data_bytes = 0;
    for (auto& l : f.levels) data_bytes += l.written;
    const bool big = data_bytes > (3ull << 30);
    const uint16_t compression = options_.compress == "NONE" ? 1 : 8;
    const uint16_t predictor = options_.type == GDT_Float32 ? 3 : 2;
    // IFD entries per level (offsets filled in below once the layout is known).
    auto level_entries = [&](std::size_t li, const std::vector<uint64_t>& offs) {
      const auto& l = f.levels[li];
      std::vector<Entry> e;
      e.push_back(entry<uint32_t>(254, 4, {li == 0 ? 0u : 1u}));
      e.push_back(entry<uint32_t>(256, 4, {static_cast<uint32_t>(l.w)}));
      e.push_back(entry<uint32_t>(257, 4, {static_cast<uint32_t>(l.h)}));
      e.push_back(entry<uint16_t>(259, 3, {compression}));
      e.push_back(entry<uint16_t>(277, 3, {1}));
      e.push_back(entry<uint16_t>(284, 3, {1}));
      if (compression != 1) e.push_back(entry<uint16_t>(317, 3, {predictor}));
      e.push_back(entry<uint16_t>(322, 3, {static_cast<uint16_t>(kT)}));
      e.push_back(entry<uint16_t>(323, 3, {static_cast<uint16_t>(kT)}));
      if (big) {
        e.push_back(entry<uint64_t>(324, 16, offs));
        e.push_back(entry<uint64_t>(325, 16, l.sizes));
      } else {
        std::vector<uint32_t> o32(offs.begin(), offs.end()), s32(l.sizes.begin(), l.sizes.end());
        e.push_back(entry<uint32_t>(324, 4, o32));
        e.push_back(entry<uint32_t>(325, 4, s32));
      }
      static const uint16_t mine[] = {254, 256, 257, 259, 273, 277, 278,
                                      279, 284, 317, 322, 323, 324, 325};
      for (const Entry& b : borrowed) {
        if (std::find(std::begin(mine), std::end(mine), b.tag) != std::end(mine)) continue;
        const bool structural = b.tag == 258 || b.tag == 262 || b.tag == 320 || b.tag == 339;
        if (li == 0 || structural) e.push_back(b);
      }
      std::sort(e.begin(), e.end(), [](const Entry& a, const Entry& b) { return a.tag < b.tag; });
      return e;
    };
    // Data order: smallest overview first, full resolution last. The full-resolution tiles are
    // most of the file: rather than copying them, room for the header, IFDs and overviews is
    // inserted in front of them (FALLOC_FL_INSERT_RANGE, whole filesystem blocks), the gap
    // (under one block) left between the IFDs and the overview data. Elsewhere: a plain copy.
    const uint64_t header = big ? 16 : 8;
    std::vector<std::vector<uint64_t>> zeros(f.levels.size());
    std::vector<std::vector<Entry>> ifds;
    for (std::size_t li = 0; li < f.levels.size(); ++li) {
      zeros[li].assign(f.levels[li].offsets.size(), 0);
      ifds.push_back(level_entries(li, zeros[li]));
    }
    const uint64_t head_bytes = header + build_ifds(ifds, big, header).size();
    uint64_t ovr_bytes = 0;
    for (std::size_t li = 1; li < f.levels.size(); ++li) ovr_bytes += f.levels[li].written;
    Fast::Level& main = f.levels[0];
    std::fclose(main.fp);
    main.fp = nullptr;
    const uint64_t blk = 4096, room = (head_bytes + ovr_bytes + blk - 1) / blk * blk;
    bool in_place = false;
    if (main.written > 0) {
      const int fd = ::open(main.file.c_str(), O_RDWR);
      if (fd >= 0) {
        in_place = ::fallocate(fd, FALLOC_FL_INSERT_RANGE, 0, static_cast<off_t>(room)) == 0;
        ::close(fd);
      }
    }
    const uint64_t data_at = in_place ? room - ovr_bytes : head_bytes;
    std::vector<uint64_t> level_start(f.levels.size());
    uint64_t at = data_at;
    for (std::size_t li = f.levels.size(); li-- > 0;) {
      level_start[li] = at;
      at += f.levels[li].written;
    }
    ifds.clear();
    for (std::size_t li = 0; li < f.levels.size(); ++li) {
      std::vector<uint64_t> offs(f.levels[li].offsets.size());
      for (std::size_t k = 0; k < offs.size(); ++k)
        offs[k] = level_start[li] + f.levels[li].offsets[k];
      ifds.push_back(level_entries(li, offs));
    }
    const unsigned char classic[8] = {'I', 'I', 42, 0, 8, 0, 0, 0};
    const unsigned char bigtiff[16] = {'I', 'I', 43, 0, 8, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0};
    std::vector<unsigned char> head(big ? bigtiff : classic, (big ? bigtiff : classic) + header);
    const std::vector<unsigned char> ifd_block = build_ifds(ifds, big, header);
    head.insert(head.end(), ifd_block.begin(), ifd_block.end());
    head.resize(static_cast<std::size_t>(data_at), 0);
    std::FILE* out =
        std::fopen(in_place ? main.file.c_str() : final_.temp().c_str(), in_place ? "r+b" : "wb");
    if (!out) throw_output("cannot create the output file", {.file = path_});
    bool ok = std::fwrite(head.data(), 1, head.size(), out) == head.size();
    std::vector<unsigned char> buf(8 << 20);
    for (std::size_t li = f.levels.size(); li-- > (in_place ? 1 : 0) && ok;) {
      Fast::Level& l = f.levels[li];
      if (l.fp) std::fclose(l.fp);
      l.fp = std::fopen(l.file.c_str(), "rb");
      if (!l.fp) {
        ok = false;
        break;
      }
      std::size_t got;
      while ((got = std::fread(buf.data(), 1, buf.size(), l.fp)) > 0) {
        ok &= std::fwrite(buf.data(), 1, got, out) == got;
      }
    }
    ok &= std::fclose(out) == 0;
    if (!ok) throw_output("cannot write the output file (disk full?)", {.file = path_});
    if (in_place) {
      if (std::rename(main.file.c_str(), final_.temp().c_str()) != 0) {
        throw_output("cannot move the finished file into place", {.file = path_});
      }
      main.file.clear();
    }
    fast_.reset();  // removes the level files
    final_.commit(!draft_);
    return;
  }
  // GDAL path: the temporary seen through a VRT, statistics and metadata on it, then the COG
  // driver (which builds the overviews).
  if (::close(raw_fd_) != 0) {
    raw_fd_ = -1;
    throw_output("cannot write temporary raster data: " + std::string(std::strerror(errno)),
                 {.file = path_});
  }
  raw_fd_ = -1;
  const int64_t W = grid_.width(), H = grid_.height();
  const auto ts = static_cast<int64_t>(type_size(options_.type));
  // A draft is the raw file itself, described by a VRT at the output's path.
  const std::string raw_file = draft_ ? path_ + ".raw" : raw_.temp();
  if (draft_ && std::rename(raw_.temp().c_str(), raw_file.c_str()) != 0)
    throw_output("cannot move temporary raster data: " + std::string(std::strerror(errno)),
                 {.file = raw_file});
  DatasetPtr vrt(
      static_cast<GDALDataset*>(GDALCreate(GDALGetDriverByName("VRT"), "", static_cast<int>(W),
                                           static_cast<int>(H), 0, options_.type, nullptr)));
  if (!vrt) throw_output("cannot create a VRT: " + last_gdal_error(), {.file = path_});
  vrt->SetGeoTransform(const_cast<double*>(grid_.transform().c.data()));
  if (!grid_.crs().empty()) vrt->SetSpatialRef(grid_.crs().ogr());
  for (int b = 1; b <= bands_; ++b) {
    GdalOptions bo;
    bo.set("subclass", "VRTRawRasterBand")
        .set("SourceFilename", raw_file)
        .set("RelativeToVRT", "0")
        .set("ImageOffset", std::to_string((b - 1) * H * W * ts))
        .set("PixelOffset", std::to_string(ts))
        .set("LineOffset", std::to_string(W * ts))
        .set("ByteOrder", "LSB");
    CPLErrorReset();
    if (vrt->AddBand(options_.type, bo.get()) != CE_None)
      throw_output("cannot read back temporary raster data: " + last_gdal_error(), {.file = path_});
  }
  if (draft_) {
    for (int b = 1; b <= bands_; ++b) vrt->GetRasterBand(b)->SetNoDataValue(options_.nodata);
    CPLErrorReset();
    DatasetPtr out(driver("VRT").CreateCopy(final_.temp().c_str(), vrt.get(), false, nullptr,
                                            nullptr, nullptr));
    if (!out) throw_output("cannot write a draft raster: " + last_gdal_error(), {.file = path_});
    close_dataset(out, path_);
    final_.commit(false);
    return;
  }
  for (int b = 1; b <= vrt->GetRasterCount(); ++b) {
    GDALRasterBand* band = vrt->GetRasterBand(b);
    if (static_cast<std::size_t>(b) <= options_.descriptions.size()) {
      band->SetDescription(options_.descriptions[static_cast<std::size_t>(b - 1)].c_str());
    }
    band->SetNoDataValue(options_.nodata);
    if (options_.scale != 1.0) band->SetScale(options_.scale);
    if (options_.offset != 0.0) band->SetOffset(options_.offset);
    set_colors(*band, options_.colors);
    if (!options_.category_names.empty()) {
      CPLStringList names;
      for (const auto& n : options_.category_names) names.AddString(n.c_str());
      band->SetCategoryNames(names.List());
    }
    double mn, mx, mean, sd;
    CPLErrorReset();
    if (band->ComputeStatistics(false, &mn, &mx, &mean, &sd, nullptr, nullptr) == CE_None) {
      band->SetStatistics(mn, mx, mean, sd);
    }
  }
  for (const auto& [k, v] : options_.metadata) vrt->SetMetadataItem(k.c_str(), v.c_str());
  vrt->FlushCache(true);
  GdalOptions co;
  co.set("COMPRESS", options_.compress).set("NUM_THREADS", std::to_string(threads));
  co.set("BIGTIFF", "IF_SAFER")
      .set("OVERVIEWS", "AUTO")
      .set("OVERVIEW_RESAMPLING", options_.overview_resampling)
      .set("BLOCKSIZE", std::to_string(kT));
  if (options_.compress != "NONE") {
    co.set("PREDICTOR", "YES");
    if (options_.compress == "DEFLATE" || options_.compress == "ZSTD")
      co.set("LEVEL", std::to_string(options_.level));
  }
  CPLErrorReset();
  DatasetPtr out(driver("COG").CreateCopy(final_.temp().c_str(), vrt.get(), false, co.get(),
                                          nullptr, nullptr));
  if (!out)
    throw_output("cannot write the Cloud-Optimized GeoTIFF: " + last_gdal_error(), {.file = path_});
  close_dataset(out, path_);
  vrt.reset();
  raw_.discard();
  final_.commit();
}

}  // namespace fw::rasters
