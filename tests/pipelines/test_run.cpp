// The monitoring run on a small synthetic scene: every output there and readable by GDAL (CRS,
// no-data, COG layout, feature counts), reruns skipped, identical results for 1 and 2 threads,
// a per-folder lock, failed and killed runs that leave the previous outputs intact, and a
// second run on a busy folder exiting with the documented code.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <ogrsf_frmts.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/raster_io.hpp"
#include "pipelines/run.hpp"
#include "pipelines/synth.hpp"
#include "tests/pipelines/scene_util.hpp"
#include "tests/test_util.hpp"

extern char** environ;

namespace fw {
namespace {

namespace fs = std::filesystem;
const std::string kBin = FW_BINARY;

using test::slurp;

// The scene is made once for the whole suite.
class Run : public test::WithRunScene<::testing::Test> {
 protected:
  // A pipeline file in dir_ running into `out`.
  std::string write_pipeline(const std::string& out, const std::string& extra = "") const {
    const std::string path = dir_ / ("p-" + out + ".yaml");
    std::ofstream(path) << scene_pipeline(out, "", extra);
    return path;
  }
  static pipelines::RunReport run(const std::string& pipeline, int threads = 0, bool force = false,
                                  std::function<void(const std::string&)> hook = {}) {
    pipelines::RunOptions ro;
    ro.force = force;
    ro.scheduler.threads = threads;
    ro.before_stage = std::move(hook);
    return pipelines::run_pipeline(pipelines::load_pipeline(pipeline), ro);
  }
  // Pixel values of every band of a raster.
  static std::vector<double> pixels(const std::string& path) {
    DatasetPtr ds = open_raster(path);
    std::vector<double> all;
    const Window w{0, 0, ds->GetRasterXSize(), ds->GetRasterYSize()};
    for (int b = 1; b <= ds->GetRasterCount(); ++b) {
      std::vector<double> v;
      read_window(*ds, b, w, v);
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  }
  // What must be identical between two runs of the same inputs.
  static void expect_same_results(const std::string& a, const std::string& b) {
    for (const char* r :
         {"change_class.tif", "change_intensity.tif", "change_magnitude.tif", "change_cover.tif",
          "indices/before/ndvi.tif", "indices/after/ndvi.tif"}) {
      const auto x = pixels(a + "/" + r), y = pixels(b + "/" + r);
      ASSERT_EQ(x.size(), y.size()) << r;
      EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin(), [](double p, double q) {
        return p == q || (std::isnan(p) && std::isnan(q));
      })) << r;
    }
    for (const char* f : {"patches.geojson", "parcels.geojson", "patches.csv", "parcels.csv",
                          "summary_by_township.csv", "change_stats.json"})
      EXPECT_EQ(slurp(a + "/" + f), slurp(b + "/" + f)) << f;
  }
  test::TempDir dir_;
};

TEST_F(Run, WritesEveryOutputThatGdalReopens) {
  const auto rep = run(write_pipeline("out"));
  const std::string o = dir_ / "out";
  EXPECT_EQ(rep.target, o);
  for (const char* f :
       {"change_class.tif", "change_intensity.tif", "change_magnitude.tif", "change_stats.json",
        "indices/before/ndvi.tif", "indices/after/ndvi.tif", "parcels.geojson", "parcels.csv",
        "summary_by_township.csv", "patches.geojson", "patches.csv", "farmwatch.gpkg",
        "report.html", "quicklook.png", "manifest.json", "change_class.qml", "patches.qml",
        "parcels.qml"})
    EXPECT_TRUE(fs::exists(o + "/" + f)) << f;
  // Rasters: the scene's CRS, no-data, Cloud-Optimized layout.
  DatasetPtr d1 = open_raster(scene() + "/date1.tif");
  const Grid g = Grid::of(*d1);
  for (const char* r : {"change_class.tif", "change_intensity.tif", "change_magnitude.tif",
                        "indices/after/ndvi.tif"}) {
    DatasetPtr ds = open_raster(o + "/" + r);
    EXPECT_TRUE(Grid::of(*ds).crs().same_as(g.crs())) << r;
    int has = 0;
    ds->GetRasterBand(1)->GetNoDataValue(&has);
    EXPECT_TRUE(has) << r;
  }
  // Cloud-Optimized layout, by GDAL's own validator (IFDs first, overviews smallest first, tiled).
  std::string out;
  const std::string cmd =
      "/usr/bin/python3 -c \"import sys\nfrom osgeo_utils.samples import "
      "validate_cloud_optimized_geotiff as v\nbad=0\nfor f in sys.argv[1:]:\n  e,w,_=v.validate(f,"
      "full_check=True)\n  bad+=len(e)\n  print(f,e,w)\nsys.exit(1 if bad else 0)\" ";
  std::string files;
  for (const char* r : {"change_class.tif", "change_intensity.tif", "change_magnitude.tif",
                        "change_cover.tif", "indices/before/ndvi.tif", "indices/after/bsi.tif"})
    files += " " + o + "/" + r;
  EXPECT_EQ(test::run(cmd + files + " 2>&1", &out), 0) << out;
  // Vectors: the GeoPackage's layers hold as many features as the CSVs have rows.
  auto rows = [](const std::string& csv) {
    const std::string t = slurp(csv);
    return static_cast<int64_t>(std::count(t.begin(), t.end(), '\n')) - 1;
  };
  DatasetPtr gp = open_vector(o + "/farmwatch.gpkg");
  ASSERT_TRUE(gp->GetLayerByName("parcels"));
  ASSERT_TRUE(gp->GetLayerByName("patches"));
  EXPECT_EQ(gp->GetLayerByName("parcels")->GetFeatureCount(), rows(o + "/parcels.csv"));
  EXPECT_EQ(gp->GetLayerByName("patches")->GetFeatureCount(), rows(o + "/patches.csv"));
  EXPECT_GT(rows(o + "/patches.csv"), 0);
  EXPECT_EQ(gp->GetLayerByName("parcels")->GetFeatureCount(), 80);
  // The GeoPackage carries the QGIS styles as its layers' defaults.
  ASSERT_TRUE(gp->GetLayerByName("layer_styles"));
  EXPECT_EQ(gp->GetLayerByName("layer_styles")->GetFeatureCount(), 3);
  // The scene has zones, so the ecology stage ran: the zones layer and its rasters.
  ASSERT_TRUE(gp->GetLayerByName("zones"));
  EXPECT_EQ(gp->GetLayerByName("zones")->GetFeatureCount(), rows(o + "/zones.csv"));
  for (const char* f : {"/rsei_t0.tif", "/rsei_t1.tif", "/fvc_t0.tif", "/rsei_grade_change.tif"})
    EXPECT_TRUE(fs::exists(o + f)) << f;
  EXPECT_FALSE(fs::exists(o + "/zones.gpkg"));
  DatasetPtr gj = open_vector(o + "/patches.geojson");
  EXPECT_EQ(gj->GetLayer(0)->GetFeatureCount(), rows(o + "/patches.csv"));
  // The manifest: inputs with hashes, configuration, timings, counts, status.
  const auto m = nlohmann::json::parse(slurp(o + "/manifest.json"));
  EXPECT_EQ(m["status"], "ok");
  EXPECT_EQ(m["inputs"].size(), 6u);  // two images, two masks, parcels, zones
  for (const auto& in : m["inputs"]) EXPECT_EQ(in["hash"].get<std::string>().size(), 16u);
  EXPECT_EQ(m["configuration"]["steps.change.method"], "diff");
  EXPECT_TRUE(m["seconds"].contains("change"));
  EXPECT_EQ(m["counts"]["parcels"], 80);
  EXPECT_TRUE(std::find(m["files"].begin(), m["files"].end(), "report.html") != m["files"].end());
  // Nothing left beside it.
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    const std::string n = e.path().filename().string();
    EXPECT_EQ(n.find("staging"), std::string::npos) << n;
  }
}

TEST_F(Run, RerunsAreSkippedUnlessSomethingChanged) {
  const std::string p = write_pipeline("out");
  run(p);
  const std::string m1 = slurp(dir_ / "out/manifest.json");
  EXPECT_TRUE(run(p).skipped);
  EXPECT_EQ(slurp(dir_ / "out/manifest.json"), m1);
  EXPECT_FALSE(run(p, 0, true).skipped);  // forced
  EXPECT_NE(slurp(dir_ / "out/manifest.json"), m1);
  // Another configuration: a run.
  const std::string q = write_pipeline("out", "steps:\n  change:\n    mad_k: 6\n");
  EXPECT_FALSE(run(q).skipped);
}

TEST_F(Run, OneAndTwoThreadsGiveIdenticalResults) {
  run(write_pipeline("t1"), 1);
  run(write_pipeline("t2"), 2);
  expect_same_results(dir_ / "t1", dir_ / "t2");
}

TEST_F(Run, AFailedRunLeavesThePreviousOutputs) {
  const std::string p = write_pipeline("out");
  run(p);
  const std::string m1 = slurp(dir_ / "out/manifest.json");
  const std::string g1 = slurp(dir_ / "out/patches.geojson");
  for (const char* at : {"indices", "patches", "report", "swap"}) {
    EXPECT_THROW(run(p, 0, true,
                     [&](const std::string& s) {
                       if (s == at) throw_input("planted failure");
                     }),
                 Error)
        << at;
    EXPECT_EQ(slurp(dir_ / "out/manifest.json"), m1) << at;
    EXPECT_EQ(slurp(dir_ / "out/patches.geojson"), g1) << at;
    for (const auto& e : fs::directory_iterator(dir_.path()))
      EXPECT_EQ(e.path().filename().string().find("staging"), std::string::npos) << at;
  }
}

TEST_F(Run, TheLockKeepsASecondRunOut) {
  const std::string p = write_pipeline("out");
  {
    pipelines::RunLock held(dir_ / "out");
    try {
      run(p);
      ADD_FAILURE() << "ran under a held lock";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kLocked);
      EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(getpid())), std::string::npos)
          << e.what();
    }
  }
  EXPECT_FALSE(run(p).skipped);  // released: the next run goes ahead
}

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

int wait_exit(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST_F(Run, KilledAtTenMomentsThePreviousOutputsStayAndTheNextRunMatches) {
  // A first complete run, and a reference run of the second configuration elsewhere.
  const std::string p = write_pipeline("out");
  run(p);
  const std::string m1 = slurp(dir_ / "out/manifest.json");
  std::map<std::string, std::string> before;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out")) {
    if (e.is_regular_file()) before[e.path().string()] = slurp(e.path().string());
  }
  const std::string extra = "steps:\n  change:\n    mad_k: 4\n";
  const std::string q = write_pipeline("out", extra), ref = write_pipeline("ref", extra);
  const auto t0 = std::chrono::steady_clock::now();
  run(ref);
  const double full = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int k = 1; k <= 10; ++k) {
    const pid_t pid = spawn({kBin, "--log-level", "off", "run", q});
    std::this_thread::sleep_for(std::chrono::duration<double>(full * k / 11.0));
    kill(pid, SIGKILL);
    const int rc = wait_exit(pid);
    // Killed, or (late moments) already done: either way the folder is one whole run.
    const std::string m = slurp(dir_ / "out/manifest.json");
    if (m == m1) {
      for (const auto& [f, content] : before) EXPECT_EQ(slurp(f), content) << "moment " << k << f;
    } else {
      // Killed after the swap, or done: the new folder is whole.
      const auto nm = nlohmann::json::parse(m);
      for (const auto& f : nm["files"])
        EXPECT_TRUE(fs::exists(fs::path(dir_ / "out") / f.get<std::string>()))
            << "moment " << k << f;
      break;  // the second configuration is in place: later kills would test nothing new
    }
    EXPECT_EQ(rc, 128 + SIGKILL) << "moment " << k;
  }
  // The next run succeeds and equals the uninterrupted one.
  const pid_t pid = spawn({kBin, "--log-level", "off", "run", q});
  EXPECT_EQ(wait_exit(pid), 0);
  expect_same_results(dir_ / "out", dir_ / "ref");
  for (const auto& e : fs::directory_iterator(dir_.path()))
    EXPECT_EQ(e.path().filename().string().find("staging"), std::string::npos);
}

TEST_F(Run, TwoConcurrentRunsOneRunsTheOtherExitsLocked) {
  const std::string p = write_pipeline("out");
  const pid_t a = spawn({kBin, "--log-level", "off", "run", "--force", p});
  // Wait until the first holds the lock (its staging folder appears).
  bool started = false;
  for (int i = 0; i < 2000 && !started; ++i) {
    for (const auto& e : fs::directory_iterator(dir_.path()))
      started |= e.path().filename().string().find(".out.staging-") == 0;
    if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(started);
  const pid_t b = spawn({kBin, "--log-level", "off", "run", "--force", p});
  EXPECT_EQ(wait_exit(b), static_cast<int>(ExitCode::kLocked));
  EXPECT_EQ(wait_exit(a), 0);
  EXPECT_TRUE(fs::exists(dir_ / "out/manifest.json"));
}

}  // namespace
}  // namespace fw
