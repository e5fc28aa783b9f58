#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/gdal_handles.hpp"
#include "tests/pipelines/scene_util.hpp"
#include "tests/rasters/raster_fixtures.hpp"
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

namespace fw {
namespace {

// `monitor --history`, then the verification round trip through the command line.
TEST(CliHistory, MonitorKeepsAHistoryAndVerifyRoundTrips) {
  test::TempDir d;
  const std::string bin = FW_BINARY, s = d / "scene", store = d / "district.gpkg";
  std::string out;
  ASSERT_EQ(test::run(bin + " --log-level off synth --out " + s + " --size 256 --parcels 30", &out),
            0)
      << out;
  const std::string m = bin + " --log-level warn monitor --before " + s + "/date1.tif --after " +
                        s + "/date2.tif --mask-before " + s + "/date1_scl.tif --mask-after " + s +
                        "/date2_scl.tif --parcels " + s + "/parcels.gpkg --history " + store +
                        " --set steps.patches.chips=false";
  ASSERT_EQ(test::run(m + " --set history.run_date=2025-05-23 --out " + (d / "r1"), &out), 0)
      << out;
  ASSERT_EQ(test::run(m + " --set history.run_date=2025-06-23 --out " + (d / "r2"), &out), 0)
      << out;
  // The second run's cases all persist.
  std::ifstream h(d / "r2/history.csv");
  std::string line;
  std::getline(h, line);
  int rows = 0;
  while (std::getline(h, line)) {
    ++rows;
    EXPECT_NE(line.find(",persisting,"), std::string::npos) << line;
  }
  EXPECT_GT(rows, 0);
  // What the store holds: two runs; a parcel's series run by run.
  ASSERT_EQ(test::run(bin + " history runs --history " + store, &out), 0) << out;
  EXPECT_NE(out.find("\n1,2025-05-23,"), std::string::npos) << out;
  EXPECT_NE(out.find("\n2,2025-06-23,0," + std::to_string(rows) + ","), std::string::npos) << out;
  ASSERT_EQ(test::run(bin + " history parcel P000001 --history " + store, &out), 0) << out;
  EXPECT_NE(out.find("\n1,2025-05-23,"), std::string::npos) << out;
  EXPECT_NE(out.find("\n2,2025-06-23,"), std::string::npos) << out;
  EXPECT_EQ(test::run(bin + " history parcel NOPE --history " + store, &out), 3);
  ASSERT_EQ(test::run(bin + " history cases --history " + store, &out), 0) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), rows + 1) << out;
  // An earlier date than the store's last run is refused (usage).
  EXPECT_EQ(test::run(m + " --set history.run_date=2025-06-01 --out " + (d / "r3"), &out), 2);
  EXPECT_NE(out.find("is not after the store's last run (2025-06-23"), std::string::npos) << out;
  // Export, then import a CSV with an unknown case: exit 3, nothing applied.
  const std::string csv = d / "verify.csv";
  ASSERT_EQ(test::run(bin + " verify export --history " + store + " --out " + csv, &out), 0) << out;
  EXPECT_NE(out.find("wrote " + std::to_string(rows) + " cases"), std::string::npos) << out;
  std::ofstream(d / "bad.csv") << "track_id,verification_result,legal\nT1-NOPE,confirmed,no\n";
  EXPECT_EQ(test::run(bin + " verify import " + (d / "bad.csv") + " --history " + store, &out), 3);
  EXPECT_NE(out.find("unknown track_id 'T1-NOPE'"), std::string::npos) << out;
  // The first exported case confirmed false: imported, and no longer exported as open.
  std::ifstream in(csv);
  std::getline(in, line);
  std::getline(in, line);
  const std::string id = line.substr(0, line.find(','));
  std::ofstream(d / "good.csv") << "track_id,verification_result,verified_at\n"
                                << id << ",false_alarm,2025-06-30\n";
  ASSERT_EQ(test::run(bin + " verify import " + (d / "good.csv") + " --history " + store, &out), 0)
      << out;
  EXPECT_NE(out.find("imported 1 verified cases"), std::string::npos) << out;
  ASSERT_EQ(test::run(bin + " verify export --history " + store + " --out " + (d / "v2.csv"), &out),
            0);
  EXPECT_NE(out.find("wrote " + std::to_string(rows - 1) + " cases"), std::string::npos) << out;
}

}  // namespace
}  // namespace fw

namespace fw {
namespace {

// farmwatch ecology on a synthetic scene with a DEM: the rasters, zones and parcel terrain, and
// a DEM elsewhere failing with exit code 3 and the DEM's name.
TEST(CliEcology, WritesIndicatorsZonesAndTerrain) {
  test::TempDir d;
  const std::string bin = FW_BINARY, s = d / "scene", o = d / "out";
  std::string out;
  ASSERT_EQ(
      test::run(bin + " --log-level off synth --out " + s + " --size 256 --parcels 30 --lst", &out),
      0)
      << out;
  // A DEM rising 0.5 m per metre eastwards (26.57 degrees) over the scene's extent.
  DatasetPtr img = open_raster(s + "/date1.tif");
  const Grid g = Grid::of(*img);
  img.reset();
  std::vector<float> z(static_cast<std::size_t>(g.width() * g.height()));
  for (int64_t r = 0; r < g.height(); ++r)
    for (int64_t c = 0; c < g.width(); ++c)
      z[static_cast<std::size_t>(r * g.width() + c)] = 5.0f * c;
  test::write_raster<float>(d / "dem.tif", g, {z});
  const std::string args = " ecology --before " + s + "/date1.tif --after " + s +
                           "/date2.tif --mask-before " + s + "/date1_scl.tif --mask-after " + s +
                           "/date2_scl.tif --lst-before " + s + "/date1_lst.tif --lst-after " + s +
                           "/date2_lst.tif --zones " + s + "/zones.geojson --parcels " + s +
                           "/parcels.gpkg";
  ASSERT_EQ(
      test::run(bin + " --log-level warn" + args + " --dem " + d / "dem.tif" + " --out " + o, &out),
      0)
      << out;
  EXPECT_NE(out.find("lst raster"), std::string::npos) << out;
  for (const char* f :
       {"fvc_t0.tif", "fvc_t1.tif", "rsei_t0.tif", "rsei_t1.tif", "rsei_grade_change.tif",
        "slope.tif", "zones.geojson", "zones.csv", "zones.gpkg", "ecology.json",
        "parcel_terrain.csv", "rsei_t0.qml", "rsei_grade_change.qml", "slope.qml", "zones.qml"}) {
    EXPECT_TRUE(std::filesystem::exists(o + "/" + f)) << f;
  }
  // Every parcel lies on the 26.57 degree plane: its area above 25 degrees, flagged. (The
  // raster's outermost column has half the gradient, its missing neighbour being repeated: the
  // parcels touching it come out a little lower.)
  DatasetPtr t = open_vector(o + "/parcel_terrain.geojson");
  OGRLayer* l = t->GetLayer(0);
  EXPECT_EQ(l->GetFeatureCount(), 30);
  int whole = 0;
  for (auto& f : *l) {
    EXPECT_NEAR(f->GetFieldAsDouble("slope_mean"), 26.565, 0.1);
    EXPECT_GT(f->GetFieldAsDouble("steep25_share"), 0.99);
    whole += f->GetFieldAsDouble("steep25_share") == 1.0;
    EXPECT_STREQ(f->GetFieldAsString("flags"), "steep_over_25");
  }
  EXPECT_GE(whole, 15);
  // The grade-change style names the classes.
  EXPECT_NE(test::slurp(o + "/rsei_grade_change.qml").find("fell 1 grade"), std::string::npos);
  // FVC and RSEI are UInt16 x 10000 by default; the zones' means come out in [0, 1] (scaled).
  {
    DatasetPtr r = open_raster(o + "/rsei_t0.tif");
    EXPECT_EQ(r->GetRasterBand(1)->GetRasterDataType(), GDT_UInt16);
    EXPECT_EQ(r->GetRasterBand(1)->GetScale(), 1e-4);
    DatasetPtr zv = open_vector(o + "/zones.geojson");
    for (auto& f : *zv->GetLayer(0)) {
      const double v = f->GetFieldAsDouble("rsei_t0");
      EXPECT_GT(v, 0.0);
      EXPECT_LT(v, 1.0);
    }
  }
  // A DEM that does not overlap: exit 3, the DEM named.
  const Grid far(GeoTransform::north_up(100000, 1000000, 10, 10), 50, 50, g.crs());
  test::write_raster<float>(d / "far.tif", far, {std::vector<float>(2500, 1.0f)});
  EXPECT_EQ(test::run(bin + " --log-level warn" + args + " --dem " + d / "far.tif" + " --out " +
                          d / "out2",
                      &out),
            3)
      << out;
  EXPECT_NE(out.find("far.tif"), std::string::npos) << out;
}

}  // namespace
}  // namespace fw
