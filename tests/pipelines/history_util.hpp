// Helpers of the history tests: store locations (a GeoPackage, or a fresh PostgreSQL schema),
// planted runs, store dumps, filled-in verification files.
#pragma once

#include <gtest/gtest.h>
#include <ogrsf_frmts.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/grid.hpp"
#include "tests/test_util.hpp"
#include "vectors/indicators.hpp"
#include "vectors/patches.hpp"

namespace fw::test {

inline std::string pg_base() {
  const char* v = std::getenv("FW_TEST_PG");
  return v ? v : "";
}

inline DatasetPtr open_pg(const std::string& conn) {
  init_gdal();
  DatasetPtr ds(static_cast<GDALDataset*>(
      GDALOpenEx(conn.c_str(), GDAL_OF_VECTOR | GDAL_OF_UPDATE, nullptr, nullptr, nullptr)));
  if (!ds) ADD_FAILURE() << "FW_TEST_PG is set but PostgreSQL is unreachable: " << conn;
  return ds;
}

// "gpkg": a file in `dir`; "pg": a fresh schema in FW_TEST_PG's database ("" when unset).
inline std::string store_location(const std::string& kind, const TempDir& dir) {
  if (kind == "gpkg") return dir / "store.gpkg";
  const std::string base = pg_base();
  if (base.empty()) return "";
  static std::atomic<int> n{0};
  const std::string schema =
      "fwt_" + std::to_string(::getpid()) + "_" + std::to_string(n.fetch_add(1));
  DatasetPtr ds = open_pg(base);
  if (!ds) return "";
  ds->ExecuteSQL(("DROP SCHEMA IF EXISTS " + schema + " CASCADE").c_str(), nullptr, nullptr);
  ds->ExecuteSQL(("CREATE SCHEMA " + schema).c_str(), nullptr, nullptr);
  return base + " active_schema=" + schema;
}

inline void drop_store(const std::string& where) {
  const auto at = where.find(" active_schema=");
  if (where.rfind("PG:", 0) != 0 || at == std::string::npos) return;
  DatasetPtr ds = open_pg(where.substr(0, at));
  if (ds)
    ds->ExecuteSQL(("DROP SCHEMA IF EXISTS " + where.substr(at + 15) + " CASCADE").c_str(), nullptr,
                   nullptr);
}

// A fixture base giving each test a fresh store of the kind its parameter names ("gpkg" or
// "pg"), in where_; PostgreSQL cases skip when FW_TEST_PG is unset.
template <class Base>
class WithStore : public Base {
 protected:
  void SetUp() override {
    where_ = store_location(this->GetParam(), dir_);
    if (where_.empty()) GTEST_SKIP() << "FW_TEST_PG is not set: no PostgreSQL to test against";
  }
  void TearDown() override {
    if (!where_.empty()) drop_store(where_);
  }
  TempDir dir_;
  std::string where_;
};

// Every row of every table as text, sorted; without ids and clock times.
inline std::string dump_store(const std::string& where) {
  init_gdal();
  DatasetPtr ds(static_cast<GDALDataset*>(
      GDALOpenEx(where.c_str(), GDAL_OF_VECTOR, nullptr, nullptr, nullptr)));
  if (!ds) return "(cannot open " + where + ")";
  std::string out;
  for (const char* t : {"fw_meta", "fw_runs", "fw_tracks", "fw_observations", "fw_parcel_series",
                        "fw_verifications"}) {
    OGRLayer* l = ds->GetLayerByName(t);
    if (!l) {
      out += std::string(t) + ": absent\n";
      continue;
    }
    std::vector<std::string> rows;
    l->ResetReading();
    for (auto& f : *l) {
      std::string r;
      const std::string key = f->GetFieldIndex("key") >= 0 ? f->GetFieldAsString("key") : "";
      if (key == "created") continue;
      for (int i = 0; i < f->GetFieldCount(); ++i) {
        const std::string n = f->GetFieldDefnRef(i)->GetNameRef();
        if (n == "finished" || n == "imported" || n == "pipeline" || n == "run_key" ||
            n == "source")
          continue;
        r += n + "=" + (f->IsFieldSetAndNotNull(i) ? f->GetFieldAsString(i) : "null") + ";";
      }
      if (const OGRGeometry* g = f->GetGeometryRef()) {
        char* wkt = nullptr;
        g->exportToWkt(&wkt);
        r += std::string("geom=") + wkt;
        CPLFree(wkt);
      }
      rows.push_back(r);
    }
    std::sort(rows.begin(), rows.end());
    out += std::string(t) + ": " + std::to_string(rows.size()) + " rows\n";
    for (const auto& r : rows) out += "  " + r + "\n";
  }
  return out;
}

// One date of the planted sequence (see test_history.cpp): its patches on a 120 x 120 grid of
// 10 m cells, its change map (clouds as no-data) and three parcels.
struct Planted {
  std::string date;
  vectors::PatchSet set;
  std::string change_class;
  vectors::ParcelSet parcels;
  vectors::Indicators indicators;
};

inline GeometryPtr square(const Grid& g, int col, int row, int w, int h) {
  double x0, y0, x1, y1;
  g.transform().pixel_to_world(col, row, x0, y0);
  g.transform().pixel_to_world(col + w, row + h, x1, y1);
  auto ring = std::make_unique<OGRLinearRing>();
  ring->addPoint(x0, y0);
  ring->addPoint(x1, y0);
  ring->addPoint(x1, y1);
  ring->addPoint(x0, y1);
  ring->addPoint(x0, y0);
  auto poly = std::make_unique<OGRPolygon>();
  poly->addRingDirectly(ring.release());
  return GeometryPtr(poly.release());
}

inline Planted planted_run(int k, const TempDir& dir) {
  Planted p;
  const char* dates[] = {"", "2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"};
  p.date = dates[k];
  const Grid grid(GeoTransform::north_up(500000, 3400000, 10, 10), 120, 120, Crs::from_epsg(32650));
  p.set.grid = grid;
  struct S {
    const char* id;
    const char* category;
    int priority, col, row, w, h;
  };
  std::vector<S> v;
  if (k == 1)
    v = {{"A", "construction", 2, 10, 10, 10, 10},
         {"C", "bare_soil", 1, 10, 60, 10, 10},
         {"D", "water_gain", 3, 90, 10, 6, 6},
         {"F1", "vegetation_gain", 3, 90, 60, 5, 10},
         {"F2", "vegetation_gain", 3, 96, 60, 5, 10}};
  if (k == 2)
    v = {{"A", "construction", 2, 10, 10, 10, 20},
         {"B", "vegetation_loss", 3, 60, 60, 8, 8},
         {"C", "construction", 1, 10, 60, 10, 10},
         {"F", "vegetation_gain", 3, 90, 60, 11, 10}};
  if (k == 3)
    v = {{"A", "construction", 2, 10, 10, 10, 20},
         {"C", "construction", 1, 10, 60, 10, 10},
         {"F", "vegetation_gain", 3, 90, 60, 11, 10}};
  if (k == 4)
    v = {{"B", "vegetation_loss", 3, 60, 60, 8, 8}, {"C", "construction", 1, 10, 60, 10, 10}};
  for (const auto& s : v) {
    vectors::Patch q;
    q.id = s.id;
    q.category = s.category;
    q.priority = s.priority;
    q.cells = static_cast<int64_t>(s.w) * s.h;
    q.area_m2 = static_cast<double>(q.cells) * 100.0;
    q.geom = square(grid, s.col, s.row, s.w, s.h);
    p.set.patches.push_back(std::move(q));
  }
  // The change map: everything observed, but clouds over cols and rows 50..80 in run 3.
  p.change_class = dir / ("class" + std::to_string(k) + ".tif");
  {
    init_gdal();
    DatasetPtr ds(driver("GTiff").Create(p.change_class.c_str(), 120, 120, 1, GDT_Byte, nullptr));
    double gt[6];
    std::copy(grid.transform().c.begin(), grid.transform().c.end(), gt);
    ds->SetGeoTransform(gt);
    ds->SetProjection(grid.crs().wkt().c_str());
    std::vector<uint8_t> px(120 * 120, 0);
    if (k == 3) {
      for (int r = 50; r < 80; ++r)
        for (int c = 50; c < 80; ++c) px[static_cast<std::size_t>(r * 120 + c)] = 255;
    }
    GDALRasterBand* b = ds->GetRasterBand(1);
    b->SetNoDataValue(255);
    if (b->RasterIO(GF_Write, 0, 0, 120, 120, px.data(), 120, 120, GDT_Byte, 0, 0) != CE_None)
      ADD_FAILURE() << "cannot write " << p.change_class;
  }
  // Parcels P1..P3; P2 lies under the run-3 clouds.
  p.indicators.columns = vectors::indicator_columns();
  const auto& cols = p.indicators.columns;
  const auto col = [&](const char* n) {
    return static_cast<std::size_t>(std::find(cols.begin(), cols.end(), n) - cols.begin());
  };
  for (int i = 1; i <= 3; ++i) {
    vectors::Parcel pa;
    pa.id = "P" + std::to_string(i);
    pa.geom = square(grid, 30 * i, 55, 20, 20);
    pa.area_m2 = 40000;
    p.parcels.parcels.push_back(std::move(pa));
    std::vector<double> row(cols.size(), std::nan(""));
    row[col("valid_fraction_t0")] = 1.0;
    row[col("valid_fraction_t1")] = k == 3 && i == 2 ? 0.1 : 1.0;
    row[col("ndvi_mean_t1")] = 0.5 + 0.1 * k;
    p.indicators.rows.push_back(row);
    p.indicators.alert.push_back(0);
    p.indicators.flags.push_back("");
  }
  return p;
}

// A copy of an exported verification file with some rows filled in: track id -> result, legal,
// verified_by, verified_at, remarks. Ids not in the file are appended as rows of their own.
inline void fill_verification(const std::string& in, const std::string& out,
                              std::map<std::string, std::array<std::string, 5>> rows) {
  DatasetPtr src = open_vector(in);
  OGRLayer* l = src->GetLayer(0);
  DatasetPtr dst(driver("GeoJSON").Create(out.c_str(), 0, 0, 0, GDT_Unknown, nullptr));
  OGRLayer* o = dst->CreateLayer("verification", l->GetSpatialRef(), wkbMultiPolygon, nullptr);
  OGRFeatureDefn* d = l->GetLayerDefn();
  for (int i = 0; i < d->GetFieldCount(); ++i) o->CreateField(d->GetFieldDefn(i));
  const char* names[] = {"verification_result", "legal", "verified_by", "verified_at", "remarks"};
  auto fill = [&](OGRFeature& f, const std::array<std::string, 5>& v) {
    for (int k = 0; k < 5; ++k) {
      if (!v[static_cast<std::size_t>(k)].empty())
        f.SetField(names[k], v[static_cast<std::size_t>(k)].c_str());
    }
  };
  l->ResetReading();
  for (auto& f : *l) {
    OGRFeature g(o->GetLayerDefn());
    g.SetFrom(f.get());
    const auto it = rows.find(f->GetFieldAsString("track_id"));
    if (it != rows.end()) {
      fill(g, it->second);
      rows.erase(it);
    }
    EXPECT_EQ(o->CreateFeature(&g), OGRERR_NONE);
  }
  for (const auto& [id, v] : rows) {
    OGRFeature g(o->GetLayerDefn());
    g.SetField("track_id", id.c_str());
    fill(g, v);
    EXPECT_EQ(o->CreateFeature(&g), OGRERR_NONE);
  }
}

// A case written the way a version-1 store held it.
inline void insert_v1_track(const std::string& where, const std::string& id) {
  DatasetPtr ds = where.rfind("PG:", 0) == 0 ? open_pg(where) : open_vector(where, true);
  OGRLayer* l = ds->GetLayerByName("fw_tracks");
  ASSERT_NE(l, nullptr);
  OGRFeature f(l->GetLayerDefn());
  f.SetField("track_id", id.c_str());
  f.SetField("is_open", 1);
  f.SetField("first_seen", 2025, 1, 1);
  const Grid grid(GeoTransform::north_up(500000, 3400000, 10, 10), 120, 120, Crs::from_epsg(32650));
  GeometryPtr g(OGRGeometryFactory::forceToMultiPolygon(square(grid, 1, 1, 2, 2).release()));
  f.SetGeometry(g.get());
  ASSERT_EQ(l->CreateFeature(&f), OGRERR_NONE);
}

inline void set_schema_version(const std::string& where, int v) {
  DatasetPtr ds = where.rfind("PG:", 0) == 0 ? open_pg(where) : open_vector(where, true);
  OGRLayer* l = ds->GetLayerByName("fw_meta");
  ASSERT_NE(l, nullptr);
  l->ResetReading();
  for (auto& f : *l) {
    if (std::string(f->GetFieldAsString("key")) == "schema_version") {
      f->SetField("value", std::to_string(v).c_str());
      ASSERT_EQ(l->SetFeature(f.get()), OGRERR_NONE);
    }
  }
}

}  // namespace fw::test
