#include <gtest/gtest.h>

#include "engine/crs.hpp"
#include "engine/error.hpp"

namespace fw {
namespace {

TEST(Crs, TraditionalAxisOrderForGeographic) {
  // EPSG:4326 is latitude-first by definition; we always use longitude first.
  const Crs wgs = Crs::from_epsg(4326);
  const Crs utm = Crs::from_epsg(32650);
  EXPECT_TRUE(wgs.is_geographic());
  EXPECT_TRUE(utm.is_projected());
  CoordTransform to_utm(wgs, utm);
  double x = 117.0, y = 30.0;  // lon, lat: the central meridian of zone 50
  to_utm.transform(x, y);
  EXPECT_NEAR(x, 500000.0, 1e-6);
  // Meridian arc length to 30 N on GRS80 (3320113.40 m) times k0 = 0.9996.
  EXPECT_NEAR(y, 3320113.398 * 0.9996, 0.01);
  CoordTransform back(utm, wgs);
  back.transform(x, y);
  EXPECT_NEAR(x, 117.0, 1e-9);
  EXPECT_NEAR(y, 30.0, 1e-9);
}

TEST(Crs, Cgcs2000Codes) {
  const Crs geo = Crs::from_user_input("EPSG:4490");
  EXPECT_EQ(geo.epsg(), 4490);
  const Crs gk = Crs::from_epsg(4527);  // CGCS2000 / 3-degree Gauss-Kruger zone 39
  EXPECT_TRUE(gk.is_projected());
  CoordTransform t(geo, gk);
  double x = 117.0, y = 30.0;
  t.transform(x, y);
  EXPECT_NEAR(x, 39500000.0, 1e-3);   // zone prefix 39, false easting 500 km
  EXPECT_NEAR(y, 3320113.398, 0.01);  // scale 1 on the central meridian: the arc length
}

TEST(Crs, UnknownIsAnInputError) {
  try {
    Crs::from_user_input("EPSG:999999");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(std::string(e.what()).find("EPSG:999999"), std::string::npos);
  }
}

TEST(Crs, EquivalenceIgnoresRepresentation) {
  const Crs a = Crs::from_epsg(32650);
  const Crs b = Crs::from_wkt(a.wkt());
  EXPECT_TRUE(a.same_as(b));
  EXPECT_EQ(b.epsg(), 32650);
  EXPECT_FALSE(a.same_as(Crs::from_epsg(32651)));
  EXPECT_TRUE(Crs().same_as(Crs()));
  EXPECT_FALSE(Crs().same_as(a));
}

}  // namespace
}  // namespace fw
