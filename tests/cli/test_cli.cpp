#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/test_util.hpp"

namespace fw {
namespace {

const std::string kBin = FW_BINARY;

TEST(Cli, HelpListsSubcommands) {
  std::string out;
  EXPECT_EQ(test::run(kBin + " --help", &out), 0);
  for (const char* s : {"info", "synth", "--threads", "--memory", "--log-format", "Exit codes"}) {
    EXPECT_NE(out.find(s), std::string::npos) << s;
  }
}

TEST(Cli, InfoJsonListsVersionsAndDrivers) {
  std::string out;
  ASSERT_EQ(test::run(kBin + " info --json 2>/dev/null", &out), 0) << out;
  const auto j = nlohmann::json::parse(out);
  for (const char* lib : {"farmwatch", "GDAL", "PROJ", "GEOS", "oneTBB", "Eigen"}) {
    EXPECT_TRUE(j["versions"].contains(lib)) << lib;
  }
  EXPECT_TRUE(j["drivers"]["COG"].get<bool>());
  EXPECT_TRUE(j["drivers"]["GPKG"].get<bool>());
  EXPECT_EQ(j["versions"]["GDAL"].get<std::string>().substr(0, 2), "3.");
  EXPECT_TRUE(j["drivers_ok"].get<bool>());
}

TEST(Cli, VersionFlag) {
  std::string out;
  EXPECT_EQ(test::run(kBin + " --version", &out), 0);
  EXPECT_NE(out.find("farmwatch"), std::string::npos);
  EXPECT_NE(out.find("GEOS"), std::string::npos);
}

TEST(Cli, UsageErrorsExitWithCode2) {
  std::string out;
  test::TempDir d;
  EXPECT_EQ(test::run(kBin + " synth --out " + d.path() + " --size 12ax4", &out), 2);
  EXPECT_NE(out.find("bad size '12ax4'"), std::string::npos) << out;
  EXPECT_EQ(test::run(kBin + " synth", &out), 2);
  EXPECT_EQ(test::run(kBin + " nosuchcommand", &out), 2);
}

TEST(Cli, SynthWritesEverythingAndJsonLogs) {
  test::TempDir d;
  std::string out;
  ASSERT_EQ(test::run(kBin + " --log-format json synth --out " + d.path() +
                          " --size 200x150 --parcels 12 --seed 2",
                      &out),
            0)
      << out;
  for (const char* f : {"date1.tif", "date2.tif", "date1_scl.tif", "date2_scl.tif", "parcels.gpkg",
                        "parcels.geojson", "zones.geojson", "truth.json"}) {
    EXPECT_TRUE(std::filesystem::exists(d / f)) << f;
  }
  // Every log line is JSON; no temporary files are left.
  std::istringstream lines(out);
  std::string line;
  int json_lines = 0;
  while (std::getline(lines, line)) {
    if (!line.empty() && line[0] == '{') {
      EXPECT_NO_THROW(nlohmann::json::parse(line)) << line;
      ++json_lines;
    }
  }
  EXPECT_GT(json_lines, 0);
  for (const auto& e : std::filesystem::directory_iterator(d.path())) {
    EXPECT_EQ(e.path().filename().string().find(".part-"), std::string::npos) << e.path();
  }
}

TEST(Cli, UnwritableOutputExitsWithCode4) {
  test::TempDir d;
  const std::string file = d / "afile";
  std::FILE* f = std::fopen(file.c_str(), "w");
  std::fclose(f);
  std::string out;
  EXPECT_EQ(test::run(kBin + " synth --out " + file + "/sub --size 64", &out), 4) << out;
}

}  // namespace
}  // namespace fw

namespace fw {
namespace {

TEST(CliDemo, TheReadmesFirstCommandWritesEveryOutput) {
  test::TempDir d;
  std::string out;
  ASSERT_EQ(
      test::run(std::string(FW_BINARY) + " --log-level warn demo --size 320 --parcels 40 --out " +
                    d.path() + " 2>&1",
                &out),
      0)
      << out;
  for (const char* f :
       {"scene/date1.tif", "scene/truth.json", "run/change_class.tif", "run/change_intensity.tif",
        "run/change_magnitude.tif", "run/change_stats.json", "run/indices/before/ndvi.tif",
        "run/parcels.geojson", "run/parcels.csv", "run/summary_by_township.csv",
        "run/patches.geojson", "run/patches.csv", "run/farmwatch.gpkg", "run/report.html",
        "run/quicklook.png", "run/manifest.json", "run/change_class.qml", "run/patches.qml"})
    EXPECT_TRUE(std::filesystem::exists(d / f)) << f;
  EXPECT_NE(out.find("report.html"), std::string::npos) << out;
  EXPECT_NE(out.find("QGIS"), std::string::npos) << out;
  // Again: up to date.
  ASSERT_EQ(
      test::run(std::string(FW_BINARY) + " --log-level warn demo --size 320 --parcels 40 --out " +
                    d.path() + " 2>&1",
                &out),
      0);
  EXPECT_NE(out.find("up to date"), std::string::npos) << out;
}

}  // namespace
}  // namespace fw
