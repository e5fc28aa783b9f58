#include "engine/partials.hpp"

#include <filesystem>
#include <fstream>

#include "engine/atomic_file.hpp"

namespace fw {
namespace {

constexpr char kMagic[8] = {'F', 'W', 'P', 'A', 'R', 'T', '\0', '\1'};
constexpr uint32_t kVersion = 2;  // 2: raster chunks' raw values deflated

}  // namespace

void ByteReader::truncated() const {
  throw Error(ExitCode::kInput, what_ + ": truncated or corrupt (fewer bytes than it declares)");
}

PartialWriter::PartialWriter(std::string path, PartialKey key)
    : path_(std::move(path)), key_(std::move(key)) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  file_ = std::make_unique<AtomicPath>(path_);
  fp_ = std::fopen(file_->temp().c_str(), "wb");
  if (!fp_) throw_output("cannot create partial results", {.file = file_->temp()});
  ByteWriter head;
  head.put(kMagic);
  head.put<uint32_t>(kVersion);
  head.put_string(key_.run_key);
  head.put_string(key_.pass);
  head.put<uint64_t>(key_.windows);
  head.put<uint64_t>(key_.plan_hash);
  count_at_ = head.bytes().size();
  head.put<uint64_t>(0);  // the record count, completed by commit()
  write(head.bytes().data(), head.bytes().size());
}

PartialWriter::~PartialWriter() {
  if (fp_) std::fclose(fp_);
}

void PartialWriter::write(const void* data, std::size_t n) {
  if (n > 0 && std::fwrite(data, 1, n, fp_) != n)
    throw_output("cannot write partial results (disk full?)", {.file = file_->temp()});
}

void PartialWriter::add(uint64_t window, const std::string& bytes) {
  if (window >= key_.windows) throw_internal("partial window index out of the plan");
  if (!fp_) throw_internal("partial results already committed");
  const uint64_t size = bytes.size();
  write(&window, sizeof window);
  write(&size, sizeof size);
  write(bytes.data(), bytes.size());
  ++count_;
}

void PartialWriter::commit() {
  if (!fp_) throw_internal("partial results already committed");
  bool ok = std::fseek(fp_, static_cast<long>(count_at_), SEEK_SET) == 0;
  ok = ok && std::fwrite(&count_, sizeof count_, 1, fp_) == 1;
  ok = (std::fclose(fp_) == 0) && ok;
  fp_ = nullptr;
  if (!ok) throw_output("cannot write partial results (disk full?)", {.file = file_->temp()});
  file_->commit();
}

namespace {

// Sequential reads of a partial-results file, with truncation errors naming it.
class FileCursor {
 public:
  explicit FileCursor(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw Error(ExitCode::kInput, "cannot read partial results", {.file = path});
    size_ = std::filesystem::file_size(path);
  }
  template <class T>
  T get() {
    T v;
    read(reinterpret_cast<char*>(&v), sizeof v);
    return v;
  }
  std::string get_string() {
    const auto n = get<uint64_t>();
    if (n > size_ - pos_) truncated();
    std::string s(static_cast<std::size_t>(n), '\0');
    read(s.data(), s.size());
    return s;
  }
  // Skips a string; returns where its bytes start and how many there are.
  std::pair<uint64_t, uint64_t> skip_string() {
    const auto n = get<uint64_t>();
    if (n > size_ - pos_) truncated();
    const uint64_t at = pos_;
    pos_ += n;
    in_.seekg(static_cast<std::streamoff>(pos_));
    return {at, n};
  }
  bool at_end() const { return pos_ == size_; }

 private:
  void read(char* p, std::size_t n) {
    if (n > size_ - pos_ || !in_.read(p, static_cast<std::streamsize>(n))) truncated();
    pos_ += n;
  }
  [[noreturn]] void truncated() const {
    throw Error(ExitCode::kInput, "truncated or corrupt partial results", {.file = path_});
  }
  std::string path_;
  std::ifstream in_;
  uint64_t size_ = 0, pos_ = 0;
};

}  // namespace

PartialSet::PartialSet(const std::vector<std::string>& files, const PartialKey& expected)
    : files_(files), at_(expected.windows) {
  for (std::size_t f = 0; f < files.size(); ++f) {
    const std::string& path = files[f];
    if (!std::filesystem::exists(path))
      throw Error(ExitCode::kInput, "partial results missing (did this shard finish?)",
                  {.file = path});
    FileCursor r(path);
    char magic[8];
    for (char& c : magic) c = r.get<char>();
    if (std::memcmp(magic, kMagic, sizeof magic) != 0)
      throw Error(ExitCode::kInput, "not a farmwatch partial-results file", {.file = path});
    if (const auto v = r.get<uint32_t>(); v != kVersion)
      throw Error(ExitCode::kInput,
                  "partial results in format " + std::to_string(v) + "; this farmwatch reads " +
                      std::to_string(kVersion) + ": rerun the shards with one farmwatch version",
                  {.file = path});
    PartialKey k;
    k.run_key = r.get_string();
    k.pass = r.get_string();
    k.windows = r.get<uint64_t>();
    k.plan_hash = r.get<uint64_t>();
    auto differs = [&](const std::string& what, const std::string& got, const std::string& want) {
      throw Error(ExitCode::kInput,
                  "partial results of another " + what + " (" + got + ", expected " + want +
                      "): the shards did not run on the same inputs and configuration",
                  {.file = path});
    };
    if (k.run_key != expected.run_key) differs("run", k.run_key, expected.run_key);
    if (k.pass != expected.pass) differs("pass", k.pass, expected.pass);
    if (k.windows != expected.windows || k.plan_hash != expected.plan_hash)
      differs("window plan", std::to_string(k.windows) + " windows",
              std::to_string(expected.windows) + " windows");
    const auto n = r.get<uint64_t>();
    for (uint64_t i = 0; i < n; ++i) {
      const auto w = r.get<uint64_t>();
      if (w >= at_.size())
        throw Error(ExitCode::kInput, "partial results name a window outside the plan",
                    {.file = path});
      if (at_[w].file != SIZE_MAX)
        throw Error(ExitCode::kInput,
                    "window " + std::to_string(w) + " is also in " + files[at_[w].file] +
                        " (shards overlap: different shard counts?)",
                    {.file = path});
      const auto [offset, size] = r.skip_string();
      at_[w] = {f, offset, size};
    }
    if (!r.at_end())
      throw Error(ExitCode::kInput, "trailing bytes after the partial results", {.file = path});
  }
  for (uint64_t w = 0; w < at_.size(); ++w) {
    if (at_[w].file == SIZE_MAX)
      throw Error(ExitCode::kInput,
                  "window " + std::to_string(w) + " of " + std::to_string(at_.size()) +
                      " is in no shard's partial results (a shard is missing or failed)");
  }
}

std::string PartialSet::window(uint64_t index) const {
  const Where& at = at_[index];
  std::ifstream in(files_[at.file], std::ios::binary);
  std::string bytes(static_cast<std::size_t>(at.size), '\0');
  in.seekg(static_cast<std::streamoff>(at.offset));
  if (!in || !in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    throw Error(ExitCode::kInput, "cannot read partial results (changed since opened?)",
                {.file = files_[at.file]});
  return bytes;
}

}  // namespace fw
