#include "engine/atomic_file.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.hpp"

namespace fw {
namespace fs = std::filesystem;

namespace {
std::atomic<unsigned> g_counter{0};
}

AtomicPath::AtomicPath(std::string target) : target_(std::move(target)) {
  const fs::path t(target_);
  const fs::path dir = t.parent_path();
  std::error_code ec;
  if (!dir.empty()) fs::create_directories(dir, ec);
  const std::string name = "." + t.filename().string() + ".part-" + std::to_string(getpid()) + "-" +
                           std::to_string(g_counter++);
  temp_ = (dir / name).string();
  // Keep the extension last so that GDAL picks drivers and sidecars as usual.
  if (t.has_extension()) temp_ += t.extension().string();
}

AtomicPath::AtomicPath(AtomicPath&& o) noexcept
    : target_(std::move(o.target_)), temp_(std::move(o.temp_)), done_(o.done_) {
  o.done_ = true;
}

AtomicPath::~AtomicPath() {
  if (!done_) discard();
}

namespace {
// fsync of a file or a folder; a failure to open (a folder of a COG writer's pieces, say) is
// not an error, a failed fsync is.
void sync_path(const std::string& path, const std::string& target) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0 && errno != EINVAL && errno != EROFS)
    throw_output(std::string("cannot flush the file to disk: ") + std::strerror(errno),
                 {.file = target});
}
}  // namespace

void AtomicPath::commit(bool durable) {
  std::error_code ec;
  if (durable && fs::is_regular_file(temp_, ec)) sync_path(temp_, target_);
  fs::rename(temp_, target_, ec);
  if (ec)
    throw_output("cannot move the finished file into place: " + ec.message(), {.file = target_});
  // Sidecars GDAL may have written (for example .aux.xml) follow their file.
  for (const char* ext : {".aux.xml", ".ovr"}) {
    if (fs::exists(temp_ + ext, ec)) fs::rename(temp_ + ext, target_ + ext, ec);
  }
  done_ = true;
  if (durable) {
    const fs::path dir = fs::path(target_).parent_path();
    sync_path(dir.empty() ? std::string(".") : dir.string(), target_);
  }
}

void AtomicPath::discard() noexcept {
  std::error_code ec;
  fs::remove_all(temp_, ec);
  for (const char* ext : {".aux.xml", ".ovr"}) fs::remove(temp_ + ext, ec);
  done_ = true;
}

void write_file_atomic(const std::string& path, const std::string& content, bool durable) {
  AtomicPath ap(path);
  {
    std::ofstream out(ap.temp(), std::ios::binary);
    out << content;
    out.flush();
    if (!out) throw_output("cannot write file", {.file = path});
  }
  ap.commit(durable);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input("cannot read file", {.file = path});
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void sync_folder(const std::string& dir) {
  sync_path(dir, dir);
}

void replace_folder(const std::string& staging, const std::string& target) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path t = fs::absolute(target).lexically_normal();
  const fs::path parent = t.parent_path();
  sync_folder(staging);
  if (fs::exists(t)) {
#ifdef SYS_renameat2
    constexpr unsigned kExchange = 1u << 1;  // RENAME_EXCHANGE
    const bool swapped =
        syscall(SYS_renameat2, AT_FDCWD, staging.c_str(), AT_FDCWD, t.c_str(), kExchange) == 0;
#else
    const bool swapped = false;
#endif
    if (swapped) {
      fs::remove_all(staging, ec);  // now the previous folder
    } else {
      // No atomic exchange here: move the previous folder aside, then the new one in.
      const fs::path aside =
          parent / ("." + t.filename().string() + ".previous-" + std::to_string(::getpid()));
      fs::rename(t, aside, ec);
      if (ec)
        throw_output("cannot move the previous outputs aside: " + ec.message(),
                     {.file = t.string()});
      fs::rename(staging, t, ec);
      if (ec) {
        fs::rename(aside, t);
        throw_output("cannot move the outputs into place: " + ec.message(), {.file = t.string()});
      }
      fs::remove_all(aside, ec);
    }
  } else {
    fs::rename(staging, t, ec);
    if (ec)
      throw_output("cannot move the outputs into place: " + ec.message(), {.file = t.string()});
  }
  sync_folder(parent.string());
}

}  // namespace fw
