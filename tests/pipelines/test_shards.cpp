// The shared run folder of a sharded run: shards publish their folders atomically, a failed
// shard publishes only its failure, a rerun replaces its own folder, and the merge's check names
// the missing, failed, foreign or miscounted shard.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "pipelines/shards.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

namespace fs = std::filesystem;
using pipelines::check_shards;
using pipelines::ShardOutput;

void run_shard(const std::string& run, int i, int n, const std::string& key,
               const std::string& content = "partial") {
  ShardOutput out(run, {i, n}, key);
  write_file_atomic(out.staging() + "/zonal.part", content + " " + std::to_string(i));
  out.publish(1.5);
}

void expect_refused(const std::string& run, int n, const std::string& key,
                    const std::string& needle) {
  try {
    check_shards(run, n, key);
    ADD_FAILURE() << "expected an error mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
  }
}

TEST(Shards, PublishCheckFailRerun) {
  test::TempDir dir;
  const std::string run = dir / "run";
  for (int i = 0; i < 3; ++i) run_shard(run, i, 3, "key-a");
  const auto ok = check_shards(run, 3, "key-a");
  ASSERT_EQ(ok.size(), 3u);
  EXPECT_EQ(ok[2].files, (std::vector<std::string>{"zonal.part"}));
  EXPECT_EQ(read_file(pipelines::shard_folder(run, 1) + "/zonal.part"), "partial 1");

  // Shard 1 fails on its next attempt: only the failure is published, named by the check.
  {
    ShardOutput out(run, {1, 3}, "key-a");
    write_file_atomic(out.staging() + "/zonal.part", "half written");
    out.fail("node lost");
  }
  EXPECT_FALSE(fs::exists(pipelines::shard_folder(run, 1) + "/zonal.part"));
  expect_refused(run, 3, "key-a", "shard 1 failed (node lost)");
  // Rerun: shard 1's folder is replaced, the merge can go on.
  run_shard(run, 1, 3, "key-a", "again");
  EXPECT_EQ(check_shards(run, 3, "key-a").size(), 3u);
  EXPECT_EQ(read_file(pipelines::shard_folder(run, 1) + "/zonal.part"), "again 1");

  // An attempt that dies before publishing leaves the published folder as it was.
  {
    ShardOutput out(run, {2, 3}, "key-a");
    write_file_atomic(out.staging() + "/zonal.part", "never published");
  }
  EXPECT_EQ(read_file(pipelines::shard_folder(run, 2) + "/zonal.part"), "partial 2");
  int hidden = 0;
  for (const auto& e : fs::directory_iterator(run + "/shards"))
    hidden += e.path().filename().string().front() == '.';
  EXPECT_EQ(hidden, 0);  // no staging folder left behind
}

TEST(Shards, MissingForeignAndMiscountedShardsAreRefused) {
  test::TempDir dir;
  const std::string run = dir / "run";
  run_shard(run, 0, 3, "key-a");
  run_shard(run, 2, 3, "key-a");
  expect_refused(run, 3, "key-a", "shard 1 of 3 is missing");
  run_shard(run, 1, 3, "key-b");  // other inputs or configuration
  expect_refused(run, 3, "key-a", "other inputs or another configuration");
  run_shard(run, 1, 3, "key-a");
  // A merge of another shard count: shard manifests say 3.
  expect_refused(run, 4, "key-a", "does not match");
  expect_refused(run, 2, "key-a", "does not match");
  EXPECT_EQ(check_shards(run, 3, "key-a").size(), 3u);
}

}  // namespace
}  // namespace fw
