// Per-window partial results of a raster pass, stored so that a pass can be split across
// machines (shards) and its results consumed elsewhere in window order, with the same bits as a
// one-machine run (docs/scale-out.md).
//
// ByteWriter/ByteReader serialise trivially copyable values, vectors and strings (host byte
// order: the shards and the merge of one run share one architecture). A PartialFile holds the
// windows one shard computed for one pass: a header (magic, format version, run key, pass name,
// the plan's window count) and per window its index and bytes; it is written atomically.
// PartialSet opens the files of every shard of a pass, checks that their run key, pass and plan
// agree, and that every window is present exactly once.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"

namespace fw {

class ByteWriter {
 public:
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const char*>(&v);
    bytes_.append(p, sizeof(T));
  }
  template <class T>
  void put_vector(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(v.size());
    if (!v.empty()) bytes_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    bytes_.append(s);
  }
  const std::string& bytes() const { return bytes_; }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class ByteReader {
 public:
  // `what` names the data in errors (a file and a window).
  ByteReader(const char* data, std::size_t size, std::string what)
      : p_(data), end_(data + size), what_(std::move(what)) {}
  explicit ByteReader(const std::string& bytes, std::string what = "partial result")
      : ByteReader(bytes.data(), bytes.size(), std::move(what)) {}
  // The bytes must outlive the reader: no temporaries.
  ByteReader(std::string&&, std::string = {}) = delete;

  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  template <class T>
  std::vector<T> get_vector() {
    const auto n = get<uint64_t>();
    if (n > static_cast<uint64_t>(end_ - p_) / sizeof(T)) truncated();
    std::vector<T> v(static_cast<std::size_t>(n));
    if (n > 0) std::memcpy(v.data(), p_, v.size() * sizeof(T));
    p_ += v.size() * sizeof(T);
    return v;
  }
  std::string get_string() {
    const auto n = get<uint64_t>();
    if (n > static_cast<uint64_t>(end_ - p_)) truncated();
    std::string s(p_, static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }
  bool done() const { return p_ == end_; }
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }

 private:
  void need(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) truncated();
  }
  [[noreturn]] void truncated() const;
  const char* p_;
  const char* end_;
  std::string what_;
};

// What a partial file belongs to: every shard's file of one pass must agree on all of it.
struct PartialKey {
  std::string run_key;     // inputs, configuration and version (the run's key)
  std::string pass;        // e.g. "change.histograms"
  uint64_t windows = 0;    // the plan's window count
  uint64_t plan_hash = 0;  // the plan's geometry (window origins and sizes)
};

// Writes one shard's windows of one pass; commit() renames the file into place.
// The records are streamed to a temporary file beside `path` (memory holds one window's
// bytes, not the shard's); commit() completes the header and renames it into place; a writer
// destroyed before commit() leaves nothing.
class PartialWriter {
 public:
  PartialWriter(std::string path, PartialKey key);
  ~PartialWriter();
  PartialWriter(const PartialWriter&) = delete;
  PartialWriter& operator=(const PartialWriter&) = delete;
  void add(uint64_t window, const std::string& bytes);
  void commit();

 private:
  void write(const void* data, std::size_t n);
  std::string path_;
  PartialKey key_;
  std::unique_ptr<AtomicPath> file_;
  std::FILE* fp_ = nullptr;
  uint64_t count_at_ = 0;  // where the record count goes in the header
  uint64_t count_ = 0;
};

// The windows of one pass from every shard's file. The files are indexed when opened (headers
// checked, records located) and each window is read when asked for, so a merge holds one
// window's results at a time, not the scene's.
class PartialSet {
 public:
  // Throws fw::Error (input) naming the file when one is missing, truncated, of another format,
  // run key, pass or plan, or when a window is missing or given twice.
  PartialSet(const std::vector<std::string>& files, const PartialKey& expected);
  std::string window(uint64_t index) const;
  uint64_t size() const { return at_.size(); }
  const std::string& file_of(uint64_t index) const { return files_[at_[index].file]; }

 private:
  struct Where {
    std::size_t file = SIZE_MAX;
    uint64_t offset = 0, size = 0;
  };
  std::vector<std::string> files_;
  std::vector<Where> at_;
};

}  // namespace fw
