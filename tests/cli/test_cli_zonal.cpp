// `farmwatch zonal` and `farmwatch indicators` end to end on a small synth scene: outputs in
// every format, RFC 7946 GeoJSON, encroachment against the planted truth, and bad input.
#include <gtest/gtest.h>
#include <ogrsf_frmts.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/atomic_file.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/raster_io.hpp"
#include "pipelines/synth.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

const std::string kBin = FW_BINARY;

class CliZonal : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    synth::Options o;
    o.out = dir_->path();
    o.width = o.height = 512;
    o.parcels = 120;
    o.seed = 21;
    synth::generate(o);
    const std::string d = dir_->path();
    for (int k = 1; k <= 2; ++k) {
      const std::string s = std::to_string(k);
      ASSERT_EQ(test::run(kBin + " --log-level warn indices --input " + d + "/date" + s +
                          ".tif --mask " + d + "/date" + s +
                          "_scl.tif --mask-type scl --index ndvi --out " + d + "/ndvi" + s),
                0);
    }
    ASSERT_EQ(
        test::run(kBin + " --log-level warn change --before " + d + "/date1.tif --after " + d +
                  "/date2.tif --mask-before " + d + "/date1_scl.tif --mask-after " + d +
                  "/date2_scl.tif --mask-type scl --mask-buffer 2 --cover --out " + d + "/change"),
        0);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string d(const std::string& name) { return *dir_ / name; }
  static test::TempDir* dir_;
};
test::TempDir* CliZonal::dir_ = nullptr;

TEST_F(CliZonal, WritesCsvGeoJsonAndGeoPackage) {
  for (const std::string ext : {"csv", "geojson", "gpkg"}) {
    std::string out;
    const int rc =
        test::run(kBin + " --log-level warn zonal --raster " + d("ndvi1/ndvi.tif") + " --raster " +
                      d("change/change_class.tif") + " --parcels " + d("parcels.gpkg") +
                      " --stats count,mean,p50,majority --out " + d("zonal." + ext),
                  &out);
    ASSERT_EQ(rc, 0) << out;
    EXPECT_TRUE(test::contains(out, "120 parcels of 120 features")) << out;
  }
  // CSV: a header with the id, the pass-through attributes and <raster>_<stat> columns.
  const std::string csv = read_file(d("zonal.csv"));
  const std::string header = csv.substr(0, csv.find('\n'));
  for (const char* c :
       {"parcel_id", "township", "ndvi_count", "ndvi_mean", "ndvi_p50", "change_class_majority"}) {
    EXPECT_TRUE(test::contains(header, c)) << c << " in " << header;
  }
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 121);
  // GeoJSON: RFC 7946, longitude/latitude in WGS 84.
  const auto j = nlohmann::json::parse(read_file(d("zonal.geojson")));
  ASSERT_EQ(j["features"].size(), 120u);
  const auto& geom = j["features"][0]["geometry"];
  const bool multi = geom["type"] == "MultiPolygon";
  EXPECT_TRUE(multi || geom["type"] == "Polygon");
  const auto& pt = multi ? geom["coordinates"][0][0][0] : geom["coordinates"][0][0];
  // The same vertex of the same parcel in the source (UTM 50N), transformed here with PROJ.
  DatasetPtr src = open_vector(d("parcels.gpkg"));
  FeaturePtr first(src->GetLayer(0)->GetNextFeature());
  OGRGeometry* sg = first->GetGeometryRef();
  const OGRPolygon* poly = wkbFlatten(sg->getGeometryType()) == wkbMultiPolygon
                               ? sg->toMultiPolygon()->getGeometryRef(0)
                               : sg->toPolygon();
  double x = poly->getExteriorRing()->getX(0), y = poly->getExteriorRing()->getY(0);
  CoordTransform(Crs::from_epsg(32650), Crs::from_epsg(4326)).transform(x, y);
  EXPECT_NEAR(pt[0].get<double>(), x, 1e-6);
  EXPECT_NEAR(pt[1].get<double>(), y, 1e-6);
  EXPECT_FALSE(j.contains("crs"));  // RFC 7946 has no crs member
  // GeoPackage: the analysis CRS.
  DatasetPtr g = open_vector(d("zonal.gpkg"));
  EXPECT_EQ(Crs::from_ogr(g->GetLayer(0)->GetSpatialRef()).epsg(), 32650);
  EXPECT_EQ(g->GetLayer(0)->GetFeatureCount(), 120);
}

// Sharded: three shards, then the merge, write the one-machine CSV byte for byte; a missing or
// failed shard, another shard count and other inputs are refused with exit 3, naming the shard;
// rerunning the missing shard lets the merge finish with the same file.
TEST_F(CliZonal, ShardsThenMergeWriteTheOneMachineFile) {
  const std::string common = " --memory 8 zonal --raster " + d("ndvi1/ndvi.tif") + " --raster " +
                             d("change/change_class.tif") + " --parcels " + d("parcels.gpkg") +
                             " --stats count,mean,stdev,p10,median,p90,majority,frac";
  const std::string run = d("zrun");
  std::string out;
  ASSERT_EQ(test::run(kBin + " --log-level warn" + common + " --out " + d("zone_one.csv"), &out), 0)
      << out;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(test::run(kBin + " --log-level warn" + common + " --shard " + std::to_string(i) +
                            "/3 --run-dir " + run,
                        &out),
              0)
        << out;
  }
  auto merge = [&](const std::string& target, const std::string& extra) {
    return test::run(
        kBin + " --log-level warn" + common + " --merge " + run + " --out " + target + extra, &out);
  };
  ASSERT_EQ(merge(d("zone_merged.csv"), " --shards 3"), 0) << out;
  EXPECT_EQ(read_file(d("zone_merged.csv")), read_file(d("zone_one.csv")));
  // Another shard count.
  EXPECT_EQ(merge(d("zone_bad.csv"), " --shards 4"), 3) << out;
  EXPECT_TRUE(test::contains(out, "belongs to a run of 3 shards, not 4")) << out;
  EXPECT_EQ(merge(d("zone_bad.csv"), " --shards 2"), 3) << out;
  EXPECT_TRUE(test::contains(out, "does not match")) << out;
  // A missing shard, then rerun.
  std::filesystem::remove_all(run + "/shards/1");
  EXPECT_EQ(merge(d("zone_bad.csv"), " --shards 3"), 3) << out;
  EXPECT_TRUE(test::contains(out, "shard 1 of 3 is missing")) << out;
  EXPECT_FALSE(std::filesystem::exists(d("zone_bad.csv")));
  ASSERT_EQ(test::run(kBin + " --log-level warn" + common + " --shard 1/3 --run-dir " + run, &out),
            0)
      << out;
  ASSERT_EQ(merge(d("zone_merged2.csv"), " --shards 3"), 0) << out;
  EXPECT_EQ(read_file(d("zone_merged2.csv")), read_file(d("zone_one.csv")));
  // Other inputs: the merge of the same run folder with another statistic list.
  EXPECT_EQ(test::run(kBin + " --log-level warn" + common + ",max --merge " + run +
                          " --shards 3 --out " + d("zone_bad.csv"),
                      &out),
            3)
      << out;
  EXPECT_TRUE(test::contains(out, "other inputs or another configuration")) << out;
}

TEST_F(CliZonal, IndicatorsFindThePlantedEncroachment) {
  std::string out;
  const std::string base = kBin + " --log-level warn indicators --parcels " + d("parcels.gpkg") +
                           " --ndvi-before " + d("ndvi1/ndvi.tif") + " --ndvi-after " +
                           d("ndvi2/ndvi.tif") + " --change-class " + d("change/change_class.tif");
  ASSERT_EQ(test::run(base + " --change-cover " + d("change/change_cover.tif") + " --out " +
                          d("ind.gpkg") + " --summary " + d("summary.csv"),
                      &out),
            0)
      << out;
  // The same from whole classified pixels.
  ASSERT_EQ(test::run(base + " --out " + d("ind_hard.gpkg"), &out), 0) << out;
  // Truth per parcel: the planted construction, bare-soil and new-water area inside it.
  const auto truth = nlohmann::json::parse(read_file(d("truth.json")));
  std::map<std::string, double> want;
  std::set<std::string> planted, cloudy;
  DatasetPtr pv = open_vector(d("parcels.gpkg"));
  std::map<std::string, GeometryPtr> geoms;
  for (auto& f : *pv->GetLayer(0)) {
    geoms[f->GetFieldAsString("parcel_id")] = GeometryPtr(f->GetGeometryRef()->clone());
  }
  for (const auto& c : truth["changes"]) {
    for (const auto& p : c["parcels"]) {
      planted.insert(p.get<std::string>());
      if (c["cloud_fraction"].get<double>() > 0) cloudy.insert(p.get<std::string>());
    }
    const std::string cat = c["category"];
    if (cat != "construction" && cat != "bare_soil" && cat != "water_gain") continue;
    OGRGeometry* g = nullptr;
    const std::string wkt = c["wkt"];
    OGRGeometryFactory::createFromWkt(wkt.c_str(), nullptr, &g);
    GeometryPtr owned(g);
    for (const auto& p : c["parcels"]) {
      const std::string id = p;
      GeometryPtr inter(owned->Intersection(geoms[id].get()));
      want[id] += inter ? OGR_G_Area(OGRGeometry::ToHandle(inter.get())) : 0.0;
    }
  }
  std::map<std::string, double> hard;
  DatasetPtr ih = open_vector(d("ind_hard.gpkg"));
  for (auto& f : *ih->GetLayer(0))
    hard[f->GetFieldAsString("parcel_id")] = f->GetFieldAsDouble("encroach_area_m2");
  DatasetPtr ind = open_vector(d("ind.gpkg"));
  int checked = 0, clean = 0;
  double worst = 0, worst_hard = 0;
  for (auto& f : *ind->GetLayer(0)) {
    const std::string id = f->GetFieldAsString("parcel_id");
    const double got = f->GetFieldAsDouble("encroach_area_m2");
    const std::string alert = f->GetFieldAsString("alert_level");
    EXPECT_TRUE(alert == "none" || alert == "watch" || alert == "warning" || alert == "alarm");
    if (want[id] >= 10000.0 / 15.0 && !cloudy.count(id)) {
      // Issue 5: planted encroachment of 1 mu or more is measured within 10 % (sub-pixel
      // cover; whole pixels are off by up to 60 % on patches of a few pixels).
      EXPECT_NEAR(got, want[id], 0.10 * want[id]) << id;
      worst = std::max(worst, std::abs(got - want[id]) / want[id]);
      worst_hard = std::max(worst_hard, std::abs(hard[id] - want[id]) / want[id]);
      EXPECT_NE(alert, "none") << id;
      ++checked;
    } else if (!planted.count(id)) {
      // No planted change: at most one pixel's area.
      EXPECT_LE(got, 100.0 + 1e-6) << id;
      EXPECT_LE(hard[id], 100.0 + 1e-6) << id;
      ++clean;
    }
  }
  EXPECT_GE(checked, 5);
  EXPECT_GT(clean, 50);
  // The cover is what makes the difference: whole pixels miss the 10 % somewhere.
  EXPECT_GT(worst_hard, 0.10);
  std::printf("encroachment: %d parcels, worst error %.1f %% (whole pixels %.1f %%)\n", checked,
              100 * worst, 100 * worst_hard);
  // The summary has one line per village and one per township.
  const std::string sum = read_file(d("summary.csv"));
  EXPECT_TRUE(test::contains(sum, "township,village,parcels")) << sum;
  EXPECT_TRUE(test::contains(sum, "\"*\"")) << sum;
}

TEST_F(CliZonal, PatchesOnTheSynthScene) {
  std::string out;
  ASSERT_EQ(
      test::run(kBin + " --log-level warn patches --change-class " + d("change/change_class.tif") +
                    " --before " + d("date1.tif") + " --after " + d("date2.tif") + " --parcels " +
                    d("parcels.gpkg") + " --zones " + d("zones.geojson") + " --index-before " +
                    d("ndvi1/ndvi.tif") + " --index-after " + d("ndvi2/ndvi.tif") + " --out " +
                    d("patches"),
                &out),
      0)
      << out;
  const auto truth = nlohmann::json::parse(read_file(d("truth.json")));
  DatasetPtr pv = open_vector(d("patches/patches.gpkg"));
  struct P {
    std::string id, category, priority, chips;
    double area, pixel_area;
    GeometryPtr g;
  };
  std::vector<P> patches;
  for (auto& f : *pv->GetLayer(0)) {
    patches.push_back({f->GetFieldAsString("patch_id"), f->GetFieldAsString("category"),
                       f->GetFieldAsString("priority"), f->GetFieldAsString("chips"),
                       f->GetFieldAsDouble("area_m2"), f->GetFieldAsDouble("pixel_area_m2"),
                       GeometryPtr(f->GetGeometryRef()->clone())});
  }
  ASSERT_GT(patches.size(), 5u);
  int planted = 0, one = 0, within = 0;
  for (const auto& c : truth["changes"]) {
    if (c["area_m2"].get<double>() < 400 || c["cloud_fraction"].get<double>() > 0) continue;
    OGRGeometry* g = nullptr;
    const std::string wkt = c["wkt"];
    OGRGeometryFactory::createFromWkt(wkt.c_str(), nullptr, &g);
    GeometryPtr owned(g);
    ++planted;
    std::vector<const P*> hits;
    for (const auto& p : patches)
      if (p.category == c["category"] && p.g->Intersects(owned.get())) hits.push_back(&p);
    if (hits.size() != 1) continue;
    ++one;
    within +=
        std::abs(hits[0]->area - c["area_m2"].get<double>()) <= 0.1 * c["area_m2"].get<double>();
  }
  // On this scene every planted change of 400 m2 or more is one patch within 10 % of its area
  // (15 of 15); on larger scenes not all are (docs/patches.md).
  EXPECT_GE(planted, 8);
  EXPECT_EQ(one, planted);
  EXPECT_EQ(within, planted);
  for (const auto& p : patches) {
    EXPECT_GE(p.pixel_area, 400.0 - 1e-6) << p.id;  // no polygon below the unit
    EXPECT_GE(p.area, 200.0) << p.id;               // sub-pixel: at least half of it
    EXPECT_EQ(p.chips.empty(), p.priority == "P3") << p.id;
  }
  // No patch cell is masked (clouds and shadows are no data, never change).
  DatasetPtr cls = open_raster(d("change/change_class.tif"));
  const Grid g = Grid::of(*cls);
  std::vector<uint8_t> v;
  read_window(*cls, 1, g.full_window(), v);
  for (const auto& p : patches) {
    OGREnvelope e;
    p.g->getEnvelope(&e);
    const Window w = g.window_of({e.MinX, e.MinY, e.MaxX, e.MaxY});
    for (int64_t r = w.y; r < w.y_end(); ++r) {
      for (int64_t q = w.x; q < w.x_end(); ++q) {
        double x, y;
        g.transform().pixel_to_world(static_cast<double>(q) + 0.5, static_cast<double>(r) + 0.5, x,
                                     y);
        OGRPoint pt(x, y);
        if (p.g->Contains(&pt)) {
          EXPECT_NE(v[static_cast<std::size_t>(r * g.width() + q)], 255) << p.id;
        }
      }
    }
  }
  std::printf("patches: %d planted >= 400 m2, %d one patch, %d within 10 %%\n", planted, one,
              within);
}

TEST_F(CliZonal, BadInputExitsWithCode3AndWritesNothing) {
  const std::string base = kBin + " --log-level warn zonal --raster " + d("ndvi1/ndvi.tif");
  std::string out;
  EXPECT_EQ(test::run(base + " --parcels " + d("nope.gpkg") + " --out " + d("bad1.csv"), &out), 3);
  EXPECT_TRUE(test::contains(out, "nope.gpkg")) << out;
  EXPECT_EQ(
      test::run(base + " --parcels " + d("parcels.gpkg") + " --id-field BSM --out " + d("bad2.csv"),
                &out),
      3);
  EXPECT_TRUE(test::contains(out, "no id field 'BSM'")) << out;
  EXPECT_EQ(test::run(base + " --parcels " + d("parcels.gpkg") + " --stats mean,mode --out " +
                          d("bad3.csv"),
                      &out),
            2);
  EXPECT_TRUE(test::contains(out, "unknown statistic 'mode'")) << out;
  // Rasters on different grids.
  EXPECT_EQ(test::run(base + " --raster " + d("date1_scl.tif") + " --parcels " + d("parcels.gpkg") +
                          " --out " + d("bad4.csv"),
                      &out),
            3);
  EXPECT_TRUE(test::contains(out, "grid differs")) << out;
  for (const char* f : {"bad1.csv", "bad2.csv", "bad3.csv", "bad4.csv"}) {
    EXPECT_FALSE(std::filesystem::exists(d(f))) << f;
  }
}

}  // namespace
}  // namespace fw
