// Coverage fractions: the hand-checked 3 x 3 case, and random polygons (holes, multipolygons,
// slivers, crossing the raster edge, outside it) against GEOS's cell-by-cell intersection areas,
// point-in-polygon at the cell centres, and GEOS's intersects for all-touched.
#include <gtest/gtest.h>
#include <ogr_api.h>
#include <ogr_geometry.h>

#include <cmath>
#include <memory>

#include "engine/error.hpp"
#include "engine/hash.hpp"
#include "vectors/coverage.hpp"

namespace fw {
namespace {

using vectors::CoverageMode;
using vectors::PixelPolygon;

// Grid units = world units: the pixel (c, r) spans x in [c, c+1), y in [H - r - 1, H - r].
GeoTransform unit_gt(int64_t h) {
  return GeoTransform::north_up(0.0, static_cast<double>(h), 1.0, 1.0);
}

std::unique_ptr<OGRGeometry> wkt(const std::string& text) {
  OGRGeometry* g = nullptr;
  OGRGeometryFactory::createFromWkt(text.c_str(), nullptr, &g);
  return std::unique_ptr<OGRGeometry>(g);
}

std::unique_ptr<OGRPolygon> cell_square(const GeoTransform& gt, int64_t c, int64_t r) {
  double x0, y0, x1, y1;
  gt.pixel_to_world(static_cast<double>(c), static_cast<double>(r), x0, y0);
  gt.pixel_to_world(static_cast<double>(c + 1), static_cast<double>(r + 1), x1, y1);
  auto ring = std::make_unique<OGRLinearRing>();
  ring->addPoint(x0, y0);
  ring->addPoint(x1, y0);
  ring->addPoint(x1, y1);
  ring->addPoint(x0, y1);
  ring->closeRings();
  auto p = std::make_unique<OGRPolygon>();
  p->addRingDirectly(ring.release());
  return p;
}

std::vector<double> cover(const OGRGeometry& g, const GeoTransform& gt, const Window& w,
                          CoverageMode mode) {
  std::vector<double> out, scratch;
  vectors::coverage(PixelPolygon::from_ogr(g, gt), w, mode, out, scratch);
  return out;
}

TEST(Coverage, HandCheckedThreeByThree) {
  // exactextract's basic case: the square (0.5, 0.5)-(2.5, 2.5) over 3 x 3 unit cells.
  const auto g = wkt("POLYGON((0.5 0.5,2.5 0.5,2.5 2.5,0.5 2.5,0.5 0.5))");
  const auto f = cover(*g, unit_gt(3), {0, 0, 3, 3}, CoverageMode::kExact);
  const double want[9] = {0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25};
  for (int i = 0; i < 9; ++i) EXPECT_DOUBLE_EQ(f[static_cast<std::size_t>(i)], want[i]) << i;
  // Either orientation, and the same square as a hole in a larger one.
  const auto cw = wkt("POLYGON((0.5 0.5,0.5 2.5,2.5 2.5,2.5 0.5,0.5 0.5))");
  EXPECT_EQ(cover(*cw, unit_gt(3), {0, 0, 3, 3}, CoverageMode::kExact), f);
  const auto holed =
      wkt("POLYGON((-1 -1,4 -1,4 4,-1 4,-1 -1),(0.5 0.5,2.5 0.5,2.5 2.5,0.5 2.5,0.5 0.5))");
  const auto h = cover(*holed, unit_gt(3), {0, 0, 3, 3}, CoverageMode::kExact);
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(h[static_cast<std::size_t>(i)], 1 - want[i], 1e-15) << i;
  // Centre mode (a smaller square, so that no centre lies on its boundary): only the middle
  // cell's centre (1.5, 1.5) is inside; all touched: all nine.
  const auto small = wkt("POLYGON((0.6 0.6,2.4 0.6,2.4 2.4,0.6 2.4,0.6 0.6))");
  const auto c = cover(*small, unit_gt(3), {0, 0, 3, 3}, CoverageMode::kCenter);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(c[static_cast<std::size_t>(i)], i == 4 ? 1.0 : 0.0) << i;
  const auto t = cover(*g, unit_gt(3), {0, 0, 3, 3}, CoverageMode::kAllTouched);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(t[static_cast<std::size_t>(i)], 1.0) << i;
}

// A random star-shaped ring around (cx, cy) with n vertices and radii in [r0, r1].
std::string ring(Rng& rng, double cx, double cy, double r0, double r1, int n, bool reverse) {
  std::vector<std::pair<double, double>> pts;
  for (int i = 0; i < n; ++i) {
    const double a = 2 * M_PI * (i + 0.3 * rng.uniform()) / n, r = rng.uniform(r0, r1);
    pts.emplace_back(cx + r * std::cos(a), cy + r * std::sin(a));
  }
  if (reverse) std::reverse(pts.begin(), pts.end());
  pts.push_back(pts.front());
  std::string s = "(";
  for (std::size_t i = 0; i < pts.size(); ++i) {
    s += (i ? "," : "") + std::to_string(pts[i].first) + " " + std::to_string(pts[i].second);
  }
  return s + ")";
}

std::vector<std::string> random_shapes() {
  Rng rng(99);
  std::vector<std::string> out;
  for (int k = 0; k < 12; ++k) {
    // Centres across and beyond the 40 x 30 raster (some cross its edge, some lie outside).
    const double cx = rng.uniform(-8, 48), cy = rng.uniform(-8, 38);
    const double r = rng.uniform(0.7, 9);
    std::string p = "POLYGON(" + ring(rng, cx, cy, 0.5 * r, r, 5 + k * 3, k % 2);
    if (k % 3 == 0) p += "," + ring(rng, cx, cy, 0.1 * r, 0.35 * r, 7, k % 2 == 0);  // a hole
    out.push_back(p + ")");
  }
  // A multipolygon, a sliver a tenth of a cell wide and 20 long, a polygon larger than the
  // raster, and one entirely outside it.
  out.push_back(
      "MULTIPOLYGON(((1.2 1.3,6.7 2.1,4.4 7.9,1.2 1.3)),((20.5 20.5,27.3 21.1,26.2 "
      "28.4,20.5 20.5)))");
  out.push_back("POLYGON((3.33 10.01,23.33 12.01,23.36 12.11,3.33 10.11,3.33 10.01))");
  out.push_back("POLYGON((-5.5 -7.25,52.5 -6.5,51.5 40.5,-6.5 39.5,-5.5 -7.25))");
  out.push_back("POLYGON((60 60,70 60,70 70,60 60))");
  return out;
}

TEST(Coverage, RandomPolygonsEqualGeosCellIntersections) {
  const int64_t W = 40, H = 30;
  const GeoTransform gt = unit_gt(H);
  const Window full{0, 0, W, H};
  for (const std::string& text : random_shapes()) {
    const auto g = wkt(text);
    ASSERT_TRUE(g && g->IsValid()) << text;
    const auto f = cover(*g, gt, full, CoverageMode::kExact);
    const auto centre = cover(*g, gt, full, CoverageMode::kCenter);
    const auto touched = cover(*g, gt, full, CoverageMode::kAllTouched);
    double sum = 0, geos_sum = 0;
    for (int64_t r = 0; r < H; ++r) {
      for (int64_t c = 0; c < W; ++c) {
        const auto cell = cell_square(gt, c, r);
        std::unique_ptr<OGRGeometry> inter(g->Intersection(cell.get()));
        const double area = inter ? OGR_G_Area(OGRGeometry::ToHandle(inter.get())) : 0.0;
        const std::size_t i = static_cast<std::size_t>(r * W + c);
        EXPECT_NEAR(f[i], area, 1e-9) << text << " cell " << c << "," << r;
        sum += f[i];
        geos_sum += area;
        double x, y;
        gt.pixel_to_world(c + 0.5, r + 0.5, x, y);
        OGRPoint p(x, y);
        EXPECT_EQ(centre[i], g->Contains(&p) ? 1.0 : 0.0) << text << " cell " << c << "," << r;
        EXPECT_EQ(touched[i], g->Intersects(cell.get()) ? 1.0 : 0.0)
            << text << " cell " << c << "," << r;
      }
    }
    // Sum of fractions = the area inside the raster (pixel area 1).
    EXPECT_NEAR(sum, geos_sum, 1e-9 * std::max(1.0, geos_sum)) << text;
  }
}

TEST(Coverage, FractionsSumToTheAreaAndDoNotDependOnTheWindow) {
  const int64_t W = 40, H = 30;
  const GeoTransform gt = unit_gt(H);
  for (const std::string& text : random_shapes()) {
    const auto g = wkt(text);
    const PixelPolygon p = PixelPolygon::from_ogr(*g, gt);
    // Over its own bounding box (unclipped): the fractions sum to the polygon's area.
    const Window box = p.window({-1000, -1000, 3000, 3000});
    std::vector<double> f, scratch;
    vectors::coverage(p, box, CoverageMode::kExact, f, scratch);
    double sum = 0;
    for (double v : f) sum += v;
    EXPECT_NEAR(sum, OGR_G_Area(OGRGeometry::ToHandle(g.get())), 1e-9 * std::max(1.0, sum)) << text;
    EXPECT_NEAR(sum, p.area(), 1e-9 * std::max(1.0, sum)) << text;
    // Tiles of 7 x 5 cells give the same values as the whole raster at once.
    const Window full{0, 0, W, H};
    std::vector<double> whole;
    vectors::coverage(p, full, CoverageMode::kExact, whole, scratch);
    for (int64_t ty = 0; ty < H; ty += 5) {
      for (int64_t tx = 0; tx < W; tx += 7) {
        const Window t = Window{tx, ty, 7, 5}.intersection(full);
        std::vector<double> part;
        vectors::coverage(p, t, CoverageMode::kExact, part, scratch);
        for (int64_t r = 0; r < t.h; ++r) {
          for (int64_t c = 0; c < t.w; ++c) {
            EXPECT_NEAR(part[static_cast<std::size_t>(r * t.w + c)],
                        whole[static_cast<std::size_t>((t.y + r) * W + t.x + c)], 1e-12);
          }
        }
      }
    }
  }
}

TEST(Coverage, ModeNames) {
  EXPECT_EQ(vectors::parse_coverage_mode("all_touched"), CoverageMode::kAllTouched);
  EXPECT_STREQ(vectors::coverage_mode_name(CoverageMode::kCenter), "center");
  EXPECT_THROW(vectors::parse_coverage_mode("supersample"), Error);
}

}  // namespace
}  // namespace fw
