// Change patches on a planted class map: sieve, 8-connected polygons with holes, stable ids,
// no-data never part of a patch, overlays against hand-computed and GEOS areas, every default
// priority rule, evidence chips only for P1/P2 and on the patch, and bad input.
#include <gtest/gtest.h>
#include <ogrsf_frmts.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/raster_io.hpp"
#include "pipelines/patch_run.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

constexpr int64_t kW = 60, kH = 50;
const char* kNames[] = {"no_change",  "construction",    "bare_soil",       "water_gain",
                        "water_loss", "vegetation_loss", "vegetation_gain", nullptr};

double wx(double col) {
  return test::kOriginX + col * 10.0;
}
double wy(double row) {
  return test::kOriginY - row * 10.0;
}

void fill(std::vector<uint8_t>& v, int c0, int c1, int r0, int r1, uint8_t value) {
  for (int r = r0; r <= r1; ++r)
    for (int c = c0; c <= c1; ++c) v[static_cast<std::size_t>(r * kW + c)] = value;
}

std::string rect_wkt(double c0, double c1, double r0, double r1) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "POLYGON ((%.3f %.3f,%.3f %.3f,%.3f %.3f,%.3f %.3f,%.3f %.3f))",
                wx(c0), wy(r0), wx(c1), wy(r0), wx(c1), wy(r1), wx(c0), wy(r1), wx(c0), wy(r0));
  return buf;
}

// A layer of polygons with string fields; the first field is the id.
void write_layer(const std::string& path, const std::string& name, int epsg,
                 const std::vector<std::string>& fields,
                 const std::vector<std::pair<std::string, std::vector<std::string>>>& rows) {
  DatasetPtr ds(driver("GPKG").Create(path.c_str(), 0, 0, 0, GDT_Unknown, nullptr));
  OGRSpatialReference srs;
  srs.importFromEPSG(epsg);
  srs.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  OGRLayer* l = ds->CreateLayer(name.c_str(), &srs, wkbPolygon, nullptr);
  for (const auto& f : fields) {
    OGRFieldDefn d(f.c_str(), OFTString);
    l->CreateField(&d);
  }
  OGRSpatialReference utm;
  utm.importFromEPSG(32650);
  utm.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  std::unique_ptr<OGRCoordinateTransformation> ct(
      epsg == 32650 ? nullptr : OGRCreateCoordinateTransformation(&utm, &srs));
  for (const auto& [wkt, values] : rows) {
    OGRFeature f(l->GetLayerDefn());
    for (std::size_t k = 0; k < values.size(); ++k)
      f.SetField(static_cast<int>(k), values[k].c_str());
    OGRGeometry* g = nullptr;
    OGRGeometryFactory::createFromWkt(wkt.c_str(), nullptr, &g);
    if (ct) {
      g->segmentize(1.0);
      g->transform(ct.get());
    }
    f.SetGeometryDirectly(g);
    ASSERT_EQ(l->CreateFeature(&f), OGRERR_NONE);
  }
}

class Patches : public ::testing::Test {
 protected:
  void SetUp() override {
    grid_ = test::utm_grid(kW, kH);
    std::vector<uint8_t> cls(kW * kH, 0), inten(kW * kH, 0);
    fill(cls, 5, 11, 5, 11, 1);  // A: construction 7 x 7 ...
    fill(cls, 7, 9, 7, 9, 0);    // ... with a 3 x 3 hole: 40 cells
    fill(cls, 20, 22, 5, 5, 2);  // 3 cells of bare soil: below the unit
    for (int k = 0; k < 5; ++k) fill(cls, 30 + k, 30 + k, 5 + k, 5 + k, 5);  // diagonal: 5 cells
    fill(cls, 40, 49, 20, 29, 255);                                          // a cloud
    fill(cls, 39, 39, 25, 26, 1);  // 2 cells next to it: below the unit
    fill(cls, 40, 45, 30, 30, 3);  // E: 6 cells of new water under the cloud
    fill(cls, 20, 27, 20, 28, 1);  // B: construction 8 x 9 = 72 cells
    fill(cls, 5, 9, 30, 34, 2);    // C: bare soil 25 cells
    fill(cls, 20, 24, 40, 44, 6);  // D: vegetation gain 25 cells
    fill(cls, 33, 38, 40, 45, 1);  // G: construction 36 cells
    for (std::size_t i = 0; i < cls.size(); ++i) inten[i] = cls[i] == 255 ? 255 : cls[i] ? 1 : 0;
    fill(inten, 20, 27, 20, 23, 3);  // B: 32 cells severe, 40 slight
    cls_ = cls;
    test::write_raster<uint8_t>(dir_ / "change_class.tif", grid_, {cls}, {"change_class"}, 255.0);
    {
      DatasetPtr ds = open_raster(dir_ / "change_class.tif", true);
      char** names = nullptr;
      for (const char* const* n = kNames; *n; ++n) names = CSLAddString(names, *n);
      ds->GetRasterBand(1)->SetCategoryNames(names);
      CSLDestroy(names);
    }
    test::write_raster<uint8_t>(dir_ / "change_intensity.tif", grid_, {inten}, {}, 255.0);
    // Parcels: F1 basic farmland over part of B; F2 general beside it; F3 over E; F4 over G.
    write_layer(dir_ / "parcels.gpkg", "parcels", 32650,
                {"parcel_id", "land_class", "township", "village"},
                {{rect_wkt(18.3, 24.6, 18, 30), {"F1", "permanent_basic_farmland", "T1", "V1"}},
                 {rect_wkt(24.6, 30, 18, 30), {"F2", "general_farmland", "T1", "V2"}},
                 {rect_wkt(38, 47, 29.5, 31.2), {"F3", "general_farmland", "T2", "V3"}},
                 {rect_wkt(32, 40, 39, 47), {"F4", "general_farmland", "T2", "V4"}}});
    write_layer(dir_ / "zones.gpkg", "zones", 32650,
                {"zone_id", "name", "zone_type", "sensitivity"},
                {{rect_wkt(3, 12, 28, 37), {"Z1", "红线", "ecological_red_line", "high"}},
                 {rect_wkt(18, 26, 38, 46), {"Z2", "湿地", "wetland", "high"}}});
  }

  vectors::ParcelSet parcels(const std::string& file = "parcels.gpkg") const {
    vectors::ParcelOptions o;
    o.file = dir_ / file;
    o.land_class_field = "land_class";
    o.basic_farmland_values = {"permanent_basic_farmland"};
    return vectors::load_parcels(o, grid_);
  }
  vectors::ParcelSet zones(vectors::ZoneOptions& zo) const {
    zo.layer.file = dir_ / "zones.gpkg";
    return vectors::load_zones(zo, grid_);
  }
  pipelines::PatchRunResult run(const std::string& out, int threads = 0,
                                const vectors::ParcelSet* p = nullptr,
                                const vectors::ParcelSet* z = nullptr) const {
    pipelines::PatchRun r;
    r.patches.change_class = dir_ / "change_class.tif";
    r.patches.intensity = dir_ / "change_intensity.tif";
    r.parcels = p;
    r.zones = z;
    r.out_dir = dir_ / out;
    SchedulerOptions so;
    so.threads = threads;
    return pipelines::run_patches(r, so);
  }
  static const vectors::Patch* find(const vectors::PatchSet& s, const std::string& id) {
    for (const auto& p : s.patches)
      if (p.id == id) return &p;
    return nullptr;
  }

  test::TempDir dir_;
  Grid grid_;
  std::vector<uint8_t> cls_;
};

TEST_F(Patches, PlantedClumpsBecomeOnePatchEach) {
  const auto r = run("out");
  const auto& s = r.set;
  EXPECT_EQ(s.mmu_cells, 4);  // 400 m2 of 100 m2 cells
  // A, diagonal, E, B, C, D, G: the 3-cell and 2-cell clumps are gone.
  ASSERT_EQ(s.patches.size(), 7u);
  EXPECT_EQ(s.sieved_cells, 3 + 2);
  std::map<std::string, std::pair<std::string, int64_t>> want = {
      {"CP1-000005-000005", {"construction", 40}}, {"CP5-000005-000030", {"vegetation_loss", 5}},
      {"CP1-000020-000020", {"construction", 72}}, {"CP3-000030-000040", {"water_gain", 6}},
      {"CP2-000030-000005", {"bare_soil", 25}},    {"CP6-000040-000020", {"vegetation_gain", 25}},
      {"CP1-000040-000033", {"construction", 36}}};
  for (const auto& p : s.patches) {
    ASSERT_TRUE(want.count(p.id)) << p.id;
    EXPECT_EQ(p.category, want[p.id].first) << p.id;
    EXPECT_EQ(p.cells, want[p.id].second) << p.id;
    EXPECT_NEAR(p.area_m2, 100.0 * static_cast<double>(want[p.id].second), 1e-6) << p.id;
    EXPECT_GE(p.area_m2, 400.0 - 1e-9) << p.id;  // nothing below the unit
  }
  // The hole of A is kept.
  const auto* a = find(s, "CP1-000005-000005");
  ASSERT_TRUE(a);
  ASSERT_EQ(wkbFlatten(a->geom->getGeometryType()), wkbPolygon);
  EXPECT_EQ(a->geom->toPolygon()->getNumInteriorRings(), 1);
  // Intensity of B: max 3, mean (32 x 3 + 40 x 1) / 72.
  const auto* b = find(s, "CP1-000020-000020");
  ASSERT_TRUE(b);
  EXPECT_DOUBLE_EQ(b->intensity_max, 3);
  EXPECT_NEAR(b->intensity_mean, 136.0 / 72.0, 1e-12);
  EXPECT_NEAR(b->xmin, wx(20), 1e-9);
  EXPECT_NEAR(b->ymax, wy(20), 1e-9);
  // No patch covers a no-data cell.
  for (const auto& p : s.patches) {
    const Window w = grid_.window_of({p.xmin, p.ymin, p.xmax, p.ymax});
    for (int64_t r0 = w.y; r0 < w.y_end(); ++r0) {
      for (int64_t c0 = w.x; c0 < w.x_end(); ++c0) {
        double x, y;
        grid_.transform().pixel_to_world(static_cast<double>(c0) + 0.5,
                                         static_cast<double>(r0) + 0.5, x, y);
        OGRPoint pt(x, y);
        if (p.geom->Contains(&pt)) {
          EXPECT_NE(cls_[static_cast<std::size_t>(r0 * kW + c0)], 255) << p.id;
          EXPECT_EQ(cls_[static_cast<std::size_t>(r0 * kW + c0)], p.category_code) << p.id;
        }
      }
    }
  }
  // Outputs: GeoJSON (WGS 84), GeoPackage, CSV.
  DatasetPtr gj = open_vector(dir_ / "out/patches.geojson");
  EXPECT_EQ(gj->GetLayer(0)->GetFeatureCount(), 7);
  DatasetPtr gp = open_vector(dir_ / "out/patches.gpkg");
  EXPECT_EQ(std::string(gp->GetLayer(0)->GetName()), "patches");
  const std::string csv = read_file(dir_ / "out/patches.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 8);
}

TEST_F(Patches, IdsAndAttributesIdenticalAcrossRunsAndThreads) {
  const auto p = parcels();
  vectors::ZoneOptions zo;
  const auto z = zones(zo);
  const auto r1 = run("t1", 1, &p, &z), r2 = run("t2", 2, &p, &z);
  EXPECT_EQ(read_file(dir_ / "t1/patches.csv"), read_file(dir_ / "t2/patches.csv"));
  ASSERT_EQ(r1.set.patches.size(), r2.set.patches.size());
}

TEST_F(Patches, OverlaysEqualGeosIntersections) {
  const auto p = parcels();
  vectors::ZoneOptions zo;
  const auto z = zones(zo);
  const auto r = run("ov", 0, &p, &z);
  const auto* b = find(r.set, "CP1-000020-000020");
  ASSERT_TRUE(b);
  // By hand: B spans columns 20-28 and rows 20-29; F1 columns 18.3-24.6, rows 18-30.
  EXPECT_NEAR(b->basic_farmland_area_m2, (24.6 - 20) * 10 * 90, 1e-6 * 4140);
  EXPECT_NEAR(b->farmland_area_m2, 72 * 100.0, 1e-6 * 7200);  // F1 and F2 cover it all
  EXPECT_EQ(b->parcel_ids, (std::vector<std::string>{"F1", "F2"}));
  EXPECT_EQ(b->township, "T1");
  EXPECT_EQ(b->village, "V1");  // F1 holds the larger share (4.6 of its 8 columns)
  // Every patch against GEOS directly.
  for (const auto& pa : r.set.patches) {
    double farm = 0, basic = 0, zone = 0;
    for (const auto& q : p.parcels) {
      GeometryPtr g(pa.geom->Intersection(q.geom.get()));
      const double a = g ? OGR_G_Area(OGRGeometry::ToHandle(g.get())) : 0.0;
      farm += a;
      if (q.basic_farmland) basic += a;
    }
    for (const auto& q : z.parcels) {
      GeometryPtr g(pa.geom->Intersection(q.geom.get()));
      zone = std::max(zone, g ? OGR_G_Area(OGRGeometry::ToHandle(g.get())) : 0.0);
    }
    EXPECT_NEAR(pa.farmland_area_m2, farm, 1e-6 * std::max(1.0, farm)) << pa.id;
    EXPECT_NEAR(pa.basic_farmland_area_m2, basic, 1e-6 * std::max(1.0, basic)) << pa.id;
    EXPECT_NEAR(pa.zone_area_m2, zone, 1e-6 * std::max(1.0, zone)) << pa.id;
  }
  const auto* c = find(r.set, "CP2-000030-000005");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->zone_id, "Z1");
  EXPECT_EQ(c->zone_name, "红线");
  EXPECT_NEAR(c->zone_area_m2, 2500.0, 1e-6);
  // Parcels in another CRS (CGCS2000 geographic) give the same overlays to the precision of
  // the reprojection.
  std::vector<std::pair<std::string, std::vector<std::string>>> rows = {
      {rect_wkt(18.3, 24.6, 18, 30), {"F1", "permanent_basic_farmland", "T1", "V1"}}};
  write_layer(dir_ / "parcels4490.gpkg", "parcels", 4490,
              {"parcel_id", "land_class", "township", "village"}, rows);
  const auto p2 = parcels("parcels4490.gpkg");
  const auto r2 = run("ov2", 0, &p2, nullptr);
  const auto* b2 = find(r2.set, "CP1-000020-000020");
  ASSERT_TRUE(b2);
  EXPECT_NEAR(b2->basic_farmland_area_m2, 4140.0, 1e-3 * 4140.0);
}

TEST_F(Patches, EveryDefaultPriorityRule) {
  const auto p = parcels();
  vectors::ZoneOptions zo;
  const auto z = zones(zo);
  const auto r = run("pr", 0, &p, &z);
  auto level = [&](const char* id) {
    const auto* x = find(r.set, id);
    return x ? x->priority : -1;
  };
  EXPECT_EQ(level("CP1-000020-000020"), 1);  // construction >= 1 mu on basic farmland
  EXPECT_EQ(level("CP2-000030-000005"), 1);  // >= 1 mu in an ecological red line
  EXPECT_EQ(level("CP6-000040-000020"), 2);  // in a high-sensitivity zone
  EXPECT_EQ(level("CP1-000040-000033"), 2);  // construction >= 1 mu on general farmland
  EXPECT_EQ(level("CP3-000030-000040"), 3);  // new water under 1 mu on farmland
  EXPECT_EQ(level("CP1-000005-000005"), 3);  // 6 mu of construction off farmland and zones
  EXPECT_EQ(level("CP5-000005-000030"), 3);
  // Rules are data: a custom rule, and clear errors.
  const auto rule = vectors::parse_priority_rule("P2: category in water_gain, area_m2 >= 500");
  EXPECT_EQ(rule.level, 2);
  pipelines::PatchRun run2;
  run2.patches.change_class = dir_ / "change_class.tif";
  run2.patches.rules = {rule};
  run2.out_dir = dir_ / "pr2";
  const auto r2 = pipelines::run_patches(run2);
  for (const auto& x : r2.set.patches) EXPECT_EQ(x.priority, x.category == "water_gain" ? 2 : 3);
  for (const char* bad : {"P4: area_mu > 1", "P1 area_mu > 1", "P1: aera_mu > 1",
                          "P1: area_mu > one", "P1: category construction"}) {
    try {
      vectors::parse_priority_rule(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage) << bad;
      EXPECT_TRUE(test::contains(e.what(), bad)) << e.what();
    }
  }
}

TEST_F(Patches, ChipsOnlyForP1AndP2AndOnThePatch) {
  // Imagery: blue, green, red, NIR (generic sensor, reflectance = DN / 10000).
  std::vector<std::vector<uint16_t>> bands(4, std::vector<uint16_t>(kW * kH));
  for (std::size_t i = 0; i < bands[0].size(); ++i) {
    const bool changed = cls_[i] >= 1 && cls_[i] <= 6;
    bands[0][i] = changed ? 1800 : 400 + static_cast<uint16_t>(i % 7) * 10;
    bands[1][i] = changed ? 2000 : 700;
    bands[2][i] = changed ? 2100 : 500;
    bands[3][i] = changed ? 2300 : 4000;
  }
  test::write_raster<uint16_t>(dir_ / "img.tif", grid_, bands);
  rasters::ImageryOptions io;
  io.files = {dir_ / "img.tif"};
  io.sensor = "generic";
  io.band_map = "blue=1,green=2,red=3,nir=4";
  io.scale = 1e-4;
  const auto im = rasters::Imagery::open(io);
  const auto p = parcels();
  vectors::ZoneOptions zo;
  const auto z = zones(zo);
  pipelines::PatchRun run;
  run.patches.change_class = dir_ / "change_class.tif";
  run.parcels = &p;
  run.zones = &z;
  run.before = run.after = &im;
  run.out_dir = dir_ / "chips_out";
  const auto r = pipelines::run_patches(run);
  int urgent = 0;
  for (const auto& pa : r.set.patches) {
    const bool want = pa.priority <= 2;
    urgent += want;
    for (const char* s : {"_before.png", "_after.png", "_ndvi_before.png", "_ndvi_after.png"}) {
      const std::string f = dir_ / ("chips_out/chips/" + pa.id + s);
      EXPECT_EQ(std::filesystem::exists(f), want) << f;
    }
    EXPECT_EQ(pa.chips.empty(), !want) << pa.id;
  }
  EXPECT_EQ(urgent, 4);
  EXPECT_EQ(r.chips, 16);
  // The after chip of B: a PNG whose yellow pixels lie on B's outline.
  const auto* b = find(r.set, "CP1-000020-000020");
  ASSERT_TRUE(b);
  DatasetPtr png = open_raster(dir_ / "chips_out/chips/CP1-000020-000020_after.png");
  ASSERT_STREQ(png->GetDriver()->GetDescription(), "PNG");
  const int W = png->GetRasterXSize(), H = png->GetRasterYSize();
  EXPECT_GE(std::max(W, H), 256);
  // The chip window: B's box (8 x 9 cells) with a margin of max(8, 9 / 2) cells, clipped.
  const Window box{20, 20, 8, 9};
  const int64_t m = 8;
  const Window win =
      Window{box.x - m, box.y - m, box.w + 2 * m, box.h + 2 * m}.intersection(grid_.full_window());
  const int64_t f = W / win.w;
  ASSERT_EQ(H / win.h, f);
  std::vector<uint8_t> rch = test::read_band<uint8_t>(*png, 1),
                       gch = test::read_band<uint8_t>(*png, 2),
                       bch = test::read_band<uint8_t>(*png, 3);
  int yellow = 0;
  for (int y = 0; y < H; ++y) {
    for (int x = 0; x < W; ++x) {
      const auto i = static_cast<std::size_t>(y * W + x);
      if (!(rch[i] == 255 && gch[i] == 230 && bch[i] == 0)) continue;
      ++yellow;
      // On B's outline: columns 20 to 28 and rows 20 to 29 (cell edges), give or take a pixel.
      const double c = static_cast<double>(win.x) + (x + 0.5) / static_cast<double>(f);
      const double rr = static_cast<double>(win.y) + (y + 0.5) / static_cast<double>(f);
      const double tol = 1.5 / static_cast<double>(f);
      const bool on_vertical =
          (std::abs(c - 20) <= tol || std::abs(c - 28) <= tol) && rr >= 20 - tol && rr <= 29 + tol;
      const bool on_horizontal =
          (std::abs(rr - 20) <= tol || std::abs(rr - 29) <= tol) && c >= 20 - tol && c <= 28 + tol;
      EXPECT_TRUE(on_vertical || on_horizontal) << c << " " << rr;
    }
  }
  // The whole outline: B's perimeter is 34 cell edges, drawn 2 chip pixels wide.
  EXPECT_GT(yellow, 34 * static_cast<int>(f) * 2 * 9 / 10);
}

TEST_F(Patches, TheCoverJoinsCellsTheRulesSplit) {
  // A dig of about 5 cells: the rules call three cells bare soil and one vegetation loss, and
  // leave a half-covered edge cell unchanged; the cover says bare soil on all of them.
  std::vector<uint8_t> cls(kW * kH, 0);
  fill(cls, 10, 11, 10, 10, 2);
  fill(cls, 10, 10, 11, 11, 2);
  fill(cls, 11, 11, 11, 11, 5);
  std::vector<std::vector<uint8_t>> cover(6, std::vector<uint8_t>(kW * kH, 0));
  auto set = [&](int c, int r, int band, uint8_t v) {
    cover[static_cast<std::size_t>(band - 1)][static_cast<std::size_t>(r * kW + c)] = v;
  };
  set(10, 10, 2, 100), set(11, 10, 2, 90), set(10, 11, 2, 95), set(11, 11, 2, 80);
  set(12, 10, 2, 55), set(12, 11, 2, 30), set(10, 12, 2, 20);  // the edge: 55 joins, the rest not
  fill(cls, 30, 35, 30, 35, 255);                              // a cloud, far away
  for (auto& b : cover) fill(b, 30, 35, 30, 35, 255);
  test::write_raster<uint8_t>(dir_ / "split.tif", grid_, {cls}, {}, 255.0);
  test::write_raster<uint8_t>(dir_ / "split_cover.tif", grid_, cover, {}, 255.0);
  pipelines::PatchRun run;
  run.patches.change_class = dir_ / "split.tif";
  run.out_dir = dir_ / "split_hard";
  EXPECT_TRUE(pipelines::run_patches(run).set.patches.empty());  // 3 bare-soil cells: below
  run.patches.cover = dir_ / "split_cover.tif";
  run.out_dir = dir_ / "split_cover";
  const auto r = pipelines::run_patches(run);
  ASSERT_EQ(r.set.patches.size(), 1u);
  const auto& p = r.set.patches[0];
  EXPECT_EQ(p.category_code, 2);
  EXPECT_EQ(p.cells, 5);  // the four cells and the 55 % edge cell
  // Sub-pixel area: the bare-soil cover of the patch and its ring, 100 m2 cells.
  EXPECT_NEAR(p.area_m2, (100 + 90 + 95 + 80 + 55 + 30 + 20) * 1.0, 1e-9);
  EXPECT_EQ(p.id, "CP2-000010-000010");
}

TEST_F(Patches, ASmallChangeStaysWhenItsSubPixelAreaReachesTheUnit) {
  // Two new ponds of three cells each (the unit is four 100 m2 cells). Around the first, its
  // half-covered edge cells (under 50 %, so not patch cells) bring the sub-pixel area to 455 m2:
  // it stays. The second has no edge: 250 m2, sieved.
  std::vector<uint8_t> cls(kW * kH, 0);
  fill(cls, 40, 42, 10, 10, 3);
  fill(cls, 40, 42, 30, 30, 3);
  std::vector<std::vector<uint8_t>> cover(6, std::vector<uint8_t>(kW * kH, 0));
  auto set = [&](int c, int r, uint8_t v) {
    cover[2][static_cast<std::size_t>(r * kW + c)] = v;  // band 3: water gain
  };
  set(40, 10, 100), set(41, 10, 95), set(42, 10, 70);
  set(40, 9, 45), set(41, 9, 40), set(42, 9, 30), set(40, 11, 30), set(41, 11, 25), set(42, 11, 20);
  set(40, 30, 100), set(41, 30, 90), set(42, 30, 60);
  test::write_raster<uint8_t>(dir_ / "small.tif", grid_, {cls}, {}, 255.0);
  test::write_raster<uint8_t>(dir_ / "small_cover.tif", grid_, cover, {}, 255.0);
  pipelines::PatchRun run;
  run.patches.change_class = dir_ / "small.tif";
  run.out_dir = dir_ / "small_hard";
  const auto hard = pipelines::run_patches(run);
  EXPECT_TRUE(hard.set.patches.empty());  // whole cells only: both below the unit
  EXPECT_EQ(hard.set.sieved_cells, 6);
  run.patches.cover = dir_ / "small_cover.tif";
  run.out_dir = dir_ / "small_cover";
  const auto r = pipelines::run_patches(run);
  ASSERT_EQ(r.set.patches.size(), 1u);
  const auto& p = r.set.patches[0];
  EXPECT_EQ(p.category_code, 3);
  EXPECT_EQ(p.cells, 3);
  EXPECT_NEAR(p.area_m2, 100 + 95 + 70 + 45 + 40 + 30 + 30 + 25 + 20, 1e-9);
  EXPECT_EQ(p.id, "CP3-000010-000040");
  EXPECT_EQ(r.set.sieved_cells, 3);  // the second pond
  EXPECT_EQ(r.set.below_unit, 0);
}

TEST(PatchesTall, ClumpsTallerThanTheRowsKeptAreDrawnFromTheirBoxes) {
  // A serpentine of code 1 running down 300 rows and a tall thin cover-less column of code 2:
  // with a tiny memory budget only 64 rows are kept, so both are drawn after the pass from their
  // own boxes; the result must equal the run with every row kept.
  test::TempDir dir;
  const int64_t w = 40, h = 300;
  const Grid grid = test::utm_grid(w, h);
  std::vector<uint8_t> cls(static_cast<std::size_t>(w * h), 0), inten(cls.size(), 0);
  int64_t snake = 0;
  for (int64_t r = 0; r < h; ++r) {
    // Rows alternate between a run across columns 2..20 and a single link at its end.
    const bool across = r % 4 == 0;
    const int64_t link = (r / 4) % 2 == 0 ? 20 : 2;
    for (int64_t c = 2; c <= 20; ++c) {
      if (across || c == link) {
        cls[static_cast<std::size_t>(r * w + c)] = 1;
        inten[static_cast<std::size_t>(r * w + c)] = static_cast<uint8_t>(1 + r % 3);
        ++snake;
      }
    }
    cls[static_cast<std::size_t>(r * w + 30)] = 2;  // the column: 300 cells
  }
  test::write_raster<uint8_t>(dir / "tall.tif", grid, {cls}, {}, 255.0);
  test::write_raster<uint8_t>(dir / "tall_int.tif", grid, {inten}, {}, 255.0);
  pipelines::PatchRun run;
  run.patches.change_class = dir / "tall.tif";
  run.patches.intensity = dir / "tall_int.tif";
  run.out_dir = dir / "roomy";
  const auto roomy = pipelines::run_patches(run);
  SchedulerOptions tight;
  tight.memory_mib = 0.01;
  run.out_dir = dir / "tight";
  const auto r = pipelines::run_patches(run, tight);
  EXPECT_EQ(roomy.set.drawn_late, 0);
  EXPECT_EQ(r.set.drawn_late, 2);
  ASSERT_EQ(r.set.patches.size(), 2u);
  EXPECT_EQ(r.set.patches[0].cells, snake);
  EXPECT_EQ(r.set.patches[1].cells, h);
  EXPECT_EQ(r.set.patches[0].id, "CP1-000000-000002");
  EXPECT_EQ(r.set.patches[1].id, "CP2-000000-000030");
  EXPECT_NEAR(r.set.patches[0].pixel_area_m2, snake * 100.0, 1e-6);
  EXPECT_EQ(r.set.patches[0].intensity_max, 3);
  EXPECT_EQ(read_file(dir / "roomy/patches.csv"), read_file(dir / "tight/patches.csv"));
}

TEST_F(Patches, AdministrativeUnitsNameTheTownshipAndVillage) {
  // Two townships split at column 23: construction B (columns 20-27) lies mostly in the east, bare
  // soil C (columns 5-9) in the west. The parcels' own township fields are ignored then.
  write_layer(dir_ / "admin.gpkg", "units", 4490, {"code", "XZMC", "CJMC"},
              {{rect_wkt(0, 23, 0, 50), {"1", "西乡", "西村"}},
               {rect_wkt(23, 60, 0, 50), {"2", "东镇", "东村"}}});
  vectors::ParcelOptions ao;
  ao.file = dir_ / "admin.gpkg";
  const auto admin = vectors::load_parcels(ao, grid_);
  const auto p = parcels();
  pipelines::PatchRun r;
  r.patches.change_class = dir_ / "change_class.tif";
  r.patches.admin = &admin;
  r.patches.admin_township_field = "XZMC";
  r.patches.admin_village_field = "CJMC";
  r.parcels = &p;
  r.out_dir = dir_ / "admin_out";
  const auto res = pipelines::run_patches(r);
  const auto* b = find(res.set, "CP1-000020-000020");
  const auto* c = find(res.set, "CP2-000030-000005");
  ASSERT_TRUE(b && c);
  EXPECT_EQ(b->township, "东镇");
  EXPECT_EQ(b->village, "东村");
  EXPECT_EQ(c->township, "西乡");
  EXPECT_EQ(c->village, "西村");
}

TEST_F(Patches, BadInput) {
  // An all-unchanged raster: no patches, valid empty outputs.
  std::vector<uint8_t> none(kW * kH, 0);
  test::write_raster<uint8_t>(dir_ / "none.tif", grid_, {none}, {}, 255.0);
  pipelines::PatchRun run;
  run.patches.change_class = dir_ / "none.tif";
  run.out_dir = dir_ / "empty";
  const auto r = pipelines::run_patches(run);
  EXPECT_TRUE(r.set.patches.empty());
  DatasetPtr gj = open_vector(dir_ / "empty/patches.geojson");
  EXPECT_EQ(gj->GetLayer(0)->GetFeatureCount(), 0);
  EXPECT_EQ(read_file(dir_ / "empty/patches.csv").find('\n'),
            read_file(dir_ / "empty/patches.csv").size() - 1);
  // Zones without the sensitivity field: an error naming the field.
  write_layer(dir_ / "zones_bad.gpkg", "zones", 32650, {"zone_id", "name", "zone_type"},
              {{rect_wkt(3, 12, 28, 37), {"Z1", "红线", "ecological_red_line"}}});
  vectors::ZoneOptions zo;
  zo.layer.file = dir_ / "zones_bad.gpkg";
  try {
    vectors::load_zones(zo, grid_);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_TRUE(test::contains(e.what(), "sensitivity")) << e.what();
    EXPECT_TRUE(test::contains(e.what(), "zones_bad.gpkg")) << e.what();
  }
  // Not a class raster.
  std::vector<float> fl(kW * kH, 0.5f);
  test::write_raster<float>(dir_ / "float.tif", grid_, {fl});
  run.patches.change_class = dir_ / "float.tif";
  run.out_dir = dir_ / "bad";
  EXPECT_THROW(pipelines::run_patches(run), Error);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "bad/patches.csv"));
}

}  // namespace
}  // namespace fw
