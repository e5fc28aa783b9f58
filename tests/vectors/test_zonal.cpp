// Zonal statistics and parcel ingestion: the hand-checked 3 x 3 case, python-rasterstats' values
// on its own test data (centre and all-touched), thread- and window-independence, a supersampled
// reference on real NDVI, every real parcel register, GBK shapefiles, and bad input.
#include <gtest/gtest.h>
#include <ogr_api.h>
#include <ogrsf_frmts.h>

#include <cmath>
#include <filesystem>

#include "engine/atomic_file.hpp"
#include "engine/hash.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"
#include "vectors/zonal.hpp"

namespace fw {
namespace {

using vectors::CoverageMode;

// Writes polygons (WKT) with an id into a GeoPackage in `crs`.
void write_polygons(const std::string& path, const std::vector<std::string>& wkts, const Crs& crs,
                    const std::vector<std::string>& ids = {}) {
  VectorWriter w(path, "GPKG");
  OGRLayer& l = w.add_layer("parcels", crs, wkbMultiPolygon, {{"parcel_id", OFTString}});
  for (std::size_t i = 0; i < wkts.size(); ++i) {
    OGRFeature f(l.GetLayerDefn());
    f.SetField(0, i < ids.size() ? ids[i].c_str() : std::to_string(i + 1).c_str());
    OGRGeometry* g = nullptr;
    OGRGeometryFactory::createFromWkt(wkts[i].c_str(), nullptr, &g);
    f.SetGeometryDirectly(g);
    w.write(l, f);
  }
  w.commit();
}

vectors::ParcelSet load(const std::string& file, const Grid& grid,
                        const std::string& id = "parcel_id") {
  vectors::ParcelOptions o;
  o.file = file;
  o.id_field = id;
  return vectors::load_parcels(o, grid);
}

std::map<std::string, double> row(const vectors::ZonalTable& t, std::size_t i) {
  std::map<std::string, double> m;
  for (std::size_t c = 0; c < t.columns.size(); ++c) m[t.columns[c]] = t.rows[i][c];
  return m;
}

TEST(Zonal, HandCheckedThreeByThree) {
  test::TempDir d;
  // 3 x 3 unit cells holding 1..9 row by row, origin (0, 3); the square (0.5,0.5)-(2.5,2.5).
  const Grid g(GeoTransform::north_up(0, 3, 1, 1), 3, 3, Crs::from_epsg(32650));
  test::write_raster<float>(d / "r.tif", g, {{1, 2, 3, 4, 5, 6, 7, 8, 9}});
  write_polygons(d / "p.gpkg", {"POLYGON((0.5 0.5,2.5 0.5,2.5 2.5,0.5 2.5,0.5 0.5))"}, g.crs());
  const auto set = load(d / "p.gpkg", g);
  vectors::ZonalOptions o;
  o.stats = {"count",    "sum",   "mean",   "min",   "max",
             "variance", "stdev", "median", "cells", "coverage"};
  const auto t = vectors::zonal_stats(set, {{d / "r.tif", 1, "r"}}, o);
  auto r = row(t, 0);
  EXPECT_DOUBLE_EQ(r["r_count"], 4.0);
  EXPECT_DOUBLE_EQ(r["r_mean"], 5.0);
  EXPECT_DOUBLE_EQ(r["r_sum"], 20.0);
  EXPECT_EQ(r["r_min"], 1.0);
  EXPECT_EQ(r["r_max"], 9.0);
  EXPECT_NEAR(r["r_variance"], 5.0, 1e-12);
  EXPECT_NEAR(r["r_stdev"], std::sqrt(5.0), 1e-12);
  EXPECT_DOUBLE_EQ(r["r_median"], 5.0);
  EXPECT_EQ(r["r_cells"], 9.0);
  EXPECT_DOUBLE_EQ(r["r_coverage"], 4.0);
}

std::string peer(const std::string& f) {
  return test::shared_data() + "/zonal_peer/" + f;
}

// An Int16 band stored x 10000 with GDAL scale 1e-4, offset 0.5 and nodata -32768: statistics
// in the values it stands for, nodata left out before scaling; aboveT on those values.
TEST(Zonal, ScaleOffsetAndNodataOfTheBand) {
  test::TempDir d;
  const Grid g(GeoTransform::north_up(0, 3, 1, 1), 3, 3, Crs::from_epsg(32650));
  {
    DatasetPtr ds = create_gtiff(d / "r.tif", g, 1, GDT_Int16, GdalOptions{}, 256);
    GDALRasterBand* b = ds->GetRasterBand(1);
    b->SetScale(1e-4);
    b->SetOffset(0.5);
    b->SetNoDataValue(-32768);
    const std::vector<int16_t> v = {1000, 2000, 3000, 4000, -32768, 6000, 7000, 8000, 9000};
    write_window(*ds, 1, g.full_window(), v);
    close_dataset(ds, d / "r.tif");
  }
  write_polygons(d / "p.gpkg", {"POLYGON((0 0,3 0,3 3,0 3,0 0))"}, g.crs());
  const auto set = load(d / "p.gpkg", g);
  vectors::ZonalOptions o;
  o.stats = {"count", "mean", "min", "max", "above1.25"};
  auto r = row(vectors::zonal_stats(set, {{d / "r.tif", 1, "r"}}, o), 0);
  EXPECT_DOUBLE_EQ(r["r_count"], 8.0);
  // (0.1 + 0.2 + 0.3 + 0.4 + 0.6 + 0.7 + 0.8 + 0.9) / 8 + 0.5 = 1.0
  EXPECT_NEAR(r["r_mean"], 1.0, 1e-12);
  EXPECT_NEAR(r["r_min"], 0.6, 1e-12);
  EXPECT_NEAR(r["r_max"], 1.4, 1e-12);
  EXPECT_NEAR(r["r_above1.25"], 2.0 / 8.0, 1e-12);  // 1.3 and 1.4
}

TEST(ZonalRealData, RasterstatsValuesCentreAndAllTouched) {
  if (!test::have_shared_data()) GTEST_SKIP() << "no ../shared/data";
  const std::vector<vectors::ZonalRaster> slope = {{peer("slope.tif"), 1, "s"}};
  const Grid g = vectors::zonal_grid(slope);
  const auto set = load(peer("polygons.shp"), g);
  ASSERT_EQ(set.parcels.size(), 2u);
  vectors::ZonalOptions o;
  o.stats = {"count", "mean", "min", "max", "sum", "stdev"};
  o.mode = CoverageMode::kCenter;
  auto t = vectors::zonal_stats(set, slope, o);
  auto a = row(t, 0), b = row(t, 1);
  EXPECT_EQ(a["s_count"], 75);
  EXPECT_EQ(b["s_count"], 50);
  EXPECT_NEAR(a["s_mean"], 14.660085, 1e-6);
  EXPECT_NEAR(a["s_min"], 6.575115, 1e-6);
  EXPECT_NEAR(a["s_max"], 22.273418, 1e-6);
  EXPECT_NEAR(a["s_sum"], 1099.506367, 1e-5);
  EXPECT_NEAR(a["s_stdev"], 3.040731, 1e-6);
  EXPECT_NEAR(b["s_mean"], 56.605760, 1e-6);
  EXPECT_NEAR(b["s_min"], 16.940950, 1e-6);
  EXPECT_NEAR(b["s_max"], 82.690437, 1e-6);
  EXPECT_NEAR(b["s_sum"], 2830.287979, 1e-5);
  EXPECT_NEAR(b["s_stdev"], 14.212444, 1e-6);
  o.mode = CoverageMode::kAllTouched;
  t = vectors::zonal_stats(set, slope, o);
  a = row(t, 0), b = row(t, 1);
  EXPECT_EQ(a["s_count"], 95);
  EXPECT_EQ(b["s_count"], 73);
  EXPECT_NEAR(a["s_mean"], 15.739456, 1e-6);
  EXPECT_NEAR(a["s_max"], 27.089157, 1e-6);
  EXPECT_NEAR(b["s_mean"], 50.592021, 1e-6);
  EXPECT_NEAR(b["s_min"], 6.893435, 1e-6);
  // Multipolygons: 125 cells by their centres. Its .prj says WGS 84 while its coordinates are
  // in the raster's projection: refused as such, read with the right CRS given.
  o.mode = CoverageMode::kCenter;
  try {
    load(peer("multipolygons.shp"), g);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(test::contains(e.what(), "cannot be transformed")) << e.what();
  }
  vectors::ParcelOptions mo;
  mo.file = peer("multipolygons.shp");
  mo.crs = g.crs().wkt();
  const auto multi = vectors::load_parcels(mo, g);
  t = vectors::zonal_stats(multi, slope, o);
  EXPECT_EQ(row(t, 0)["s_count"], 125);
  // Nodata: fewer valid cells on slope_nodata.tif; none at all on all_nodata.tif (count 0, no
  // NaN count).
  const auto nd = vectors::zonal_stats(set, {{peer("slope_nodata.tif"), 1, "s"}}, o);
  EXPECT_LT(row(nd, 0)["s_count"], 75);
  EXPECT_GT(row(nd, 0)["s_count"], 0);
  const auto none = vectors::zonal_stats(set, {{peer("all_nodata.tif"), 1, "s"}}, o);
  EXPECT_EQ(row(none, 0)["s_count"], 0);
  EXPECT_EQ(row(none, 1)["s_count"], 0);
  EXPECT_TRUE(std::isnan(row(none, 0)["s_mean"]));
  // Partial overlap: every feature counts cells.
  const auto part = load(peer("polygons_partial_overlap.shp"), g);
  t = vectors::zonal_stats(part, slope, o);
  for (std::size_t i = 0; i < part.parcels.size(); ++i) {
    EXPECT_GT(row(t, i)["s_count"], 0) << i;
  }
  // Categorical: feature 0 holds 75 cells of class 1.
  vectors::ZonalOptions oc;
  oc.mode = CoverageMode::kCenter;
  oc.stats = {"count", "majority", "variety", "frac"};
  t = vectors::zonal_stats(set, {{peer("slope_classes.tif"), 1, "c"}}, oc);
  a = row(t, 0);
  EXPECT_EQ(a["c_majority"], 1);
  EXPECT_EQ(a["c_count"] * a["c_frac_1"], 75);
}

TEST(ZonalRealData, AllParcelsOutsideIsAClearError) {
  if (!test::have_shared_data()) GTEST_SKIP() << "no ../shared/data";
  const std::vector<vectors::ZonalRaster> slope = {{peer("slope.tif"), 1, "s"}};
  const auto set = load(peer("polygons_no_overlap.shp"), vectors::zonal_grid(slope));
  try {
    vectors::zonal_stats(set, slope, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_TRUE(test::contains(e.what(), "no parcel overlaps")) << e.what();
  }
}

// Identical results for any thread count and window size, on a synth-like random layout.
// n triangles of radius 15 to max_r metres centred anywhere on a W x H 10 m grid (or up to
// `margin` metres beyond it), as WKT.
std::vector<std::string> random_triangles(Rng& rng, int n, int64_t W, int64_t H, double margin,
                                          double max_r) {
  std::vector<std::string> polys;
  for (int k = 0; k < n; ++k) {
    const double x = test::kOriginX + rng.uniform(-margin, static_cast<double>(W) * 10 + margin);
    const double y = test::kOriginY - rng.uniform(-margin, static_cast<double>(H) * 10 + margin);
    const double r = rng.uniform(15, max_r);
    polys.push_back("POLYGON((" + std::to_string(x - r) + " " + std::to_string(y - 0.3 * r) + "," +
                    std::to_string(x + r) + " " + std::to_string(y - r) + "," +
                    std::to_string(x + 0.4 * r) + " " + std::to_string(y + r) + "," +
                    std::to_string(x - r) + " " + std::to_string(y - 0.3 * r) + "))");
  }
  return polys;
}

TEST(Zonal, IndependentOfThreadsAndWindows) {
  test::TempDir d;
  const int64_t W = 1300, H = 900;
  const Grid g = test::utm_grid(W, H);
  std::vector<float> v(static_cast<std::size_t>(W * H));
  Rng rng(4);
  for (auto& x : v) x = static_cast<float>(rng.uniform(-1, 1));
  test::write_raster<float>(d / "r.tif", g, {v}, {}, std::nullopt, 256);
  write_polygons(d / "p.gpkg", random_triangles(rng, 300, W, H, 200, 900), g.crs());
  const auto set = load(d / "p.gpkg", g);
  vectors::ZonalOptions o;
  o.stats = {"count", "mean", "stdev", "min", "max", "p10", "median"};
  vectors::ZonalTable ref;
  bool first = true;
  for (auto [threads, memory] : {std::pair{1, 8.0}, std::pair{2, 8.0}, std::pair{2, 1024.0}}) {
    SchedulerOptions so;
    so.threads = threads;
    so.memory_mib = memory;
    const auto t = vectors::zonal_stats(set, {{d / "r.tif", 1, "r"}}, o, so);
    SCOPED_TRACE("threads " + std::to_string(threads) + " memory " + std::to_string(memory));
    if (first) {
      ref = t, first = false;
      continue;
    }
    ASSERT_EQ(t.rows.size(), ref.rows.size());
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
      for (std::size_t c = 0; c < t.columns.size(); ++c) {
        const double a = t.rows[i][c], b = ref.rows[i][c];
        if (std::isnan(b)) {
          EXPECT_TRUE(std::isnan(a));
        } else {
          // Window order fixes the merge order; different window sizes change rounding only.
          EXPECT_NEAR(a, b, 1e-9 * std::max(1.0, std::abs(b))) << i << " " << t.columns[c];
        }
      }
    }
  }
}

// Sharded: 1, 2, 3 and 5 shards each compute their windows' accumulators into a file; the merge
// gives the one-machine table bit for bit, for parcels split across shards too (quantiles,
// majority and class fractions included); a missing shard or files of another run are refused.
TEST(Zonal, ShardedMergeEqualsOneMachineBitForBit) {
  test::TempDir d;
  const int64_t W = 1300, H = 900;
  const Grid g = test::utm_grid(W, H);
  std::vector<float> v(static_cast<std::size_t>(W * H)), cls(v.size());
  Rng rng(8);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<float>(rng.uniform(-1, 1));
    cls[i] = static_cast<float>(static_cast<int>(rng.uniform(0, 4)));
  }
  test::write_raster<float>(d / "r.tif", g, {v}, {}, std::nullopt, 256);
  test::write_raster<float>(d / "c.tif", g, {cls}, {}, std::nullopt, 256);
  // The largest span several windows and shards.
  write_polygons(d / "p.gpkg", random_triangles(rng, 120, W, H, 0, 1500), g.crs());
  const auto set = load(d / "p.gpkg", g);
  vectors::ZonalOptions o;
  o.stats = {"count", "mean", "stdev", "min", "max", "p10", "median", "p90"};
  const std::vector<vectors::ZonalRaster> rasters = {
      {d / "r.tif", 1, "r", {}}, {d / "c.tif", 1, "c", {"majority", "frac", "count"}}};
  SchedulerOptions so;
  so.memory_mib = 4;  // many windows
  const auto ref = vectors::zonal_stats(set, rasters, o, so);
  for (int n : {1, 2, 3, 5}) {
    std::vector<std::string> files;
    for (int k = 0; k < n; ++k) {
      files.push_back(d / ("n" + std::to_string(n) + "/zonal-" + std::to_string(k) + ".part"));
      vectors::zonal_stats_shard(set, rasters, o, {k, n}, files.back(), "run-a", so);
    }
    const auto t = vectors::zonal_stats_merge(set, rasters, o, files, "run-a", so);
    ASSERT_EQ(t.columns, ref.columns);
    ASSERT_EQ(t.rows.size(), ref.rows.size());
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
      for (std::size_t c = 0; c < t.columns.size(); ++c) {
        const double a = t.rows[i][c], b = ref.rows[i][c];
        if (std::isnan(b)) {
          EXPECT_TRUE(std::isnan(a)) << n << " shards, parcel " << i << " " << t.columns[c];
        } else {
          EXPECT_EQ(a, b) << n << " shards, parcel " << i << " " << t.columns[c];
        }
      }
    }
    if (n == 3) {
      EXPECT_THROW(vectors::zonal_stats_merge(set, rasters, o, {files[0], files[2]}, "run-a", so),
                   Error);
      EXPECT_THROW(vectors::zonal_stats_merge(set, rasters, o, files, "run-b", so), Error);
      SchedulerOptions other = so;
      other.memory_mib = 64;  // another window plan
      EXPECT_THROW(vectors::zonal_stats_merge(set, rasters, o, files, "run-a", other), Error);
    }
  }
}

// Real NDVI: exact means per land-use polygon equal a supersampled reference (each cell split
// into 40 x 40 sub-cells tested with GEOS) to the supersampling's resolution.
TEST(ZonalRealData, LjubljanaExactMeansAgreeWithSupersampling) {
  if (!test::have_shared_data()) GTEST_SKIP() << "no ../shared/data";
  const std::string dir = test::shared_data() + "/ljubljana_ndvi/";
  const std::vector<vectors::ZonalRaster> r = {
      {dir + "S2_NDVI_CLM_Ljubljana_20160526.tif", 1, "ndvi"}};
  const Grid g = vectors::zonal_grid(r);
  const auto set = load(dir + "LULC.gpkg", g);
  EXPECT_EQ(set.report.features, 88);
  const auto t = vectors::zonal_stats(set, r, {});
  DatasetPtr ds = open_raster(r[0].path);
  const auto ndvi = test::read_band<float>(*ds);
  int checked = 0;
  for (std::size_t i = 0; i < set.parcels.size() && checked < 12; ++i) {
    const OGRGeometry& geom = *set.parcels[i].geom;
    OGREnvelope env;
    geom.getEnvelope(&env);
    const Window win =
        g.window_of({env.MinX, env.MinY, env.MaxX, env.MaxY}).intersection(g.full_window());
    if (win.pixels() > 400) continue;  // keep the reference quick
    double sw = 0, swv = 0;
    const int n = 40;
    OGRPreparedGeometryH prep =
        OGRCreatePreparedGeometry(OGRGeometry::ToHandle(const_cast<OGRGeometry*>(&geom)));
    for (int64_t rr = win.y; rr < win.y_end(); ++rr) {
      for (int64_t cc = win.x; cc < win.x_end(); ++cc) {
        int inside = 0;
        for (int a = 0; a < n; ++a) {
          for (int b = 0; b < n; ++b) {
            double x, y;
            g.transform().pixel_to_world(cc + (b + 0.5) / n, rr + (a + 0.5) / n, x, y);
            OGRPoint p(x, y);
            inside += OGRPreparedGeometryContains(prep, OGRGeometry::ToHandle(&p));
          }
        }
        const double f = static_cast<double>(inside) / (n * n);
        sw += f;
        swv += f * ndvi[static_cast<std::size_t>(rr * g.width() + cc)];
      }
    }
    OGRDestroyPreparedGeometry(prep);
    if (sw < 1) continue;
    auto m = row(t, i);
    EXPECT_NEAR(m["ndvi_count"], sw, 0.01 * sw + 0.05) << set.parcels[i].id;
    EXPECT_NEAR(m["ndvi_mean"], swv / sw, 2e-3) << set.parcels[i].id;
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

TEST(ParcelsRealData, EveryRegisterLoads) {
  if (!test::have_shared_data()) GTEST_SKIP() << "no ../shared/data";
  // A WGS 84 grid over the whole world so that nothing is outside; each file is transformed.
  const Grid world(GeoTransform::north_up(-180, 90, 0.01, 0.01), 36000, 18000,
                   Crs::from_epsg(4326));
  struct Want {
    std::string file, layer;
    int64_t features;
  };
  const std::vector<Want> wants = {{"flanders_parcels.gpkg", "", 48},
                                   {"france_rpg_parcels.gpkg", "", 193},
                                   {"netherlands_brp_2023.gpkg", "", 100},
                                   {"switzerland_lwb.gpkg", "", 100},
                                   {"portugal_continente.gpkg", "Culturas_Aveiro", 100},
                                   {"land_parcels.gpkg", "", 100},
                                   {"gsaa_parcels.gpkg", "", 100}};
  for (const auto& w : wants) {
    const auto set = load(test::shared_data() + "/parcels/" + w.file, world, "");
    if (!w.layer.empty()) {
      EXPECT_EQ(set.layer, w.layer) << w.file;
    }
    EXPECT_EQ(set.report.features, w.features) << w.file;
    EXPECT_EQ(set.report.loaded + set.report.dropped, w.features) << w.file;
    EXPECT_EQ(set.report.outside, 0) << w.file;
    // Transformed to longitude/latitude: Europe.
    OGREnvelope env;
    set.parcels.front().geom->getEnvelope(&env);
    EXPECT_GT(env.MinX, -10) << w.file;
    EXPECT_LT(env.MaxX, 30) << w.file;
    EXPECT_GT(env.MinY, 35) << w.file;
    EXPECT_LT(env.MaxY, 65) << w.file;
    std::printf("%s: layer %s, %lld loaded, %lld repaired, %lld dropped, %lld multipart\n",
                w.file.c_str(), set.layer.c_str(), static_cast<long long>(set.report.loaded),
                static_cast<long long>(set.report.repaired),
                static_cast<long long>(set.report.dropped),
                static_cast<long long>(set.report.multipart));
  }
}

TEST(Parcels, GbkShapefileComesOutAsUtf8) {
  test::TempDir d;
  const Grid g = test::utm_grid(100, 100);
  const std::string shp = d / "gbk.shp";
  {
    // Written by GDAL with ENCODING=GBK: the .dbf holds GBK bytes and a .cpg says so.
    GdalOptions lco;
    lco.set("ENCODING", "GBK");
    DatasetPtr ds(driver("ESRI Shapefile").Create(shp.c_str(), 0, 0, 0, GDT_Unknown, nullptr));
    OGRSpatialReference srs;
    srs.importFromEPSG(32650);
    OGRLayer* l = ds->CreateLayer("gbk", &srs, wkbPolygon, lco.get());
    OGRFieldDefn id("parcel_id", OFTString), cls("DLMC", OFTString);
    l->CreateField(&id);
    l->CreateField(&cls);
    OGRFeature f(l->GetLayerDefn());
    f.SetField(0, "P1");
    f.SetField(1, "永久基本农田");
    OGRGeometry* geom = nullptr;
    const std::string wkt =
        "POLYGON((400000 3399900,400100 3399900,400100 3399800,400000 3399800,400000 3399900))";
    OGRGeometryFactory::createFromWkt(wkt.c_str(), nullptr, &geom);
    f.SetGeometryDirectly(geom);
    ASSERT_EQ(l->CreateFeature(&f), OGRERR_NONE);
    close_dataset(ds, shp);
  }
  // The bytes on disk are GBK (not UTF-8): 永 is 0xD3C0 in GBK.
  const std::string dbf = read_file(d / "gbk.dbf");
  EXPECT_NE(dbf.find("\xD3\xC0"), std::string::npos);
  EXPECT_EQ(dbf.find("永"), std::string::npos);
  vectors::ParcelOptions o;
  o.file = shp;
  o.land_class_field = "DLMC";
  o.basic_farmland_values = {"永久基本农田"};
  const auto set = vectors::load_parcels(o, g);
  ASSERT_EQ(set.parcels.size(), 1u);
  EXPECT_EQ(set.parcels[0].attrs[0], "永久基本农田");
  EXPECT_TRUE(set.parcels[0].basic_farmland);
  // Without its .cpg the bytes cannot be read as UTF-8: a clear error naming the field, unless
  // the encoding is given.
  std::filesystem::remove(d / "gbk.cpg");
  o.basic_farmland_values.clear();
  try {
    vectors::load_parcels(o, g);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_TRUE(test::contains(e.what(), "encoding")) << e.what();
    EXPECT_TRUE(test::contains(e.what(), "DLMC")) << e.what();
  }
  o.encoding = "GBK";
  EXPECT_EQ(vectors::load_parcels(o, g).parcels[0].attrs[0], "永久基本农田");
}

TEST(Parcels, BadInputIsAClearError) {
  test::TempDir d;
  const Grid g = test::utm_grid(100, 100);
  auto expect_error = [&](const vectors::ParcelOptions& o, const std::string& part) {
    try {
      vectors::load_parcels(o, g);
      ADD_FAILURE() << "no error for " << part;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kInput) << e.what();
      EXPECT_TRUE(test::contains(e.what(), part)) << e.what();
      EXPECT_TRUE(test::contains(e.what(), o.file)) << e.what();
    }
  };
  // No polygon layer (points only).
  {
    VectorWriter w(d / "points.gpkg", "GPKG");
    OGRLayer& l = w.add_layer("pts", g.crs(), wkbPoint, {{"parcel_id", OFTString}});
    OGRFeature f(l.GetLayerDefn());
    f.SetGeometryDirectly(new OGRPoint(400010, 3399990));
    w.write(l, f);
    w.commit();
  }
  vectors::ParcelOptions o;
  o.file = d / "points.gpkg";
  expect_error(o, "no non-empty polygon layer");
  // Unknown id field, unknown layer.
  write_polygons(d / "p.gpkg",
                 {"POLYGON((400000 3399900,400100 3399900,400100 3399800,400000 3399900))"},
                 g.crs());
  o.file = d / "p.gpkg";
  o.id_field = "BSM";
  expect_error(o, "no id field 'BSM'");
  o.id_field = "parcel_id";
  o.layer = "farmland";
  expect_error(o, "no layer 'farmland'");
  o.layer.clear();
  // No CRS.
  {
    GdalOptions none;
    DatasetPtr ds(driver("GPKG").Create((d / "nocrs.gpkg").c_str(), 0, 0, 0, GDT_Unknown, nullptr));
    OGRLayer* l = ds->CreateLayer("parcels", nullptr, wkbPolygon, nullptr);
    OGRFeature f(l->GetLayerDefn());
    OGRGeometry* geom = nullptr;
    const std::string wkt = "POLYGON((0 0,1 0,1 1,0 0))";
    OGRGeometryFactory::createFromWkt(wkt.c_str(), nullptr, &geom);
    f.SetGeometryDirectly(geom);
    ASSERT_EQ(l->CreateFeature(&f), OGRERR_NONE);
    close_dataset(ds, d / "nocrs.gpkg");
  }
  o.file = d / "nocrs.gpkg";
  expect_error(o, "no coordinate reference system");
  // Duplicate ids: an error, or renamed when allowed.
  const std::string sq = "POLYGON((400000 3399900,400100 3399900,400100 3399800,400000 3399900))";
  write_polygons(d / "dup.gpkg", {sq, sq, sq}, g.crs(), {"A", "B", "A"});
  o.file = d / "dup.gpkg";
  expect_error(o, "duplicate id 'A'");
  o.unique_ids = true;
  const auto set = vectors::load_parcels(o, g);
  EXPECT_EQ(set.parcels[2].id, "A-2");
  EXPECT_EQ(set.report.renamed, 1);
  // A missing file.
  o.file = d / "missing.gpkg";
  expect_error(o, "missing.gpkg");
}

TEST(Parcels, RepairsInvalidGeometriesAndReports) {
  test::TempDir d;
  const Grid g = test::utm_grid(100, 100);
  // A bow-tie (self-intersecting), an empty geometry, a multipolygon, one partly and one wholly
  // outside the grid (x 399960..400960, y 3399020..3400020).
  write_polygons(
      d / "p.gpkg",
      {"POLYGON((400000 3399900,400200 3399700,400200 3399900,400000 3399700,400000 3399900))",
       "POLYGON EMPTY",
       "MULTIPOLYGON(((400000 3399900,400050 3399900,400050 3399850,400000 3399900)),"
       "((400300 3399900,400350 3399900,400350 3399850,400300 3399900)))",
       "POLYGON((400900 3399900,401100 3399900,401100 3399800,400900 3399900))",
       "POLYGON((500000 3399900,500100 3399900,500100 3399800,500000 3399900))"},
      g.crs());
  vectors::ParcelOptions o;
  o.file = d / "p.gpkg";
  const auto set = vectors::load_parcels(o, g);
  EXPECT_EQ(set.report.features, 5);
  EXPECT_EQ(set.report.dropped, 1);
  EXPECT_EQ(set.report.repaired, 1);
  EXPECT_EQ(set.report.multipart, 2);  // the multipolygon and the repaired bow-tie
  EXPECT_EQ(set.report.partly_outside, 1);
  EXPECT_EQ(set.report.outside, 1);
  ASSERT_EQ(set.parcels.size(), 4u);
  EXPECT_TRUE(set.parcels[0].geom->IsValid());
  // The bow-tie's two triangles: 2 x (200 x 100 / 2) m2.
  EXPECT_NEAR(set.parcels[0].area_m2, 20000.0, 1e-6);
}

}  // namespace
}  // namespace fw
