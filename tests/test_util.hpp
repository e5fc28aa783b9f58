// Helpers shared by the tests.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/hash.hpp"

namespace fw::test {

// A fresh temporary folder, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/fwtest-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs a shell command, returning its exit status and capturing stdout+stderr.
inline int run(const std::string& cmd, std::string* output = nullptr) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string shared_data() {
  return FW_SHARED_DATA;
}
inline bool have_shared_data() {
  return std::filesystem::exists(shared_data());
}

}  // namespace fw::test
