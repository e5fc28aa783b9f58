// A pipeline run split into 4 shards, phase by phase, then merged: every output equals the
// one-machine run's (rasters, CSV and GeoJSON byte for byte, GeoPackage layers and the history
// store feature for feature), patches crossing shard borders included; a failed shard makes the
// merge refuse and publish nothing, and rerunning it repairs the run; shards of another
// configuration or count, and a run folder another merge holds, are refused.
#include <gtest/gtest.h>
#include <ogrsf_frmts.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/raster_io.hpp"
#include "pipelines/run.hpp"
#include "pipelines/shards.hpp"
#include "pipelines/slurm.hpp"
#include "pipelines/synth.hpp"
#include "tests/pipelines/scene_util.hpp"
#include "tests/test_util.hpp"
#include "vectors/parcels.hpp"

namespace fw {
namespace {

namespace fs = std::filesystem;
using test::slurp;

constexpr int kShards = 4;
constexpr int kPhases = 8;  // one more than the passes the shards can take: a no-op phase

// Every layer of a vector file: per feature its id, fields (as text) and geometry (WKT).
// `skip` names fields left out (timestamps).
std::map<std::string, std::vector<std::string>> features(const std::string& path,
                                                         const std::vector<std::string>& skip) {
  DatasetPtr ds = open_vector(path);
  std::map<std::string, std::vector<std::string>> out;
  for (int i = 0; i < ds->GetLayerCount(); ++i) {
    OGRLayer* l = ds->GetLayer(i);
    auto& rows = out[l->GetName()];
    for (auto& f : *l) {
      std::string row = std::to_string(f->GetFID());
      for (int k = 0; k < f->GetFieldCount(); ++k) {
        const std::string name = f->GetFieldDefnRef(k)->GetNameRef();
        if (std::find(skip.begin(), skip.end(), name) != skip.end()) continue;
        row += "|" + name + "=" + (f->IsFieldSetAndNotNull(k) ? f->GetFieldAsString(k) : "null");
      }
      if (const OGRGeometry* g = f->GetGeometryRef()) {
        char* wkt = nullptr;
        g->exportToWkt(&wkt);
        row += "|" + std::string(wkt);
        CPLFree(wkt);
      }
      // fw_meta's creation time is a row of its own.
      if (row.find("=created|") != std::string::npos) continue;
      rows.push_back(row);
    }
  }
  return out;
}

class ShardedRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scene_ = new test::TempDir();
    synth::Options o;
    o.out = *scene_ / "scene";
    o.width = o.height = 1100;  // 3 x 3 windows of 512: shards of 2 or 3 windows
    o.parcels = 160;
    o.seed = 5;
    synth::generate(o);
    // Planted changes across the shard borders: bright roofs on clear ground at date 2, 24 x 24
    // pixels centred on a vertical window edge (512 pixels), a horizontal one and a corner of
    // four windows, and a road 12 pixels wide down the whole scene, across every band of rows
    // the shards' patch passes take.
    for (const Window& w : kPlanted) {
      // Crops at date 1, a roof at date 2 (DN of B2, B3, B4, B8, B11, B12).
      const std::vector<uint16_t> crop = {1400, 1700, 1500, 4500, 2800, 1900};
      const std::vector<uint16_t> roof = {3600, 3800, 4000, 4200, 4800, 4500};
      for (const auto& [file, dn] :
           {std::pair{"/date1.tif", crop}, std::pair{"/date2.tif", roof}}) {
        DatasetPtr d = open_raster(o.out + file, true);
        for (int b = 1; b <= 6; ++b) {
          std::vector<uint16_t> v(static_cast<std::size_t>(w.pixels()),
                                  dn[static_cast<std::size_t>(b - 1)]);
          write_window(*d, b, w, v);
        }
      }
      for (const char* scl : {"/date1_scl.tif", "/date2_scl.tif"}) {
        DatasetPtr m = open_raster(o.out + scl, true);  // 20 m
        const Window w20{w.x / 2, w.y / 2, w.w / 2, w.h / 2};
        std::vector<uint8_t> v(static_cast<std::size_t>(w20.pixels()), 4);  // vegetation: valid
        write_window(*m, 1, w20, v);
      }
    }
  }
  static constexpr std::array<Window, 4> kPlanted{
      {{500, 248, 24, 24}, {818, 500, 24, 24}, {500, 500, 24, 24}, {300, 2, 12, 1096}}};
  static void TearDownTestSuite() {
    delete scene_;
    scene_ = nullptr;
  }

  void SetUp() override {
    const std::string s = *scene_ / "scene";
    std::ofstream(pipeline_) << "inputs:\n  before:\n    files: [" << s
                             << "/date1.tif]\n    mask: " << s
                             << "/date1_scl.tif\n  after:\n    files: [" << s
                             << "/date2.tif]\n    mask: " << s
                             << "/date2_scl.tif\n    date: 2024-09-01\n  parcels:\n    file: " << s
                             << "/parcels.gpkg\noutputs:\n  dir: " << dir_ / "out"
                             << "\nhistory:\n  store: " << dir_ / "history.gpkg"
                             << "\n";
    ro_.scheduler.memory_mib = 8;  // windows of one 512 x 512 tile
  }

  pipelines::Config config(const std::vector<std::string>& sets = {}) const {
    return pipelines::load_pipeline(pipeline_, sets);
  }
  void shard(int i, int phase, const std::vector<std::string>& sets = {}) {
    pipelines::run_shard(config(sets), ro_, {i, kShards}, phase, run_dir_);
  }
  void all_shards(int phases = kPhases, const std::vector<std::string>& sets = {}) {
    for (int k = 1; k <= phases; ++k)
      for (int i = 0; i < kShards; ++i) shard(i, k, sets);
  }
  pipelines::RunReport merge(int shards = kShards, const std::vector<std::string>& sets = {}) {
    pipelines::RunOptions ro = ro_;
    ro.merge_dir = run_dir_;
    ro.shards = shards;
    return pipelines::run_pipeline(config(sets), ro);
  }
  template <class F>
  static std::string refusal(F&& f, ExitCode code = ExitCode::kInput) {
    try {
      f();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.message();
      return e.message();
    }
    ADD_FAILURE() << "expected a refusal";
    return "";
  }

  static inline test::TempDir* scene_ = nullptr;
  test::TempDir dir_;
  std::string pipeline_ = dir_ / "p.yaml";
  std::string run_dir_ = dir_ / "run";
  pipelines::RunOptions ro_;
};

TEST_F(ShardedRun, FourShardsThenMergeEqualOneMachine) {
  // The one-machine run, moved aside with its history store.
  const auto one = pipelines::run_pipeline(config(), ro_);
  fs::rename(dir_ / "out", dir_ / "one");
  fs::rename(dir_ / "history.gpkg", dir_ / "history-one.gpkg");

  all_shards();
  // What each phase computed: the raster passes up to the patches, then nothing.
  std::vector<std::string> passes;
  for (int k = 1; k <= kPhases; ++k) {
    const auto m = nlohmann::json::parse(
        slurp(pipelines::shard_folder(run_dir_, 0, "phase-" + std::to_string(k)) + "/shard.json"));
    passes.push_back(m.value("computed", false) ? m.value("pass", "") : "-");
  }
  EXPECT_EQ(passes, (std::vector<std::string>{"indices before (inputs.before)",
                                              "indices after (inputs.after)", "change statistics",
                                              "change classes", "sub-pixel change cover",
                                              "patch cells", "zonal statistics", "-"}));

  // Every phase's shards did contiguous, non-empty runs of its plan's windows, covering it.
  for (int k = 1; k <= 7; ++k) {
    std::size_t next = 0, of = 0;
    for (int i = 0; i < kShards; ++i) {
      const auto m = nlohmann::json::parse(slurp(
          pipelines::shard_folder(run_dir_, i, "phase-" + std::to_string(k)) + "/shard.json"));
      const auto& w = m.at("windows");
      EXPECT_EQ(w.at("first").get<std::size_t>(), next) << "phase " << k << ", shard " << i;
      EXPECT_GE(w.at("count").get<std::size_t>(), 1u) << "phase " << k << ", shard " << i;
      next += w.at("count").get<std::size_t>();
      of = w.at("of").get<std::size_t>();
    }
    EXPECT_EQ(next, of) << "phase " << k;
    EXPECT_GE(of, 9u);
  }

  // The phases farmwatch slurm submits for this pipeline are those the shards computed.
  EXPECT_EQ(pipelines::shard_phases(config()), 7);
  EXPECT_EQ(pipelines::shard_phases(config({"steps.change.cover=false"})), 6);
  EXPECT_EQ(pipelines::shard_phases(config({"steps.ecology.enabled=true"})), 10);

  const auto merged = merge();
  EXPECT_EQ(merged.manifest["sharded"]["phases"], 7);
  // The road crosses the three borders between the shards' bands of rows: four fragments joined.
  EXPECT_GE(merged.manifest["sharded"]["patch_fragments_joined"].get<int>(), 3);
  EXPECT_EQ(merged.manifest["run_key"], one.manifest["run_key"]);
  ASSERT_EQ(merged.files, one.files);
  int compared = 0;
  for (const auto& f : one.files) {
    const std::string a = dir_ / ("one/" + f), b = dir_ / ("out/" + f);
    if (f == "manifest.json") continue;  // times differ
    if (f == "farmwatch.gpkg") {
      EXPECT_EQ(features(a, {}), features(b, {})) << f;
    } else {
      EXPECT_TRUE(slurp(a) == slurp(b)) << f << " differs from the one-machine run's";
    }
    ++compared;
  }
  EXPECT_GE(compared, 20);
  EXPECT_EQ(features(dir_ / "history-one.gpkg", {"finished"}),
            features(dir_ / "history.gpkg", {"finished"}));

  // The planted changes across shard borders: one patch each, spanning the border.
  DatasetPtr cls = open_raster(dir_ / "out/change_class.tif");
  double gt[6];
  cls->GetGeoTransform(gt);
  DatasetPtr patches = open_vector(dir_ / "out/patches.geojson");
  for (const Window& w : kPlanted) {
    int found = 0;
    const std::string at = std::to_string(w.x) + "," + std::to_string(w.y);
    for (auto& f : *patches->GetLayer(0)) {
      // The patch's box in the grid's CRS is in its fields (the geometry is longitude/latitude).
      const double x0 = (f->GetFieldAsDouble("xmin") - gt[0]) / gt[1];
      const double x1 = (f->GetFieldAsDouble("xmax") - gt[0]) / gt[1];
      const double y0 = (f->GetFieldAsDouble("ymax") - gt[3]) / gt[5];
      const double y1 = (f->GetFieldAsDouble("ymin") - gt[3]) / gt[5];
      if (x1 <= w.x || x0 >= w.x + w.w || y1 <= w.y || y0 >= w.y + w.h) continue;
      ++found;
      EXPECT_STREQ(f->GetFieldAsString("category"), "construction") << at;
      EXPECT_LE(x0, w.x + 2) << at;
      EXPECT_GE(x1, w.x + w.w - 2) << at;
      EXPECT_LE(y0, w.y + 2) << at;
      EXPECT_GE(y1, w.y + w.h - 2) << at;
      const double truth = static_cast<double>(w.pixels()) * 100.0;
      EXPECT_NEAR(f->GetFieldAsDouble("area_m2"), truth, truth * 0.1) << at;
    }
    EXPECT_EQ(found, 1) << "planted change at pixel " << at;
  }
}

TEST_F(ShardedRun, EcologyAndZonesAreShardedToo) {
  // FVC, RSEI (scene-wide moments, NDVI percentiles, the PC1 range, the mixed-pixel rims across
  // windows) and the zone statistics, on 2 shards: the one-machine outputs.
  const std::vector<std::string> zones = {"inputs.zones.file=" +
                                          std::string(*scene_ / "scene/zones.geojson")};
  const auto one = pipelines::run_pipeline(config(zones), ro_);
  fs::rename(dir_ / "out", dir_ / "one");
  fs::remove(dir_ / "history.gpkg");
  const int phases = pipelines::shard_phases(config(zones));
  EXPECT_EQ(phases, 11);
  std::vector<std::string> passes;
  for (int k = 1; k <= phases; ++k) {
    for (int i = 0; i < 2; ++i) pipelines::run_shard(config(zones), ro_, {i, 2}, k, run_dir_);
    const auto m = nlohmann::json::parse(
        slurp(pipelines::shard_folder(run_dir_, 0, "phase-" + std::to_string(k)) + "/shard.json"));
    passes.push_back(m.value("computed", false) ? m.value("pass", "") : "-");
  }
  EXPECT_EQ(passes[5], "ecology");
  EXPECT_EQ(passes[6], "ecology (scores)");
  EXPECT_EQ(passes[7], "ecology (outputs)");
  EXPECT_EQ(std::count(passes.begin(), passes.end(), "-"), 0) << ::testing::PrintToString(passes);
  pipelines::RunOptions ro = ro_;
  ro.merge_dir = run_dir_;
  ro.shards = 2;
  const auto merged = pipelines::run_pipeline(config(zones), ro);
  EXPECT_EQ(merged.manifest["sharded"]["phases"], phases);
  ASSERT_EQ(merged.files, one.files);
  for (const auto& f : one.files) {
    if (f == "manifest.json") continue;
    const std::string a = dir_ / ("one/" + f), b = dir_ / ("out/" + f);
    if (f.size() > 5 && f.substr(f.size() - 5) == ".gpkg") {
      EXPECT_EQ(features(a, {}), features(b, {})) << f;
    } else {
      EXPECT_TRUE(slurp(a) == slurp(b)) << f << " differs from the one-machine run's";
    }
  }
  EXPECT_TRUE(std::find(one.files.begin(), one.files.end(), "rsei_grade_change.tif") !=
              one.files.end());
}

TEST_F(ShardedRun, FailedShardIsRefusedThenRepairedByARerun) {
  const auto one = pipelines::run_pipeline(config(), ro_);
  fs::rename(dir_ / "out", dir_ / "one");
  fs::remove(dir_ / "history.gpkg");
  all_shards(4);  // the merge computes the passes after the fourth
  // Shard 2 of phase 4 reruns after its phase-3 results were lost: it fails, and says so.
  fs::remove(pipelines::shard_folder(run_dir_, 2, "phase-3") + "/pass.part");
  EXPECT_THROW(shard(2, 4), Error);
  const auto m =
      nlohmann::json::parse(slurp(pipelines::shard_folder(run_dir_, 2, "phase-4") + "/shard.json"));
  EXPECT_EQ(m.value("status", ""), "failed");
  EXPECT_NE(m.value("error", "").find("pass.part"), std::string::npos) << m.dump();

  // The merge refuses and publishes nothing (no output folder, no history).
  const std::string why = refusal([&] { merge(); });
  EXPECT_NE(why.find("shard 2"), std::string::npos) << why;
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  EXPECT_FALSE(fs::exists(dir_ / "history.gpkg"));

  // Rerun the shard's phases 3 and 4, then merge: the one-machine outputs.
  shard(2, 3);
  shard(2, 4);
  const auto merged = merge();
  for (const char* f : {"change_class.tif", "change_cover.tif", "parcels.csv", "patches.geojson",
                        "indices/after/ndvi.tif", "change_stats.json"}) {
    EXPECT_TRUE(slurp(dir_ / (std::string("one/") + f)) == slurp(dir_ / (std::string("out/") + f)))
        << f;
  }
}

TEST_F(ShardedRun, ForeignMiscountedAndLockedAreRefused) {
  all_shards(2);
  // Another configuration: its run key differs from the shards'.
  std::string why = refusal([&] { merge(kShards, {"steps.change.mad_k=3.5"}); });
  EXPECT_NE(why.find("other inputs or another configuration"), std::string::npos) << why;
  // Another shard count.
  why = refusal([&] { merge(3); });
  EXPECT_NE(why.find("shard count does not match"), std::string::npos) << why;
  why = refusal([&] { merge(5); });
  EXPECT_NE(why.find("shard count does not match"), std::string::npos) << why;
  // A shard of another configuration cannot use the others' results, and says so.
  why = refusal([&] { shard(1, 2, {"steps.change.mad_k=3.5"}); });
  EXPECT_NE(why.find("partial results of another run"), std::string::npos) << why;
  why = refusal([&] { merge(); });
  EXPECT_NE(why.find("shard 1 (phase-2) failed"), std::string::npos) << why;
  shard(1, 2);
  // Another merge holds the run folder.
  {
    pipelines::RunLock other(run_dir_);
    why = refusal([&] { merge(); }, ExitCode::kLocked);
    EXPECT_NE(why.find("another farmwatch run"), std::string::npos) << why;
  }
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  EXPECT_NO_THROW(merge());
  EXPECT_TRUE(fs::exists(dir_ / "out/change_class.tif"));
  // An input rewritten after the shards ran (shards know inputs by path, size and time).
  const fs::path date2 = *scene_ / "scene/date2.tif";
  fs::last_write_time(date2, fs::last_write_time(date2) + std::chrono::seconds(5));
  why = refusal([&] { merge(kShards, {}); });
  EXPECT_NE(why.find("other inputs or another configuration"), std::string::npos) << why;
}

TEST_F(ShardedRun, WindowsWeighValidPixelsAndParcels) {
  // The weights against an independent count: parcel box centres read with OGR, valid pixels
  // from both dates' SCL read whole at 20 m (a cloud planted over a corner of date 2).
  const std::string scene = *scene_ / "scene";
  fs::copy_file(scene + "/date2_scl.tif", dir_ / "scl2.tif");
  {
    DatasetPtr m = open_raster(dir_ / "scl2.tif", true);
    std::vector<uint8_t> cloud(300 * 200, 9);
    write_window(*m, 1, Window{0, 0, 300, 200}, cloud);
  }
  auto date = [&](const std::string& file, const std::string& scl) {
    rasters::ImageryOptions o;
    o.files = {file};
    o.mask.file = scl;
    o.mask.type = rasters::MaskType::kScl;
    return rasters::Imagery::open(o);
  };
  const auto d1 = date(scene + "/date1.tif", scene + "/date1_scl.tif");
  const auto d2 = date(scene + "/date2.tif", dir_ / "scl2.tif");
  const Grid scene_grid = d1.grid();
  ASSERT_EQ(scene_grid.width(), 1100);
  vectors::ParcelOptions po;
  po.file = scene + "/parcels.gpkg";
  po.land_class_optional = true;
  const auto parcels = vectors::load_parcels(po, scene_grid);
  const auto weigh = pipelines::shard_weights(
      parcels, scene_grid,
      std::make_shared<rasters::ValidSamples>(rasters::sample_valid({&d1, &d2}, scene_grid)));
  const auto& gt = scene_grid.transform().c;
  DatasetPtr v = open_vector(scene + "/parcels.gpkg");
  std::vector<std::pair<double, double>> centres;
  for (auto& f : *v->GetLayer(0)) {
    OGREnvelope e;
    f->GetGeometryRef()->getEnvelope(&e);
    centres.emplace_back((0.5 * (e.MinX + e.MaxX) - gt[0]) / gt[1],
                         (0.5 * (e.MinY + e.MaxY) - gt[3]) / gt[5]);
  }
  // SCL classes 0, 1, 3, 8, 9 and 10 are masked; a 20 m cell is four 10 m pixels.
  std::vector<uint8_t> s1, s2;
  DatasetPtr m1 = open_raster(scene + "/date1_scl.tif"), m2 = open_raster(dir_ / "scl2.tif");
  read_window(*m1, 1, Window{0, 0, 550, 550}, s1, uint8_t{0});
  read_window(*m2, 1, Window{0, 0, 550, 550}, s2, uint8_t{0});
  auto ok = [](uint8_t c) { return c != 0 && c != 1 && c != 3 && c != 8 && c != 9 && c != 10; };
  int64_t total = 0, clouded = 0;
  for (int64_t y = 0; y < 1100; y += 512) {
    for (int64_t x = 0; x < 1100; x += 512) {
      const Window w{x, y, std::min<int64_t>(512, 1100 - x), std::min<int64_t>(512, 1100 - y)};
      int64_t n = 0, valid = 0;
      for (const auto& [cx, cy] : centres)
        n += cx >= static_cast<double>(w.x) && cx < static_cast<double>(w.x + w.w) &&
             cy >= static_cast<double>(w.y) && cy < static_cast<double>(w.y + w.h);
      for (int64_t r = w.y / 2; r < (w.y + w.h) / 2; ++r)
        for (int64_t c = w.x / 2; c < (w.x + w.w) / 2; ++c) {
          const auto k = static_cast<std::size_t>(r * 550 + c);
          valid += 4 * (ok(s1[k]) && ok(s2[k]));
        }
      EXPECT_EQ(weigh(w), valid + (w.pixels() - valid) / 4 + 10000 * n) << w.x << "," << w.y;
      total += n;
      clouded += w.pixels() - valid;
    }
  }
  EXPECT_EQ(total, static_cast<int64_t>(centres.size()));
  EXPECT_GT(total, 100);
  EXPECT_GE(clouded, 4 * 300 * 200);  // the planted cloud at least
  // Without masks, every pixel counts.
  const auto plain = pipelines::shard_weights(parcels, scene_grid);
  EXPECT_EQ(plain(Window{600, 600, 10, 10}) % 10000, 100);
}

TEST(SlurmScripts, OneArrayPerPhaseThenTheMerge) {
  pipelines::SlurmJob j;
  j.pipeline = "/data/my runs/p.yaml";
  j.sets = {"steps.patches.mmu=2mu"};
  j.run_dir = "/data/run";
  j.farmwatch = "/opt/fw/bin/farmwatch";
  j.shards = 16;
  j.phases = 3;
  j.memory_mib = 512;
  j.partition = "normal";
  j.cpus_per_task = 8;
  const auto scripts = pipelines::slurm_scripts(j);
  ASSERT_EQ(scripts.size(), 4u);
  for (int k = 1; k <= 3; ++k) {
    const std::string& t = scripts[static_cast<std::size_t>(k - 1)].text;
    EXPECT_EQ(scripts[static_cast<std::size_t>(k - 1)].name,
              "phase-" + std::to_string(k) + ".sbatch");
    EXPECT_NE(t.find("#SBATCH --array=0-15\n"), std::string::npos) << t;
    EXPECT_NE(t.find("#SBATCH --partition=normal\n"), std::string::npos) << t;
    EXPECT_NE(t.find("#SBATCH --cpus-per-task=8\n"), std::string::npos) << t;
    EXPECT_NE(t.find("#SBATCH --output=/data/run/slurm/phase-" + std::to_string(k) + "-%a.out"),
              std::string::npos)
        << t;
    EXPECT_NE(t.find("exec /opt/fw/bin/farmwatch --threads \"${SLURM_CPUS_PER_TASK:-8}\" --memory "
                     "512 run '/data/my runs/p.yaml' --set steps.patches.mmu=2mu --shard "
                     "\"$SLURM_ARRAY_TASK_ID/16\" --phase " +
                     std::to_string(k) + " --run-dir /data/run\n"),
              std::string::npos)
        << t;
    EXPECT_EQ(t.find("--time"), std::string::npos);
  }
  const std::string& m = scripts[3].text;
  EXPECT_EQ(scripts[3].name, "merge.sbatch");
  EXPECT_EQ(m.find("--array"), std::string::npos);
  EXPECT_NE(m.find(" merge '/data/my runs/p.yaml' --set steps.patches.mmu=2mu --run-dir /data/run "
                   "--shards 16\n"),
            std::string::npos)
      << m;
  EXPECT_EQ(pipelines::shell_quote("it's"), "'it'\\''s'");
  j.shards = 0;
  EXPECT_THROW(pipelines::slurm_scripts(j), Error);
}

}  // namespace
}  // namespace fw
