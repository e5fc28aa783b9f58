#include "engine/tiff_tiles.hpp"

#include <cpl_conv.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <bit>
#include <cstring>

#include "engine/error.hpp"

namespace fw {

std::size_t tiff_type_size(uint16_t type) {
  switch (type) {
    case 1:
    case 2:
    case 6:
    case 7:
      return 1;
    case 3:
    case 8:
      return 2;
    case 4:
    case 9:
    case 11:
    case 13:
      return 4;
    case 5:
    case 10:
    case 12:
    case 16:
    case 17:
    case 18:
      return 8;
    default:
      return 0;
  }
}

namespace {

bool pread_all(int fd, void* buf, std::size_t n, uint64_t off) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r <= 0) return false;
    p += r, n -= static_cast<std::size_t>(r), off += static_cast<uint64_t>(r);
  }
  return true;
}

template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// One IFD entry's values as unsigned integers (BYTE, SHORT, LONG, LONG8).
struct Entry {
  uint16_t tag = 0, type = 0;
  uint64_t count = 0;
  uint8_t inline_bytes[8] = {};
  uint64_t offset = 0;
  bool is_inline = false;
};

bool values(int fd, const Entry& e, std::vector<uint64_t>& out) {
  const std::size_t ts = tiff_type_size(e.type);
  if (ts == 0 || e.count > (1ull << 28)) return false;
  if (!(e.type == 1 || e.type == 3 || e.type == 4 || e.type == 16)) return false;
  std::vector<uint8_t> raw(ts * e.count);
  if (e.is_inline) {
    std::memcpy(raw.data(), e.inline_bytes, raw.size());
  } else if (!pread_all(fd, raw.data(), raw.size(), e.offset)) {
    return false;
  }
  out.resize(e.count);
  for (std::size_t i = 0; i < e.count; ++i) {
    const uint8_t* p = raw.data() + i * ts;
    out[i] = ts == 1   ? *p
             : ts == 2 ? get<uint16_t>(p)
             : ts == 4 ? get<uint32_t>(p)
                       : get<uint64_t>(p);
  }
  return true;
}

#ifdef __SSE2__
// SSE2 lanes of 8 or 16 bits: add, the running sums inside a register (log-step shifts), and
// the register's total in every lane.
template <class T>
struct Lanes;
template <>
struct Lanes<uint8_t> {
  static __m128i add(__m128i a, __m128i b) { return _mm_add_epi8(a, b); }
  static __m128i prefix(__m128i v) {
    v = add(v, _mm_slli_si128(v, 1));
    v = add(v, _mm_slli_si128(v, 2));
    v = add(v, _mm_slli_si128(v, 4));
    return add(v, _mm_slli_si128(v, 8));
  }
  static __m128i total(__m128i v) {
    const __m128i t = _mm_unpackhi_epi8(v, v);
    return _mm_shuffle_epi32(_mm_unpackhi_epi16(t, t), 0xFF);
  }
};
template <>
struct Lanes<uint16_t> {
  static __m128i add(__m128i a, __m128i b) { return _mm_add_epi16(a, b); }
  static __m128i prefix(__m128i v) {
    v = add(v, _mm_slli_si128(v, 2));
    v = add(v, _mm_slli_si128(v, 4));
    return add(v, _mm_slli_si128(v, 8));
  }
  static __m128i total(__m128i v) { return _mm_shuffle_epi32(_mm_unpackhi_epi16(v, v), 0xFF); }
};
#endif

// Running sums (mod 2^8 or 2^16) over n values: a register at a time with SSE2, the carry of
// the registers before added after (the block's total is computed off the carry's chain).
template <class T>
void prefix_sums(T* p, int64_t n) {
  int64_t i = 0;
  T carry = 0;
#ifdef __SSE2__
  using L = Lanes<T>;
  constexpr int64_t k = 16 / sizeof(T);
  __m128i c = _mm_setzero_si128();
  for (; i + k <= n; i += k) {
    const __m128i v = L::prefix(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p + i), L::add(v, c));
    c = L::add(c, L::total(v));
  }
  carry = static_cast<T>(_mm_cvtsi128_si32(c));
#endif
  for (; i < n; ++i) p[i] = carry = static_cast<T>(carry + p[i]);
}

// Running sums with `S` interleaved samples, each in its own register.
template <class T, int S>
void prefix_interleaved(T* p, int64_t n) {
  T acc[S] = {};
  for (int64_t k = 0; k < n; ++k) {
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) p[k * S + s] = acc[s] = static_cast<T>(acc[s] + p[k * S + s]);
  }
}

// Undoes the horizontal predictor over one row of `n` pixels of `stride` interleaved samples
// (libtiff's horAcc8/16/32 and fpAcc's byte pass).
template <class T>
void undo_horizontal(T* row, int64_t n, int stride) {
  if constexpr (sizeof(T) == 1) {
    if (stride == 1) return prefix_sums(reinterpret_cast<uint8_t*>(row), n);
  }
  if constexpr (sizeof(T) == 2) {
    if (stride == 1) return prefix_sums(reinterpret_cast<uint16_t*>(row), n);
  }
  switch (stride) {
    case 1:
      return prefix_interleaved<T, 1>(row, n);
    case 2:
      return prefix_interleaved<T, 2>(row, n);
    case 3:
      return prefix_interleaved<T, 3>(row, n);
    case 4:
      return prefix_interleaved<T, 4>(row, n);
    case 6:
      return prefix_interleaved<T, 6>(row, n);
    default:
      for (int64_t i = stride; i < n * stride; ++i)
        row[i] = static_cast<T>(row[i] + row[i - stride]);
  }
}

// Undoes the floating-point predictor (predictor 3) over one row: the row holds the values'
// bytes as planes, most significant first, byte-differenced with `stride` (the samples per
// pixel) across the whole row; `tmp` holds the row's bytes. Output: little-endian values.
void undo_float(uint8_t* row, int64_t values, int bytes, int stride, std::vector<uint8_t>& tmp) {
  const int64_t cc = values * bytes;
  // The byte pass runs over the whole row: cc / stride pixels of `stride` bytes.
  undo_horizontal(row, cc / stride, stride);
  tmp.assign(row, row + cc);
  const uint8_t* t = tmp.data();
  if (bytes == 4) {
    const uint8_t *p0 = t, *p1 = t + values, *p2 = t + 2 * values, *p3 = t + 3 * values;
    for (int64_t k = 0; k < values; ++k) {
      const uint32_t v = static_cast<uint32_t>(p0[k]) << 24 | static_cast<uint32_t>(p1[k]) << 16 |
                         static_cast<uint32_t>(p2[k]) << 8 | p3[k];
      std::memcpy(row + 4 * k, &v, 4);
    }
    return;
  }
  for (int64_t k = 0; k < values; ++k) {
    for (int b = 0; b < bytes; ++b) row[k * bytes + b] = t[(bytes - b - 1) * values + k];
  }
}

}  // namespace

std::unique_ptr<TiffTiles> TiffTiles::open(const std::string& path, GDALDataset& ds) {
  if (std::endian::native != std::endian::little) return nullptr;
  if (!ds.GetDriver() || std::strcmp(ds.GetDriver()->GetDescription(), "GTiff") != 0)
    return nullptr;
  if (const char* v = CPLGetConfigOption("FW_TIFF_DIRECT", nullptr); v && !CPLTestBool(v))
    return nullptr;
  std::unique_ptr<TiffTiles> t(new TiffTiles);
  t->path_ = path;
  t->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (t->fd_ < 0) return nullptr;
  uint8_t head[16];
  if (!pread_all(t->fd_, head, 16, 0) || head[0] != 'I' || head[1] != 'I') return nullptr;
  const uint16_t version = get<uint16_t>(head + 2);
  const bool big = version == 43;
  if (!big && version != 42) return nullptr;
  if (big && (get<uint16_t>(head + 4) != 8 || get<uint16_t>(head + 6) != 0)) return nullptr;
  const uint64_t ifd = big ? get<uint64_t>(head + 8) : get<uint32_t>(head + 4);
  uint8_t cnt[8];
  if (!pread_all(t->fd_, cnt, big ? 8 : 2, ifd)) return nullptr;
  const uint64_t n = big ? get<uint64_t>(cnt) : get<uint16_t>(cnt);
  if (n == 0 || n > 4096) return nullptr;
  const std::size_t esize = big ? 20 : 12;
  std::vector<uint8_t> raw(n * esize);
  if (!pread_all(t->fd_, raw.data(), raw.size(), ifd + (big ? 8 : 2))) return nullptr;
  std::vector<uint64_t> bits, formats, width, height, tw, th, spp, planar, comp, pred, subfile;
  for (uint64_t i = 0; i < n; ++i) {
    const uint8_t* p = raw.data() + i * esize;
    Entry e;
    e.tag = get<uint16_t>(p);
    e.type = get<uint16_t>(p + 2);
    e.count = big ? get<uint64_t>(p + 4) : get<uint32_t>(p + 4);
    const uint8_t* v = p + (big ? 12 : 8);
    const std::size_t room = big ? 8 : 4;
    e.is_inline = tiff_type_size(e.type) * e.count <= room;
    std::memcpy(e.inline_bytes, v, room);
    e.offset = big ? get<uint64_t>(v) : get<uint32_t>(v);
    std::vector<uint64_t>* dst = nullptr;
    switch (e.tag) {
      case 254:
        dst = &subfile;
        break;
      case 256:
        dst = &width;
        break;
      case 257:
        dst = &height;
        break;
      case 258:
        dst = &bits;
        break;
      case 259:
        dst = &comp;
        break;
      case 277:
        dst = &spp;
        break;
      case 284:
        dst = &planar;
        break;
      case 317:
        dst = &pred;
        break;
      case 322:
        dst = &tw;
        break;
      case 323:
        dst = &th;
        break;
      case 324:
        dst = &t->offsets_;
        break;
      case 325:
        dst = &t->counts_;
        break;
      case 339:
        dst = &formats;
        break;
      case 273:
      case 279:
        return nullptr;  // strips
      default:
        break;
    }
    if (dst && !values(t->fd_, e, *dst)) return nullptr;
  }
  if (width.size() != 1 || height.size() != 1 || tw.size() != 1 || th.size() != 1) return nullptr;
  if (!subfile.empty() && subfile[0] != 0) return nullptr;
  t->samples_ = spp.empty() ? 1 : static_cast<int>(spp[0]);
  if (t->samples_ < 1 || t->samples_ > 256) return nullptr;
  if (bits.empty()) return nullptr;
  for (uint64_t b : bits) {
    if (b != bits[0]) return nullptr;
  }
  const uint64_t format = formats.empty() ? 1 : formats[0];
  for (uint64_t f : formats) {
    if (f != format) return nullptr;
  }
  t->bytes_ = static_cast<int>(bits[0] / 8);
  if (bits[0] % 8 != 0) return nullptr;
  GDALDataType type = GDT_Unknown;
  if (format == 1)
    type = t->bytes_ == 1   ? GDT_Byte
           : t->bytes_ == 2 ? GDT_UInt16
           : t->bytes_ == 4 ? GDT_UInt32
                            : GDT_Unknown;
  if (format == 2) type = t->bytes_ == 2 ? GDT_Int16 : t->bytes_ == 4 ? GDT_Int32 : GDT_Unknown;
  if (format == 3) type = t->bytes_ == 4 ? GDT_Float32 : t->bytes_ == 8 ? GDT_Float64 : GDT_Unknown;
  if (type == GDT_Unknown) return nullptr;
  t->type_ = type;
  t->compression_ = comp.empty() ? 1 : static_cast<int>(comp[0]);
  if (t->compression_ != 1 && t->compression_ != 8 && t->compression_ != 32946) return nullptr;
  t->predictor_ = pred.empty() ? 1 : static_cast<int>(pred[0]);
  if (t->predictor_ < 1 || t->predictor_ > 3) return nullptr;
  if (t->predictor_ == 2 && format == 3) return nullptr;
  if (t->predictor_ == 3 && format != 3) return nullptr;
  t->separate_ = !planar.empty() && planar[0] == 2;
  t->width_ = static_cast<int64_t>(width[0]), t->height_ = static_cast<int64_t>(height[0]);
  t->tile_w_ = static_cast<int64_t>(tw[0]), t->tile_h_ = static_cast<int64_t>(th[0]);
  if (t->tile_w_ <= 0 || t->tile_h_ <= 0 || t->tile_w_ % 16 || t->tile_h_ % 16) return nullptr;
  t->across_ = (t->width_ + t->tile_w_ - 1) / t->tile_w_;
  t->down_ = (t->height_ + t->tile_h_ - 1) / t->tile_h_;
  const uint64_t tiles = static_cast<uint64_t>(t->across_ * t->down_) *
                         static_cast<uint64_t>(t->separate_ ? t->samples_ : 1);
  if (t->offsets_.size() != tiles || t->counts_.size() != tiles) return nullptr;
  // A tile of at most 256 MiB decoded, and every tile's bytes inside the file: anything else
  // (a truncated or damaged file) is left to GDAL and its errors.
  const uint64_t tile_bytes = static_cast<uint64_t>(t->tile_w_) *
                              static_cast<uint64_t>(t->tile_h_) * static_cast<uint64_t>(t->bytes_) *
                              static_cast<uint64_t>(t->separate_ ? 1 : t->samples_);
  if (t->tile_w_ > 65536 || t->tile_h_ > 65536 || tile_bytes > (uint64_t{256} << 20))
    return nullptr;
  struct stat st {};
  if (::fstat(t->fd_, &st) != 0) return nullptr;
  const auto file_size = static_cast<uint64_t>(st.st_size);
  for (std::size_t k = 0; k < t->offsets_.size(); ++k) {
    const uint64_t off = t->offsets_[k], count = t->counts_[k];
    if (count > file_size || off > file_size - count) return nullptr;
  }
  // What GDAL sees must be the same image.
  if (ds.GetRasterXSize() != t->width_ || ds.GetRasterYSize() != t->height_ ||
      ds.GetRasterCount() != t->samples_ || ds.GetRasterBand(1)->GetRasterDataType() != type)
    return nullptr;
  // Cache: a contiguous (pixel-interleaved) file is read band by band, so a window's tiles are
  // kept for the next band's read: a row of tiles and one more, at most 32 MiB a thread.
  t->cache_tiles_ =
      t->separate_ || t->samples_ == 1
          ? 2
          : std::clamp<std::size_t>((std::size_t{32} << 20) / std::max<uint64_t>(tile_bytes, 1), 2,
                                    static_cast<std::size_t>(t->across_ + 1));
  return t;
}

TiffTiles::~TiffTiles() {
  if (fd_ >= 0) ::close(fd_);
}

void TiffTiles::decode(int64_t index, std::vector<uint8_t>& out) const {
  const int spt = separate_ ? 1 : samples_;
  const auto row_values = static_cast<std::size_t>(tile_w_ * spt);
  const std::size_t size = row_values * static_cast<std::size_t>(tile_h_ * bytes_);
  out.resize(size);
  const uint64_t off = offsets_[static_cast<std::size_t>(index)];
  const uint64_t count = counts_[static_cast<std::size_t>(index)];
  if (compression_ == 1) {
    if (count < size || !pread_all(fd_, out.data(), size, off))
      throw_input("truncated tile " + std::to_string(index), {.file = path_});
  } else {
    std::vector<uint8_t> packed(count);
    if (!pread_all(fd_, packed.data(), count, off))
      throw_input("truncated tile " + std::to_string(index), {.file = path_});
    size_t got = 0;
    if (!CPLZLibInflate(packed.data(), packed.size(), out.data(), size, &got) || got != size)
      throw_input("corrupt DEFLATE tile " + std::to_string(index), {.file = path_});
  }
  if (predictor_ == 1) return;
  std::vector<uint8_t> tmp;
  for (int64_t y = 0; y < tile_h_; ++y) {
    uint8_t* row =
        out.data() + static_cast<std::size_t>(y) * row_values * static_cast<std::size_t>(bytes_);
    const auto nv = static_cast<int64_t>(tile_w_);
    if (predictor_ == 3) {
      undo_float(row, nv * spt, bytes_, spt, tmp);
    } else if (bytes_ == 1) {
      undo_horizontal(row, nv, spt);
    } else if (bytes_ == 2) {
      undo_horizontal(reinterpret_cast<uint16_t*>(row), nv, spt);
    } else {  // 4: open() takes predictor 2 for 8-, 16- and 32-bit integers only
      undo_horizontal(reinterpret_cast<uint32_t*>(row), nv, spt);
    }
  }
}

const uint8_t* TiffTiles::tile(int64_t index) const {
  if (counts_[static_cast<std::size_t>(index)] == 0 ||
      offsets_[static_cast<std::size_t>(index)] == 0)
    return nullptr;
  Cache& c = cache_.local();
  for (auto it = c.tiles.begin(); it != c.tiles.end(); ++it) {
    if (it->index == index) {
      c.tiles.splice(c.tiles.begin(), c.tiles, it);
      return c.tiles.front().data.data();
    }
  }
  if (c.tiles.size() >= cache_tiles_) {
    c.tiles.splice(c.tiles.begin(), c.tiles, std::prev(c.tiles.end()));
  } else {
    c.tiles.emplace_front();
  }
  Tile& t = c.tiles.front();
  t.index = -1;
  decode(index, t.data);
  t.index = index;
  return t.data.data();
}

bool TiffTiles::read(int band, const Window& win, GDALDataType type, void* buf,
                     int64_t stride) const {
  if (band < 1 || band > samples_) return false;
  const int out_size = GDALGetDataTypeSizeBytes(type);
  const int spt = separate_ ? 1 : samples_;
  const int64_t tx0 = win.x / tile_w_, tx1 = (win.x + win.w - 1) / tile_w_;
  const int64_t ty0 = win.y / tile_h_, ty1 = (win.y + win.h - 1) / tile_h_;
  const int64_t plane = separate_ ? static_cast<int64_t>(band - 1) * across_ * down_ : 0;
  const int sample = separate_ ? 0 : band - 1;
  for (int64_t ty = ty0; ty <= ty1; ++ty) {
    for (int64_t tx = tx0; tx <= tx1; ++tx) {
      const uint8_t* t = tile(plane + ty * across_ + tx);
      if (!t) return false;
      const int64_t x0 = std::max(win.x, tx * tile_w_),
                    x1 = std::min(win.x + win.w, (tx + 1) * tile_w_);
      const int64_t y0 = std::max(win.y, ty * tile_h_),
                    y1 = std::min(win.y + win.h, (ty + 1) * tile_h_);
      for (int64_t y = y0; y < y1; ++y) {
        const uint8_t* src =
            t + (((y - ty * tile_h_) * tile_w_ + (x0 - tx * tile_w_)) * spt + sample) * bytes_;
        auto* dst = static_cast<uint8_t*>(buf) + ((y - win.y) * stride + (x0 - win.x)) * out_size;
        if (type != type_) {
          GDALCopyWords64(src, type_, spt * bytes_, dst, type, out_size, x1 - x0);
        } else if (spt == 1) {
          std::memcpy(dst, src, static_cast<std::size_t>((x1 - x0) * bytes_));
        } else {
          const int64_t m = x1 - x0;
          if (bytes_ == 1) {
            for (int64_t k = 0; k < m; ++k) dst[k] = src[k * spt];
          } else {
            for (int64_t k = 0; k < m; ++k) {
              for (int b = 0; b < bytes_; ++b) dst[k * bytes_ + b] = src[k * spt * bytes_ + b];
            }
          }
        }
      }
    }
  }
  return true;
}

}  // namespace fw
