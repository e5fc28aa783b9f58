// Outputs that never appear half-written: write under a temporary name beside the target, then
// rename into place. An uncommitted temporary is removed when the owner goes away. Durable
// commits also fsync the file before the rename and the folder after it, so that a power cut
// during a nightly run leaves the old file or the new one, never an empty one.
#pragma once

#include <string>

namespace fw {

class AtomicPath {
 public:
  // `target` is the final path; the temporary is ".<name>.part-<pid>-<n>" in the same folder.
  explicit AtomicPath(std::string target);
  ~AtomicPath();
  AtomicPath(const AtomicPath&) = delete;
  AtomicPath& operator=(const AtomicPath&) = delete;
  AtomicPath(AtomicPath&& other) noexcept;

  const std::string& temp() const { return temp_; }
  const std::string& target() const { return target_; }
  // Renames the temporary onto the target (replacing it); throws fw::Error (output) on failure.
  // durable: fsync the file first and the folder after (about a millisecond a file here).
  void commit(bool durable = true);
  // Removes the temporary (also done by the destructor when not committed).
  void discard() noexcept;

 private:
  std::string target_, temp_;
  bool done_ = false;
};

// Writes a whole file atomically (durably unless `durable` is false: evidence chips, thousands
// of small files that a rerun recreates).
void write_file_atomic(const std::string& path, const std::string& content, bool durable = true);
std::string read_file(const std::string& path);

// Moves a complete folder onto `target` in one step: an atomic exchange where the filesystem has
// one (renameat2), else the previous folder moved aside, the new one in, the previous removed.
// The folders are flushed first. `staging` is gone afterwards; on failure the previous target is
// back in place and fw::Error (output) is thrown.
void replace_folder(const std::string& staging, const std::string& target);
// fsync of a folder (its entries), ignoring filesystems that cannot.
void sync_folder(const std::string& dir);

}  // namespace fw
