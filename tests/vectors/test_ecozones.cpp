// Per-zone ecological indicators on hand-built rasters whose areas are known by construction,
// the alert rules, sensitivity levels and zones without valid pixels.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engine/error.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"
#include "vectors/ecozones.hpp"
#include "vectors/vector_writer.hpp"

namespace fw {
namespace {

TEST(EcoRules, ParseAndSensitivity) {
  const auto r = vectors::parse_eco_rule("warning: type in wetland|湿地, degraded_ha > 1");
  EXPECT_EQ(r.level, vectors::kEcoWarning);
  ASSERT_EQ(r.all.size(), 2u);
  EXPECT_EQ(r.all[0].members, (std::vector<std::string>{"wetland", "湿地"}));
  EXPECT_EQ(r.all[1].var, "degraded_ha");
  EXPECT_NO_THROW(vectors::parse_eco_rule("alarm: construction_m2 >= 100"));
  EXPECT_THROW(vectors::parse_eco_rule("P1: sensitivity > 2"), Error);
  EXPECT_THROW(vectors::parse_eco_rule("alarm: colour > 2"), Error);
  EXPECT_THROW(vectors::parse_eco_rule("alarm: degraded_ha > many"), Error);
  EXPECT_EQ(vectors::sensitivity_level("ecological_red_line", "", 2), 4);
  EXPECT_EQ(vectors::sensitivity_level("生态保护红线", "低", 2), 4);
  EXPECT_EQ(vectors::sensitivity_level("wetland", "高", 2), 3);
  EXPECT_EQ(vectors::sensitivity_level("wetland", "low", 2), 1);
  EXPECT_EQ(vectors::sensitivity_level("wetland", "3", 2), 3);
  EXPECT_EQ(vectors::sensitivity_level("wetland", "", 2), 2);
  EXPECT_EQ(vectors::sensitivity_level("wetland", "unknown", 0), 0);
}

// 100 x 100 pixels of 10 m. RSEI: 0.7 (good) in rows 0-49, 0.3 (fair) below. At date 2, block A
// (cols 0-9, rows 0-9) is 0.1 (poor: fell 3 grades, construction) and block B (cols 20-29,
// rows 60-69) 0.5 (moderate: rose 1). Column 99 has no data at date 2.
class ZoneScene : public ::testing::Test {
 protected:
  void SetUp() override {
    grid = test::utm_grid(100, 100);
    std::vector<float> f0(10000, 0.5f), f1(10000, 0.4f), r0(10000), r1(10000);
    std::vector<uint8_t> gc(10000, 5), cc(10000, 0);
    for (int64_t r = 0; r < 100; ++r) {
      for (int64_t c = 0; c < 100; ++c) {
        const std::size_t i = test::px(c, r, 100);
        r0[i] = r1[i] = r < 50 ? 0.7f : 0.3f;
        if (c < 10 && r < 10) r1[i] = 0.1f, gc[i] = 2, cc[i] = 2;
        if (c >= 20 && c < 30 && r >= 60 && r < 70) r1[i] = 0.5f, gc[i] = 6;
        if (c == 99) r1[i] = f1[i] = -9999.0f, gc[i] = 0, cc[i] = 255;
      }
    }
    test::write_raster<float>(dir / "fvc_t0.tif", grid, {f0}, {}, -9999.0);
    test::write_raster<float>(dir / "fvc_t1.tif", grid, {f1}, {}, -9999.0);
    test::write_raster<float>(dir / "rsei_t0.tif", grid, {r0}, {}, -9999.0);
    test::write_raster<float>(dir / "rsei_t1.tif", grid, {r1}, {}, -9999.0);
    test::write_raster<uint8_t>(dir / "gc.tif", grid, {gc}, {}, 0.0);
    test::write_raster<uint8_t>(dir / "cc.tif", grid, {cc}, {}, 255.0);
    // Zones: boxes on pixel edges (columns c0..c1, rows r0..r1, exclusive ends).
    auto box = [&](int c0, int r0_, int c1, int r1_) {
      const double x0 = test::kOriginX + 10.0 * c0, x1 = test::kOriginX + 10.0 * c1;
      const double y0 = test::kOriginY - 10.0 * r0_, y1 = test::kOriginY - 10.0 * r1_;
      char buf[256];
      std::snprintf(buf, sizeof buf, "POLYGON ((%f %f, %f %f, %f %f, %f %f, %f %f))", x0, y0, x1,
                    y0, x1, y1, x0, y1, x0, y0);
      return std::string(buf);
    };
    struct Z {
      const char *id, *type, *sens;
      std::string wkt;
    };
    const std::vector<Z> zs = {
        {"Z1", "ecological_red_line", "", box(0, 0, 20, 20)},  // block A inside
        {"Z2", "wetland", "高", box(0, 0, 15, 15)},            // block A inside
        {"Z3", "forest", "", box(20, 55, 40, 75)},             // block B inside
        {"Z4", "wetland", "low", box(300, 300, 310, 310)},     // outside the image
        {"Z5", "grassland", "medium", box(95, 80, 100, 90)},   // 1 of 5 columns without data
    };
    VectorWriter w(dir / "zones.gpkg", "GPKG");
    OGRLayer& l =
        w.add_layer("zones", grid.crs(), wkbPolygon,
                    {{"zone_id", OFTString}, {"zone_type", OFTString}, {"sensitivity", OFTString}});
    for (const auto& z : zs) {
      OGRFeature f(l.GetLayerDefn());
      f.SetField(0, z.id);
      f.SetField(1, z.type);
      f.SetField(2, z.sens);
      OGRGeometry* g = nullptr;
      OGRGeometryFactory::createFromWkt(z.wkt.c_str(), nullptr, &g);
      f.SetGeometryDirectly(g);
      w.write(l, f);
    }
    w.commit();
    vectors::ParcelOptions po;
    po.file = dir / "zones.gpkg";
    po.id_field = "zone_id";
    po.label = "zones";
    zones = vectors::load_parcels(po, grid);
    o.fvc = {dir / "fvc_t0.tif", dir / "fvc_t1.tif"};
    o.rsei = {dir / "rsei_t0.tif", dir / "rsei_t1.tif"};
    o.grade_change = dir / "gc.tif";
    o.change_class = dir / "cc.tif";
    o.category_names = {"", "vegetation_loss", "construction", "bare_soil"};
    o.grade_names = {"poor", "fair", "moderate", "good", "excellent"};
  }
  test::TempDir dir;
  Grid grid;
  vectors::ParcelSet zones;
  vectors::ZoneIndicatorOptions o;
};

TEST_F(ZoneScene, AreasPerGradeDegradedAndCategories) {
  const auto ind = vectors::zone_indicators(zones, o);
  auto v = [&](int z, const char* c) { return ind.value(static_cast<std::size_t>(z), c); };
  // Z1: 400 pixels, all good at t0; block A (100 px) poor at t1.
  EXPECT_NEAR(v(0, "area_m2"), 40000, 1e-6);
  EXPECT_NEAR(v(0, "valid_fraction"), 1.0, 1e-12);
  EXPECT_NEAR(v(0, "t0_good_m2"), 40000, 1e-6);
  EXPECT_NEAR(v(0, "t0_poor_m2"), 0, 1e-6);
  EXPECT_NEAR(v(0, "t1_good_m2"), 30000, 1e-6);
  EXPECT_NEAR(v(0, "t1_poor_m2"), 10000, 1e-6);
  EXPECT_NEAR(v(0, "degraded_m2"), 10000, 1e-6);
  EXPECT_NEAR(v(0, "improved_m2"), 0, 1e-6);
  EXPECT_NEAR(v(0, "degraded_share"), 0.25, 1e-12);
  EXPECT_NEAR(v(0, "construction_m2"), 10000, 1e-6);
  EXPECT_NEAR(v(0, "built_up_m2"), 10000, 1e-6);
  EXPECT_NEAR(v(0, "rsei_t0"), 0.7, 1e-6);
  EXPECT_NEAR(v(0, "rsei_t1"), (300 * 0.7 + 100 * 0.1) / 400, 1e-6);
  EXPECT_NEAR(v(0, "fvc_change"), -0.1, 1e-6);
  EXPECT_EQ(v(0, "sensitivity_level"), 4);
  EXPECT_EQ(ind.alert[0], vectors::kEcoAlarm);  // construction in a red line
  EXPECT_EQ(ind.rule[0], "alarm: sensitivity >= 4, built_up_m2 > 0");
  EXPECT_EQ(ind.rank[0], 1);
  // Z2: high sensitivity, construction inside: a warning.
  EXPECT_NEAR(v(1, "degraded_m2"), 10000, 1e-6);
  EXPECT_EQ(v(1, "sensitivity_level"), 3);
  EXPECT_EQ(ind.alert[1], vectors::kEcoWarning);
  EXPECT_EQ(ind.rank[1], 2);
  // Z3: rows 55-74, all fair at t0; block B (100 px) moderate at t1.
  EXPECT_NEAR(v(2, "t0_fair_m2"), 40000, 1e-6);
  EXPECT_NEAR(v(2, "t1_moderate_m2"), 10000, 1e-6);
  EXPECT_NEAR(v(2, "improved_m2"), 10000, 1e-6);
  EXPECT_NEAR(v(2, "degraded_m2"), 0, 1e-6);
  EXPECT_EQ(v(2, "sensitivity_level"), 2);  // no value: the default, medium
  EXPECT_EQ(ind.alert[2], vectors::kEcoNone);
  // Z4: outside: reported, not a crash.
  EXPECT_EQ(ind.cols.text_values[3][2], "outside the image");
  EXPECT_TRUE(std::isnan(v(3, "valid_fraction")));
  EXPECT_EQ(v(3, "degraded_m2"), 0);
  EXPECT_EQ(ind.alert[3], vectors::kEcoNone);
  // Z5: 50 pixels, 10 of them without data at date 2.
  EXPECT_NEAR(v(4, "area_in_image_m2"), 5000, 1e-6);
  EXPECT_NEAR(v(4, "valid_fraction"), 0.8, 1e-12);
  EXPECT_NEAR(v(4, "t1_fair_m2"), 4000, 1e-6);
  EXPECT_NEAR(v(4, "t0_fair_m2"), 5000, 1e-6);

  // The outputs: GeoJSON, GeoPackage layer "zones", CSV.
  vectors::write_zone_indicators(dir.path(), zones, ind, grid.crs());
  DatasetPtr g = open_vector(dir / "zones.gpkg");
  ASSERT_NE(g->GetLayerByName("zones"), nullptr);
  EXPECT_EQ(g->GetLayerByName("zones")->GetFeatureCount(), 5);
  DatasetPtr j = open_vector(dir / "zones.geojson");
  OGRLayer* jl = j->GetLayer(0);
  EXPECT_GE(jl->GetLayerDefn()->GetFieldIndex("eco_alert"), 0);
  EXPECT_GE(jl->GetLayerDefn()->GetFieldIndex("t1_poor_m2"), 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "zones.csv"));
}

TEST_F(ZoneScene, RulesAreData) {
  o.rules = {vectors::parse_eco_rule("warning: type in wetland|湿地, degraded_ha >= 1"),
             vectors::parse_eco_rule("watch: improved_m2 > 5000")};
  const auto ind = vectors::zone_indicators(zones, o);
  EXPECT_EQ(ind.alert[0], vectors::kEcoNone);     // a red line, but no such rule now
  EXPECT_EQ(ind.alert[1], vectors::kEcoWarning);  // the wetland lost 1 ha
  EXPECT_EQ(ind.alert[2], vectors::kEcoWatch);
  o.default_sensitivity = 0;
  o.rules = {vectors::parse_eco_rule("watch: sensitivity >= 1, improved_m2 > 0")};
  EXPECT_EQ(vectors::zone_indicators(zones, o).alert[2], vectors::kEcoNone);
}

}  // namespace
}  // namespace fw
