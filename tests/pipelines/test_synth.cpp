#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/atomic_file.hpp"
#include "engine/raster_io.hpp"
#include "pipelines/synth.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

using json = nlohmann::json;

synth::Result make_scene(const std::string& dir, int64_t w, int64_t h, int parcels, uint64_t seed,
                         int threads = 0) {
  synth::Options o;
  o.out = dir;
  o.width = w;
  o.height = h;
  o.parcels = parcels;
  o.seed = seed;
  SchedulerOptions so;
  so.threads = threads;
  return synth::generate(o, so);
}

TEST(Synth, SameSeedGivesByteIdenticalFilesForAnyThreadCount) {
  test::TempDir a, b;
  const auto ra = make_scene(a.path(), 300, 260, 40, 7, 1);
  make_scene(b.path(), 300, 260, 40, 7, 2);
  ASSERT_EQ(ra.files.size(), 8u);
  for (const auto& f : ra.files) {
    const std::string name = std::filesystem::path(f).filename();
    EXPECT_EQ(read_file(a / name), read_file(b / name)) << name << " differs";
  }
  test::TempDir c;
  make_scene(c.path(), 300, 260, 40, 8, 2);
  EXPECT_NE(read_file(a / "date1.tif"), read_file(c / "date1.tif"));
  EXPECT_NE(read_file(a / "truth.json"), read_file(c / "truth.json"));
}

TEST(Synth, RasterLayoutIsSentinel2L2A) {
  test::TempDir d;
  make_scene(d.path(), 333, 301, 30, 3);
  DatasetPtr ds = open_raster(d / "date1.tif");
  ASSERT_EQ(ds->GetRasterCount(), 6);
  const char* names[] = {"B2", "B3", "B4", "B8", "B11", "B12"};
  for (int b = 1; b <= 6; ++b) {
    GDALRasterBand* band = ds->GetRasterBand(b);
    EXPECT_STREQ(band->GetDescription(), names[b - 1]);
    EXPECT_EQ(band->GetRasterDataType(), GDT_UInt16);
    int has = 0;
    EXPECT_EQ(band->GetNoDataValue(&has), 0.0);
    EXPECT_TRUE(has);
  }
  const Grid g = Grid::of(*ds);
  EXPECT_EQ(g.width(), 333);
  EXPECT_EQ(g.height(), 301);
  EXPECT_DOUBLE_EQ(g.dx(), 10.0);
  EXPECT_EQ(g.crs().epsg(), 32650);
  DatasetPtr scl = open_raster(d / "date1_scl.tif");
  const Grid gs = Grid::of(*scl);
  EXPECT_EQ(gs.width(), 167);
  EXPECT_EQ(gs.height(), 151);
  EXPECT_DOUBLE_EQ(gs.dx(), 20.0);
  EXPECT_TRUE(g.compatible_with(
      Grid(GeoTransform::north_up(g.transform().c[0], g.transform().c[3], 10, 10), 1, 1, g.crs())));
}

std::map<int, int64_t> histogram(const std::string& path) {
  DatasetPtr ds = open_raster(path);
  std::vector<uint8_t> v;
  read_window(*ds, 1, Grid::of(*ds).full_window(), v);
  std::map<int, int64_t> h;
  for (uint8_t x : v) ++h[x];
  return h;
}

TEST(Synth, CloudsAndShadowsOnlyInDate2) {
  test::TempDir d;
  make_scene(d.path(), 512, 512, 60, 5);
  auto h1 = histogram(d / "date1_scl.tif");
  auto h2 = histogram(d / "date2_scl.tif");
  for (int code : {3, 8, 9, 10}) EXPECT_EQ(h1[code], 0) << "code " << code;
  EXPECT_GT(h2[3], 0);
  EXPECT_GT(h2[8] + h2[9], 0);
  EXPECT_GT(h2[10], 0);
  EXPECT_GT(h1[4], 0);  // vegetation
  EXPECT_GT(h1[6], 0);  // water
  // Cloud cover of a few per cent.
  const double cloudy = static_cast<double>(h2[8] + h2[9] + h2[10]) / (256 * 256);
  EXPECT_GT(cloudy, 0.01);
  EXPECT_LT(cloudy, 0.2);
}

// Mean of each band over the pixels whose centre lies inside `geom`.
struct Means {
  double b[6] = {0, 0, 0, 0, 0, 0};
  int n = 0;
};
double ndvi(const double* b) {
  return (b[3] - b[2]) / (b[3] + b[2]);
}
double mndwi(const double* b) {
  return (b[1] - b[4]) / (b[1] + b[4]);
}

// Pixels flagged cloud, cloud shadow or cirrus in the 20 m SCL are left out when `scl` is given.
Means means_inside(GDALDataset& ds, const Grid& g, const OGRGeometry& geom, bool inside,
                   GDALDataset* scl = nullptr) {
  OGREnvelope env;
  geom.getEnvelope(&env);
  const Window w = g.window_of({env.MinX - 30, env.MinY - 30, env.MaxX + 30, env.MaxY + 30});
  std::vector<std::vector<uint16_t>> bands(6);
  for (int b = 0; b < 6; ++b) read_window(ds, b + 1, w, bands[static_cast<std::size_t>(b)]);
  Means m;
  for (int64_t r = 0; r < w.h; ++r) {
    for (int64_t c = 0; c < w.w; ++c) {
      double x, y;
      g.transform().pixel_to_world(static_cast<double>(w.x + c) + 0.5,
                                   static_cast<double>(w.y + r) + 0.5, x, y);
      OGRPoint p(x, y);
      if (geom.Contains(&p) != inside) continue;
      if (scl) {
        uint8_t code = 0;
        read_window(*scl, 1, {(w.x + c) / 2, (w.y + r) / 2, 1, 1}, GDT_Byte, &code);
        if (code == 3 || code == 8 || code == 9 || code == 10) continue;
      }
      for (int b = 0; b < 6; ++b)
        m.b[b] +=
            bands[static_cast<std::size_t>(b)][static_cast<std::size_t>(r * w.w + c)] / 10000.0;
      ++m.n;
    }
  }
  for (double& v : m.b) v /= std::max(1, m.n);
  return m;
}

TEST(Synth, TruthAgreesWithThePixels) {
  test::TempDir d;
  make_scene(d.path(), 700, 640, 90, 11);
  const json truth = json::parse(read_file(d / "truth.json"));
  DatasetPtr d1 = open_raster(d / "date1.tif"), d2 = open_raster(d / "date2.tif");
  const Grid g = Grid::of(*d1);
  std::set<std::string> categories;
  bool below_mu = false, above_mu = false;
  int checked = 0;
  for (const auto& c : truth["changes"]) {
    const std::string cat = c["category"];
    categories.insert(cat);
    const double area = c["area_m2"];
    below_mu |= area < 666.67;
    above_mu |= area > 2 * 666.67;
    if (c["pixels"].get<int>() < 4 || c["cloud_fraction"].get<double>() > 0) continue;
    OGRGeometry* geom = nullptr;
    const std::string wkt = c["wkt"];
    ASSERT_EQ(OGRGeometryFactory::createFromWkt(wkt.c_str(), nullptr, &geom), OGRERR_NONE);
    GeometryPtr owned(geom);
    EXPECT_NEAR(geom->toPolygon()->get_Area(), area, 1e-3 * area);
    const Means before = means_inside(*d1, g, *geom, true),
                after = means_inside(*d2, g, *geom, true);
    ASSERT_GE(before.n, 4) << c["id"];
    const double mix = c["mix"];
    const std::string id = c["id"];
    const double dndvi = ndvi(after.b) - ndvi(before.b), dmndwi = mndwi(after.b) - mndwi(before.b);
    if (cat == "construction") {
      EXPECT_GT(after.b[0] - before.b[0], 0.02 * mix) << id;
    }
    if (cat == "bare_soil") {
      EXPECT_LT(dndvi, -0.2 * mix) << id;
    }
    if (cat == "water_gain") {
      EXPECT_GT(dmndwi, 0.3 * mix) << id;
    }
    if (cat == "water_loss") {
      EXPECT_LT(dmndwi, -0.3 * mix) << id;
    }
    if (cat == "vegetation_loss") {
      EXPECT_LT(dndvi, -0.15 * mix) << id;
    }
    if (cat == "vegetation_gain") {
      EXPECT_GT(dndvi, 0.2 * mix) << id;
    }
    ++checked;
  }
  EXPECT_GE(checked, 10);
  EXPECT_EQ(categories.size(), 6u);
  EXPECT_TRUE(below_mu);
  EXPECT_TRUE(above_mu);
  EXPECT_EQ(truth["width"], 700);
  EXPECT_EQ(truth["crs"], "EPSG:32650");
}

TEST(Synth, UnchangedParcelsStayStable) {
  test::TempDir d;
  make_scene(d.path(), 400, 400, 40, 13);
  const json truth = json::parse(read_file(d / "truth.json"));
  std::set<std::string> changed;
  for (const auto& c : truth["changes"]) changed.insert(c["parcels"][0].get<std::string>());
  DatasetPtr d1 = open_raster(d / "date1.tif"), d2 = open_raster(d / "date2.tif");
  DatasetPtr scl2 = open_raster(d / "date2_scl.tif");
  const Grid g = Grid::of(*d1);
  DatasetPtr parcels = open_vector(d / "parcels.gpkg");
  OGRLayer* layer = parcels->GetLayerByName("parcels");
  int stable = 0;
  for (auto& f : *layer) {
    if (changed.count(f->GetFieldAsString("parcel_id"))) continue;
    const std::string use = f->GetFieldAsString("land_use");
    if (use != "wheat" && use != "vegetables" && use != "woodland") continue;
    const OGRGeometry* geom = f->GetGeometryRef();
    if (!geom->IsValid()) continue;
    const Means a = means_inside(*d1, g, *geom, true, scl2.get());
    const Means b = means_inside(*d2, g, *geom, true, scl2.get());
    if (a.n < 20) continue;
    EXPECT_LT(std::abs(ndvi(b.b) - ndvi(a.b)), 0.06) << f->GetFieldAsString("parcel_id");
    ++stable;
  }
  EXPECT_GE(stable, 5);
}

TEST(Synth, ParcelsAndZones) {
  test::TempDir d;
  const auto r = make_scene(d.path(), 640, 640, 150, 17);
  EXPECT_EQ(r.parcels, 150);
  DatasetPtr ds = open_vector(d / "parcels.gpkg");
  OGRLayer* parcels = ds->GetLayerByName("parcels");
  ASSERT_NE(parcels, nullptr);
  EXPECT_EQ(parcels->GetFeatureCount(), 150);
  EXPECT_EQ(Crs::from_ogr(parcels->GetSpatialRef()).epsg(), 32650);
  int multipart = 0, holes = 0, invalid = 0;
  std::set<std::string> classes, ids, towns;
  for (auto& f : *parcels) {
    ids.insert(f->GetFieldAsString("parcel_id"));
    classes.insert(f->GetFieldAsString("land_class"));
    towns.insert(f->GetFieldAsString("township"));
    const OGRMultiPolygon* mp = f->GetGeometryRef()->toMultiPolygon();
    multipart += mp->getNumGeometries() > 1;
    for (const auto* p : *mp) holes += p->getNumInteriorRings() > 0;
    invalid += !f->GetGeometryRef()->IsValid();
  }
  EXPECT_EQ(ids.size(), 150u);
  EXPECT_GT(multipart, 0);
  EXPECT_GT(holes, 0);
  EXPECT_GT(invalid, 0);
  EXPECT_EQ(classes,
            (std::set<std::string>{"general_farmland", "other", "permanent_basic_farmland"}));
  for (const auto& t : towns)
    EXPECT_TRUE(t.find("镇") != std::string::npos || t.find("乡") != std::string::npos) << t;
  OGRLayer* zones = ds->GetLayerByName("zones");
  ASSERT_NE(zones, nullptr);
  EXPECT_EQ(zones->GetFeatureCount(), 3);
  std::set<std::string> types;
  for (auto& f : *zones) {
    types.insert(f->GetFieldAsString("zone_type"));
    EXPECT_FALSE(std::string(f->GetFieldAsString("sensitivity")).empty());
  }
  EXPECT_TRUE(types.count("ecological_red_line"));
  EXPECT_TRUE(types.count("wetland"));
  // GeoJSON: RFC 7946, longitude/latitude near 116 E, 30.7 N.
  DatasetPtr gj = open_vector(d / "parcels.geojson");
  OGRLayer* jl = gj->GetLayer(0);
  EXPECT_EQ(jl->GetFeatureCount(), 150);
  OGREnvelope env;
  ASSERT_EQ(jl->GetExtent(&env), OGRERR_NONE);
  EXPECT_GT(env.MinX, 115.5);
  EXPECT_LT(env.MaxX, 117.0);
  EXPECT_GT(env.MinY, 30.0);
  EXPECT_LT(env.MaxY, 31.0);
}

TEST(Synth, BadArguments) {
  int64_t w, h;
  synth::parse_size("2048x1024", w, h);
  EXPECT_EQ(w, 2048);
  EXPECT_EQ(h, 1024);
  synth::parse_size("500", w, h);
  EXPECT_EQ(h, 500);
  EXPECT_THROW(synth::parse_size("12ax4", w, h), Error);
  EXPECT_THROW(synth::parse_size("4", w, h), Error);
  synth::Options o;
  o.out = "";
  EXPECT_THROW(synth::generate(o), Error);
}

}  // namespace
}  // namespace fw
