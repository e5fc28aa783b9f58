#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/atomic_file.hpp"
#include "engine/raster_io.hpp"
#include "pipelines/synth.hpp"
#include "rasters/change.hpp"
#include "tests/rasters/raster_fixtures.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

using json = nlohmann::json;
using rasters::ChangeCategory;

rasters::ImageryOptions date(const std::string& dir, int d, int buffer) {
  rasters::ImageryOptions o;
  o.files = {dir + "/date" + std::to_string(d) + ".tif"};
  o.mask.file = dir + "/date" + std::to_string(d) + "_scl.tif";
  o.mask.type = rasters::MaskType::kScl;
  o.mask.buffer = buffer;
  o.label = "date " + std::to_string(d);
  return o;
}

struct Scored {
  std::array<double, 7> f1{};
  double unchanged_flagged = 0;
  int64_t cloud_pixels = 0, cloud_pixels_nodata = 0;
  // Planted changes with at least 4 unmasked interior pixels, and those whose most frequent
  // changed class in the map is their category.
  int objects = 0, objects_found = 0;
};

// Per-category pixel F1 against truth.json (pixel centres inside each planted polygon); the mixed
// pixels on a polygon's edge (touched, centre outside) and no_data pixels are left out.
Scored score(const std::string& scene, const std::string& class_path) {
  DatasetPtr ds = open_raster(class_path);
  const Grid g = Grid::of(*ds);
  std::vector<uint8_t> cls;
  read_window(*ds, 1, g.full_window(), cls);
  const int64_t w = g.width(), h = g.height();
  std::vector<uint8_t> truth(cls.size(), 0), edge(cls.size(), 0);
  const json t = json::parse(read_file(scene + "/truth.json"));
  // Per planted change: its category and the map's classes over its (unmasked) interior pixels.
  std::vector<std::pair<uint8_t, std::map<int, int>>> objects;
  for (const auto& c : t["changes"]) {
    objects.push_back({static_cast<uint8_t>(rasters::parse_category(c["category"])), {}});
    OGRGeometry* geom = nullptr;
    const std::string wkt = c["wkt"];
    OGRGeometryFactory::createFromWkt(wkt.c_str(), nullptr, &geom);
    GeometryPtr owned(geom);
    OGREnvelope env;
    geom->getEnvelope(&env);
    const Window win = g.window_of({env.MinX, env.MinY, env.MaxX, env.MaxY});
    const auto cat = static_cast<uint8_t>(rasters::parse_category(c["category"]));
    for (int64_t r = win.y; r < win.y_end(); ++r) {
      for (int64_t q = win.x; q < win.x_end(); ++q) {
        double x, y;
        g.transform().pixel_to_world(static_cast<double>(q) + 0.5, static_cast<double>(r) + 0.5, x,
                                     y);
        OGRPoint p(x, y);
        const std::size_t i = static_cast<std::size_t>(r * w + q);
        if (geom->Contains(&p)) {
          truth[i] = cat;
          if (cls[i] != 255) objects.back().second[cls[i]] += 1;
        } else {
          const Extent e = g.extent_of({q, r, 1, 1});
          OGRPolygon sq;
          OGRLinearRing ring;
          ring.addPoint(e.xmin, e.ymin);
          ring.addPoint(e.xmax, e.ymin);
          ring.addPoint(e.xmax, e.ymax);
          ring.addPoint(e.xmin, e.ymax);
          ring.closeRings();
          sq.addRing(&ring);
          if (geom->Intersects(&sq)) edge[i] = 1;
        }
      }
    }
  }
  // Date-2 clouds and shadows from the SCL (20 m) must be no_data.
  DatasetPtr scl = open_raster(scene + "/date2_scl.tif");
  std::vector<uint8_t> s;
  read_window(*scl, 1, Grid::of(*scl).full_window(), s);
  const int64_t sw = Grid::of(*scl).width();
  Scored out;
  for (const auto& [cat, counts] : objects) {
    int n = 0, best = -1, best_n = 0;
    for (const auto& [k, v] : counts) {
      n += v;
      if (k != 0 && v > best_n) best = k, best_n = v;
    }
    if (n < 4) continue;
    ++out.objects;
    out.objects_found += best == cat;
  }
  std::array<int64_t, 7> tp{}, fp{}, fn{};
  int64_t unchanged = 0, flagged = 0;
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t q = 0; q < w; ++q) {
      const std::size_t i = static_cast<std::size_t>(r * w + q);
      const uint8_t code = s[static_cast<std::size_t>((r / 2) * sw + q / 2)];
      if (code == 3 || code == 8 || code == 9 || code == 10) {
        ++out.cloud_pixels;
        out.cloud_pixels_nodata += cls[i] == 255;
      }
      if (cls[i] == 255 || (edge[i] && truth[i] == 0)) continue;
      for (int k = 1; k < 7; ++k) {
        const bool m = cls[i] == k, tr = truth[i] == k;
        tp[static_cast<std::size_t>(k)] += m && tr;
        fp[static_cast<std::size_t>(k)] += m && !tr;
        fn[static_cast<std::size_t>(k)] += !m && tr;
      }
      if (truth[i] == 0) ++unchanged, flagged += cls[i] != 0;
    }
  }
  for (std::size_t k = 1; k < 7; ++k) {
    const double p = tp[k] / std::max(1.0, double(tp[k] + fp[k])),
                 rc = tp[k] / std::max(1.0, double(tp[k] + fn[k]));
    out.f1[k] = p + rc > 0 ? 2 * p * rc / (p + rc) : 0;
  }
  out.unchanged_flagged = static_cast<double>(flagged) / std::max<int64_t>(1, unchanged);
  return out;
}

class ChangeSynth : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ChangeSynth, CategoriesAgainstTheTruth) {
  test::TempDir d;
  synth::Options so;
  so.out = d.path();
  so.width = so.height = 1024;
  so.parcels = 500;
  so.seed = GetParam();
  synth::generate(so);
  const auto d1 = rasters::Imagery::open(date(d.path(), 1, 2));
  const auto d2 = rasters::Imagery::open(date(d.path(), 2, 2));
  const Grid grid = rasters::change_grid(d1, d2);
  rasters::ChangeOptions o;
  o.out_dir = d / "out";
  const auto r = rasters::detect_change(d1, d2, grid, o);
  const Scored s = score(d.path(), d / "out/change_class.tif");
  // Measured with the default rules (seed 11 / 12): construction 0.997 / 0.987, bare soil
  // 0.957 / 0.960, water gain 0.988 / 0.952, water loss 0.998 / 1.000, vegetation loss
  // 0.974 / 0.974, vegetation gain 0.997 / 0.995; issue 4 asks 0.9 for every category.
  for (std::size_t k = 1; k < 7; ++k) EXPECT_GE(s.f1[k], 0.9) << k;
  // Every planted change of at least 4 pixels is found with the right category.
  EXPECT_GT(s.objects, 30);
  EXPECT_EQ(s.objects_found, s.objects);
  EXPECT_LE(s.unchanged_flagged, 0.01);
  EXPECT_GT(s.cloud_pixels, 1000);
  EXPECT_EQ(s.cloud_pixels_nodata, s.cloud_pixels);  // clouds and shadows are no_data, not change
  // change_stats.json agrees with the counts.
  const json j = json::parse(read_file(d / "out/change_stats.json"));
  int64_t sum = 0;
  for (const auto& [name, c] : j["categories"].items()) sum += c["pixels"].get<int64_t>();
  EXPECT_EQ(sum, r.valid);
  EXPECT_EQ(j["valid_pixels"].get<int64_t>() + j["nodata_pixels"].get<int64_t>(), 1024 * 1024);
  EXPECT_EQ(j["method"], "diff");
  EXPECT_NEAR(j["categories"]["construction"]["area_mu"].get<double>(),
              j["categories"]["construction"]["pixels"].get<double>() * 100 / (10000.0 / 15), 1e-9);
  // The class raster carries its colour table, nodata 255, and is a COG.
  DatasetPtr cls = open_raster(d / "out/change_class.tif");
  EXPECT_NE(cls->GetRasterBand(1)->GetColorTable(), nullptr);
  int has = 0;
  EXPECT_EQ(cls->GetRasterBand(1)->GetNoDataValue(&has), 255);
  EXPECT_TRUE(has);
  EXPECT_STREQ(cls->GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE"), "COG");
}

INSTANTIATE_TEST_SUITE_P(Seeds, ChangeSynth, ::testing::Values(11u, 12u));

TEST(Change, RulesAreData) {
  const auto r = rasters::parse_rule("bare_soil: zndvi < -1, swir_ratio1 > 0.7");
  EXPECT_EQ(r.category, ChangeCategory::kBareSoil);
  ASSERT_EQ(r.all.size(), 2u);
  EXPECT_FALSE(r.all[0].greater);
  EXPECT_DOUBLE_EQ(r.all[1].value, 0.7);
  EXPECT_THROW(rasters::parse_rule("mining: zndvi < -1"), Error);
  EXPECT_THROW(rasters::parse_rule("bare_soil: wetness < 1"), Error);
  EXPECT_THROW(rasters::parse_rule("bare_soil zndvi < -1"), Error);
  EXPECT_THROW(rasters::parse_rule("bare_soil: zndvi < minus one"), Error);
}

TEST(Change, AllCloudDateIsAClearNoDataError) {
  test::TempDir d;
  synth::Options so;
  so.out = d.path();
  so.width = so.height = 256;
  so.parcels = 16;
  so.seed = 3;
  synth::generate(so);
  // Overwrite date 2's SCL with cloud everywhere.
  {
    DatasetPtr scl = open_raster(d / "date2_scl.tif", true);
    const Grid g = Grid::of(*scl);
    std::vector<uint8_t> v(static_cast<std::size_t>(g.width() * g.height()), 9);
    write_window(*scl, 1, g.full_window(), v);
    close_dataset(scl, d / "date2_scl.tif");
  }
  const auto d1 = rasters::Imagery::open(date(d.path(), 1, 0));
  const auto d2 = rasters::Imagery::open(date(d.path(), 2, 0));
  rasters::ChangeOptions o;
  o.out_dir = d / "out";
  try {
    rasters::detect_change(d1, d2, rasters::change_grid(d1, d2), o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kNoData);
    EXPECT_NE(std::string(e.what()).find("no pixel is valid at both dates"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(d / "out/change_class.tif"));
}

}  // namespace
}  // namespace fw

namespace fw {
namespace {

rasters::ImageryOptions real(const std::string& file, const std::string& sensor,
                             const std::string& bands, double scale, const std::string& label) {
  rasters::ImageryOptions o;
  o.files = {file};
  o.sensor = sensor;
  o.band_map = bands;
  o.scale = scale;
  o.label = label;
  return o;
}

// Sentinel-2 over coastal Tanzania, 2016-07-10 against 2018-07-25 (reflectance x 1000; 0 where
// cloud-masked): every pixel that is 0 in either date is no_data, and no other pixel is.
TEST(ChangeRealData, T37memMaskedPixelsAreNoData) {
  if (!test::have_shared_data()) GTEST_SKIP() << "no ../shared/data";
  const std::string dir = test::shared_data() + "/sentinel2_t37mem/";
  const std::string f0 = dir + "S2_T37MEM_20160710_sref_10b_20m.tif",
                    f1 = dir + "S2_T37MEM_20180725_sref_10b_20m.tif";
  const std::string bands = "blue=1,green=2,red=3,nir=7,swir1=9,swir2=10";
  const auto d0 = rasters::Imagery::open(real(f0, "sentinel2", bands, 0.001, "2016-07-10"));
  const auto d1 = rasters::Imagery::open(real(f1, "sentinel2", bands, 0.001, "2018-07-25"));
  test::TempDir out;
  rasters::ChangeOptions o;
  o.out_dir = out.path();
  const Grid grid = rasters::change_grid(d0, d1);
  const auto r = rasters::detect_change(d0, d1, grid, o);
  DatasetPtr cls = open_raster(out / "change_class.tif");
  std::vector<uint8_t> c;
  read_window(*cls, 1, grid.full_window(), c);
  DatasetPtr a = open_raster(f0), b = open_raster(f1);
  int64_t masked = 0, wrong = 0;
  // Pixel by pixel: no_data exactly where any band used is 0 at either date.
  std::vector<std::vector<uint16_t>> A, B;
  for (int band : {1, 2, 3, 7, 9, 10}) {
    A.emplace_back();
    B.emplace_back();
    read_window(*a, band, grid.full_window(), A.back());
    read_window(*b, band, grid.full_window(), B.back());
  }
  for (std::size_t i = 0; i < c.size(); ++i) {
    bool zero = false;
    for (std::size_t k = 0; k < A.size(); ++k) zero |= A[k][i] == 0 || B[k][i] == 0;
    masked += zero;
    wrong += zero != (c[i] == 255);
  }
  EXPECT_GT(masked, 1000);  // about 8 % of the 2018 date is cloud-masked
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(r.nodata, masked);
}

// Landsat-7 ETM+ digital numbers over Pennsylvanian farmland, July against November 2002: runs
// end to end and reports category areas that add up to the valid area.
TEST(ChangeRealData, Landsat7PennsylvaniaRunsEndToEnd) {
  if (!test::have_shared_data()) GTEST_SKIP() << "no ../shared/data";
  const std::string dir = test::shared_data() + "/landsat7_pennsylvania/";
  const std::string bands = "blue=1,green=2,red=3,nir=4,swir1=5,swir2=6";
  const auto d0 = rasters::Imagery::open(
      real(dir + "L7_p15r32_20020720_B123457.tif", "generic", bands, 1.0 / 255, "July"));
  const auto d1 = rasters::Imagery::open(
      real(dir + "L7_p15r32_20021125_B123457.tif", "generic", bands, 1.0 / 255, "November"));
  test::TempDir out;
  rasters::ChangeOptions o;
  o.out_dir = out.path();
  const auto r = rasters::detect_change(d0, d1, rasters::change_grid(d0, d1), o);
  const json j = json::parse(read_file(out / "change_stats.json"));
  double area = 0;
  for (const auto& [name, c] : j["categories"].items()) area += c["area_m2"].get<double>();
  EXPECT_NEAR(area, r.valid * 900.0, 1e-6);  // 30 m pixels
  EXPECT_EQ(r.valid, 300 * 300);
  // July to November over farmland: harvest and senescence lower NDVI across the scene. The
  // median NDVI difference reported equals the one computed here from the digital numbers.
  std::vector<double> d;
  DatasetPtr a = open_raster(dir + "L7_p15r32_20020720_B123457.tif");
  DatasetPtr b = open_raster(dir + "L7_p15r32_20021125_B123457.tif");
  std::vector<uint8_t> r0, n0, r1, n1;
  read_window(*a, 3, {0, 0, 300, 300}, r0);
  read_window(*a, 4, {0, 0, 300, 300}, n0);
  read_window(*b, 3, {0, 0, 300, 300}, r1);
  read_window(*b, 4, {0, 0, 300, 300}, n1);
  for (std::size_t i = 0; i < r0.size(); ++i) {
    d.push_back((double(n1[i]) - r1[i]) / (double(n1[i]) + r1[i]) -
                (double(n0[i]) - r0[i]) / (double(n0[i]) + r0[i]));
  }
  std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(d.size() / 2), d.end());
  const double median = d[d.size() / 2];
  EXPECT_LT(median, -0.2);
  EXPECT_NEAR(j["thresholds"]["ndvi"]["median"].get<double>(), median, 1e-3);  // to the bin width
  for (const auto& [name, t] : j["thresholds"].items())
    EXPECT_GT(t["threshold"].get<double>(), 0) << name;
  // Relative normalisation needs unchanged ground that both dates see alike; here the November
  // image has almost no contrast (blue: standard deviation 3 DN against 25 in July, inter-date
  // correlation 0.06), so it is refused with a clear error and nothing is written.
  test::TempDir out2;
  o.out_dir = out2.path();
  o.normalize = true;
  try {
    rasters::detect_change(d0, d1, rasters::change_grid(d0, d1), o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kNoData);
    EXPECT_TRUE(test::contains(e.what(), "not correlated")) << e.what();
  }
  EXPECT_TRUE(test::dir_entries(out2.path()).empty());
}

TEST(ChangeRealData, T37memNormalisationAndIrmad) {
  if (!test::have_shared_data()) GTEST_SKIP() << "no ../shared/data";
  const std::string dir = test::shared_data() + "/sentinel2_t37mem/";
  const std::string bands = "blue=1,green=2,red=3,nir=7,swir1=9,swir2=10";
  const auto d0 = rasters::Imagery::open(
      real(dir + "S2_T37MEM_20160710_sref_10b_20m.tif", "sentinel2", bands, 0.001, "2016"));
  const auto d1 = rasters::Imagery::open(
      real(dir + "S2_T37MEM_20180725_sref_10b_20m.tif", "sentinel2", bands, 0.001, "2018"));
  test::TempDir out;
  rasters::ChangeOptions o;
  o.out_dir = out.path();
  o.method = "irmad";
  o.normalize = true;
  const auto r = rasters::detect_change(d0, d1, rasters::change_grid(d0, d1), o);
  // Same season two years apart: the invariant pixels map date 2 onto date 1 with slopes near 1.
  EXPECT_TRUE(r.irmad_converged);
  EXPECT_GT(r.normalization.pixels, 500);
  for (std::size_t k = 0; k < 6; ++k) {
    EXPECT_GT(r.normalization.slope[k], 0.75) << k;
    EXPECT_LT(r.normalization.slope[k], 1.3) << k;
    EXPECT_GT(r.normalization.correlation[k], 0.5) << k;
  }
  // Canonical correlations ascending in [0, 1]; masked pixels stay no_data.
  for (std::size_t i = 1; i < r.canonical_correlations.size(); ++i)
    EXPECT_LE(r.canonical_correlations[i - 1], r.canonical_correlations[i]);
  EXPECT_EQ(r.nodata, 1918);
  EXPECT_TRUE(std::filesystem::exists(out / "irmad_no_change.tif"));
}

}  // namespace
}  // namespace fw
