#include <gtest/gtest.h>

#include <cpl_error.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/log.hpp"

namespace fw {
namespace {

std::string capture(const std::function<void()>& f) {
  std::FILE* tmp = std::tmpfile();
  log::set_sink(tmp);
  f();
  log::set_sink(nullptr);
  std::fflush(tmp);
  std::rewind(tmp);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, tmp)) out += buf;
  std::fclose(tmp);
  return out;
}

TEST(Log, JsonLinesAreValidJson) {
  log::set_format(log::Format::kJson);
  const std::string out = capture([] { log::warn("quote \" and 中文", {{"file", "a\\b.tif"}}); });
  log::set_format(log::Format::kText);
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["msg"], "quote \" and 中文");
  EXPECT_EQ(j["file"], "a\\b.tif");
  EXPECT_TRUE(j.contains("ts"));
}

TEST(Log, LevelFilters) {
  const std::string out = capture([] {
    log::debug("hidden");
    log::warn("shown");
  });
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("warn: shown"), std::string::npos);
}

TEST(Log, GdalWarningsAreRoutedIntoOurLog) {
  const std::string out = capture([] { CPLError(CE_Warning, CPLE_AppDefined, "a gdal warning"); });
  EXPECT_NE(out.find("GDAL: a gdal warning"), std::string::npos);
}

TEST(Log, UnknownLevelIsAUsageError) {
  EXPECT_THROW(log::parse_level("loud"), std::exception);
}

}  // namespace
}  // namespace fw
