#include "engine/partials.hpp"

#include <filesystem>

#include "engine/atomic_file.hpp"

namespace fw {
namespace {

constexpr char kMagic[8] = {'F', 'W', 'P', 'A', 'R', 'T', '\0', '\1'};
constexpr uint32_t kVersion = 1;

}  // namespace

void ByteReader::truncated() const {
  throw Error(ExitCode::kInput, what_ + ": truncated or corrupt (fewer bytes than it declares)");
}

PartialWriter::PartialWriter(std::string path, PartialKey key)
    : path_(std::move(path)), key_(std::move(key)) {}

void PartialWriter::add(uint64_t window, const std::string& bytes) {
  if (window >= key_.windows) throw_internal("partial window index out of the plan");
  body_.put<uint64_t>(window);
  body_.put_string(bytes);
  ++count_;
}

void PartialWriter::commit() {
  ByteWriter head;
  head.put(kMagic);
  head.put<uint32_t>(kVersion);
  head.put_string(key_.run_key);
  head.put_string(key_.pass);
  head.put<uint64_t>(key_.windows);
  head.put<uint64_t>(key_.plan_hash);
  head.put<uint64_t>(count_);
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  write_file_atomic(path_, head.bytes() + body_.bytes());
}

PartialSet::PartialSet(const std::vector<std::string>& files, const PartialKey& expected)
    : files_(files), windows_(expected.windows), owner_(expected.windows, SIZE_MAX) {
  for (std::size_t f = 0; f < files.size(); ++f) {
    const std::string& path = files[f];
    if (!std::filesystem::exists(path))
      throw Error(ExitCode::kInput, "partial results missing (did this shard finish?)",
                  {.file = path});
    const std::string data = read_file(path);
    ByteReader r(data, path);
    char magic[8];
    for (char& c : magic) c = r.get<char>();
    if (std::memcmp(magic, kMagic, sizeof magic) != 0 || r.get<uint32_t>() != kVersion)
      throw Error(ExitCode::kInput, "not a farmwatch partial-results file of this version",
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
      if (w >= windows_.size())
        throw Error(ExitCode::kInput, "partial results name a window outside the plan",
                    {.file = path});
      if (owner_[w] != SIZE_MAX)
        throw Error(ExitCode::kInput,
                    "window " + std::to_string(w) + " is also in " + files[owner_[w]] +
                        " (shards overlap: different shard counts?)",
                    {.file = path});
      windows_[w] = r.get_string();
      owner_[w] = f;
    }
    if (!r.done())
      throw Error(ExitCode::kInput, "trailing bytes after the partial results", {.file = path});
  }
  for (uint64_t w = 0; w < windows_.size(); ++w) {
    if (owner_[w] == SIZE_MAX)
      throw Error(ExitCode::kInput,
                  "window " + std::to_string(w) + " of " + std::to_string(windows_.size()) +
                      " is in no shard's partial results (a shard is missing or failed)");
  }
}

}  // namespace fw
