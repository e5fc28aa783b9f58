// Outputs that never appear half-written: write under a temporary name beside the target, then
// rename into place. An uncommitted temporary is removed when the owner goes away.
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
  void commit();
  // Removes the temporary (also done by the destructor when not committed).
  void discard() noexcept;

 private:
  std::string target_, temp_;
  bool done_ = false;
};

// Writes a whole text file atomically.
void write_file_atomic(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

}  // namespace fw
