#include <gtest/gtest.h>

#include "engine/error.hpp"
#include "engine/grid.hpp"
#include "engine/hash.hpp"

namespace fw {
namespace {

TEST(GeoTransform, WorldPixelRoundTrip) {
  const GeoTransform gt = GeoTransform::north_up(399960.0, 3400020.0, 10.0, 10.0);
  Rng rng(42);
  for (int i = 0; i < 1000; ++i) {
    const double col = rng.uniform(-100, 11000), row = rng.uniform(-100, 11000);
    double x, y, c2, r2;
    gt.pixel_to_world(col, row, x, y);
    gt.world_to_pixel(x, y, c2, r2);
    EXPECT_NEAR(c2, col, 1e-9);
    EXPECT_NEAR(r2, row, 1e-9);
  }
  double x, y;
  gt.pixel_to_world(0, 0, x, y);
  EXPECT_DOUBLE_EQ(x, 399960.0);
  EXPECT_DOUBLE_EQ(y, 3400020.0);
  gt.pixel_to_world(10, 20, x, y);  // hand computed: 399960 + 100, 3400020 - 200
  EXPECT_DOUBLE_EQ(x, 400060.0);
  EXPECT_DOUBLE_EQ(y, 3399820.0);
}

TEST(GeoTransform, RotatedRoundTripWhenAllowed) {
  const double c[6] = {1000, 8.66, 5.0, 2000, 5.0, -8.66};
  const GeoTransform gt = GeoTransform::from_gdal(c, /*allow_rotated=*/true);
  double x, y, col, row;
  gt.pixel_to_world(12.5, 7.25, x, y);
  EXPECT_NEAR(x, 1000 + 12.5 * 8.66 + 7.25 * 5.0, 1e-9);
  gt.world_to_pixel(x, y, col, row);
  EXPECT_NEAR(col, 12.5, 1e-9);
  EXPECT_NEAR(row, 7.25, 1e-9);
}

TEST(GeoTransform, RotatedIsAClearError) {
  const double c[6] = {1000, 8.66, 5.0, 2000, 5.0, -8.66};
  try {
    GeoTransform::from_gdal(c);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(std::string(e.what()).find("rotated"), std::string::npos);
  }
  const double zero[6] = {0, 0, 0, 0, 0, 0};
  EXPECT_THROW(GeoTransform::from_gdal(zero), Error);
}

TEST(Window, IntersectionAndEdges) {
  const Window a{0, 0, 100, 50};
  EXPECT_EQ(a.intersection({90, 40, 20, 20}), (Window{90, 40, 10, 10}));
  EXPECT_TRUE(a.intersection({100, 0, 5, 5}).empty());
  EXPECT_TRUE(a.intersection({-10, -10, 10, 10}).empty());
  EXPECT_EQ(a.intersection({-10, -10, 11, 11}), (Window{0, 0, 1, 1}));
  EXPECT_EQ(a.pixels(), 5000);
  EXPECT_TRUE(a.contains(99, 49));
  EXPECT_FALSE(a.contains(100, 49));
}

TEST(Grid, ExtentAndWindowOfExtent) {
  const Grid g(GeoTransform::north_up(0, 1000, 10, 10), 100, 100);
  EXPECT_EQ(g.extent(), (Extent{0, 0, 1000, 1000}));
  // An extent inside pixel boundaries covers the pixels it touches.
  EXPECT_EQ(g.window_of({15, 905, 35, 995}), (Window{1, 0, 3, 10}));
  // Clipped at the raster edges.
  EXPECT_EQ(g.window_of({-50, -50, 25, 1500}), (Window{0, 0, 3, 100}));
  EXPECT_EQ(g.window_of({990, 0, 2000, 10}), (Window{99, 99, 1, 1}));
  // Outside: empty.
  EXPECT_TRUE(g.window_of({2000, 2000, 3000, 3000}).empty());
  EXPECT_EQ(g.extent_of({99, 99, 1, 1}), (Extent{990, 0, 1000, 10}));
}

TEST(Grid, CompatibilityWithTolerance) {
  const Crs utm = Crs::from_epsg(32650);
  const Grid a(GeoTransform::north_up(0, 1000, 10, 10), 100, 100, utm);
  EXPECT_TRUE(a.compatible_with(Grid(GeoTransform::north_up(50, 900, 10, 10), 30, 30, utm)));
  EXPECT_TRUE(a.compatible_with(Grid(GeoTransform::north_up(50 + 1e-8, 900, 10, 10), 30, 30, utm)));
  EXPECT_FALSE(a.compatible_with(Grid(GeoTransform::north_up(55, 900, 10, 10), 30, 30, utm)));
  EXPECT_FALSE(a.compatible_with(Grid(GeoTransform::north_up(50, 900, 20, 20), 30, 30, utm)));
  EXPECT_FALSE(a.compatible_with(
      Grid(GeoTransform::north_up(50, 900, 10, 10), 30, 30, Crs::from_epsg(32651))));
  EXPECT_TRUE(a.same_as(Grid(GeoTransform::north_up(0, 1000, 10, 10), 100, 100, utm)));
  EXPECT_FALSE(a.same_as(Grid(GeoTransform::north_up(10, 1000, 10, 10), 100, 100, utm)));
}

TEST(Grid, CommonGridIntersectionAndUnion) {
  const Crs utm = Crs::from_epsg(32650);
  const Grid a(GeoTransform::north_up(0, 1000, 10, 10), 100, 100, utm);
  const Grid b(GeoTransform::north_up(500, 800, 10, 10), 100, 100, utm);
  const Grid i = common_grid({a, b});
  EXPECT_EQ(i.extent(), (Extent{500, 0, 1000, 800}));
  EXPECT_EQ(i.width(), 50);
  EXPECT_EQ(i.height(), 80);
  const Grid u = common_grid({a, b}, GridUnion::kUnion);
  EXPECT_EQ(u.extent(), (Extent{0, -200, 1500, 1000}));
  EXPECT_EQ(u.width(), 150);
  const Grid far(GeoTransform::north_up(5000, 800, 10, 10), 10, 10, utm);
  EXPECT_THROW(common_grid({a, far}), Error);
  const Grid odd(GeoTransform::north_up(3, 800, 10, 10), 10, 10, utm);
  EXPECT_THROW(common_grid({a, odd}), Error);
}

TEST(Grid, SubgridKeepsLattice) {
  const Grid g(GeoTransform::north_up(100, 1000, 10, 10), 100, 100);
  const Grid s = g.subgrid({10, 20, 5, 5});
  EXPECT_DOUBLE_EQ(s.transform().c[0], 200.0);
  EXPECT_DOUBLE_EQ(s.transform().c[3], 800.0);
  int64_t dc, dr;
  g.offset_of(s, dc, dr);
  EXPECT_EQ(dc, 10);
  EXPECT_EQ(dr, 20);
}

}  // namespace
}  // namespace fw
