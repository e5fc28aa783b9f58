#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/atomic_file.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

std::size_t count_files(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

TEST(AtomicPath, NothingVisibleUntilCommit) {
  test::TempDir dir;
  const std::string target = dir / "out.txt";
  std::ofstream(target) << "previous";
  {
    AtomicPath ap(target);
    std::ofstream(ap.temp()) << "half";
    EXPECT_EQ(read_file(target), "previous");
    // Not committed: the temporary goes away, the previous output stays.
  }
  EXPECT_EQ(read_file(target), "previous");
  EXPECT_EQ(count_files(dir.path()), 1u);
  {
    AtomicPath ap(target);
    std::ofstream(ap.temp()) << "complete";
    ap.commit();
  }
  EXPECT_EQ(read_file(target), "complete");
  EXPECT_EQ(count_files(dir.path()), 1u);
}

TEST(AtomicPath, WriteFileAtomic) {
  test::TempDir dir;
  write_file_atomic(dir / "a/b/c.json", "{}\n");
  EXPECT_EQ(read_file(dir / "a/b/c.json"), "{}\n");
}

}  // namespace
}  // namespace fw
