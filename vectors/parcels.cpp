#include "vectors/parcels.hpp"

#include <ogr_geometry.h>
#include <ogrsf_frmts.h>

#include <algorithm>
#include <map>
#include <memory>
#include <unordered_map>

#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/scheduler.hpp"

namespace fw::vectors {
namespace {

bool polygonal(OGRwkbGeometryType t) {
  t = wkbFlatten(t);
  return t == wkbPolygon || t == wkbMultiPolygon || t == wkbCurvePolygon || t == wkbMultiSurface;
}

bool valid_utf8(const std::string& s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t len = c < 0x80           ? 1
                            : (c >> 5) == 0x6  ? 2
                            : (c >> 4) == 0xE  ? 3
                            : (c >> 3) == 0x1E ? 4
                                               : 0;
    if (len == 0 || i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += len;
  }
  return true;
}

// The polygonal part of a geometry (after MakeValid a collection may also hold lines and
// points): a Polygon or MultiPolygon, or null.
GeometryPtr polygonal_part(GeometryPtr g) {
  if (!g || g->IsEmpty()) return nullptr;
  const OGRwkbGeometryType t = wkbFlatten(g->getGeometryType());
  if (t == wkbPolygon || t == wkbMultiPolygon) return g;
  if (t == wkbCurvePolygon || t == wkbMultiSurface) {
    return GeometryPtr(OGRGeometryFactory::forceToMultiPolygon(g.release()));
  }
  if (t == wkbGeometryCollection) {
    auto mp = std::make_unique<OGRMultiPolygon>();
    for (const OGRGeometry* part : *g->toGeometryCollection()) {
      const OGRwkbGeometryType pt = wkbFlatten(part->getGeometryType());
      if (pt == wkbPolygon) mp->addGeometry(part);
      if (pt == wkbMultiPolygon) {
        for (const OGRPolygon* q : *part->toMultiPolygon()) mp->addGeometry(q);
      }
    }
    if (mp->IsEmpty()) return nullptr;
    return mp;
  }
  return nullptr;
}

}  // namespace

ParcelSet load_parcels(const ParcelOptions& opt, const Grid& grid) {
  ErrorContext ctx{.file = opt.file};
  GdalOptions oo;
  if (!opt.encoding.empty()) oo.set("ENCODING", opt.encoding);
  CPLErrorReset();
  DatasetPtr ds(static_cast<GDALDataset*>(
      GDALOpenEx(opt.file.c_str(), GDAL_OF_VECTOR | GDAL_OF_READONLY, nullptr, oo.get(), nullptr)));
  if (!ds) {
    std::string why = last_gdal_error();
    throw_input("cannot open the " + opt.label + " file" + (why.empty() ? "" : ": " + why), ctx);
  }
  // The layer: by name, or the first non-empty polygon layer.
  OGRLayer* layer = nullptr;
  std::string names;
  for (int i = 0; i < ds->GetLayerCount(); ++i) {
    OGRLayer* l = ds->GetLayer(i);
    names += (names.empty() ? "" : ", ") + std::string(l->GetName());
    if (!opt.layer.empty()) {
      if (opt.layer == l->GetName()) layer = l;
      continue;
    }
    if (layer) continue;
    const OGRwkbGeometryType t = l->GetGeomType();
    const bool maybe_polygons =
        polygonal(t) || wkbFlatten(t) == wkbUnknown || wkbFlatten(t) == wkbGeometryCollection;
    if (maybe_polygons && l->GetFeatureCount(TRUE) > 0) {
      if (wkbFlatten(t) != wkbUnknown && wkbFlatten(t) != wkbGeometryCollection) {
        layer = l;
        continue;
      }
      // Untyped layer: look at the first feature with a geometry.
      l->ResetReading();
      for (FeaturePtr f(l->GetNextFeature()); f; f.reset(l->GetNextFeature())) {
        const OGRGeometry* g = f->GetGeometryRef();
        if (!g) continue;
        if (polygonal(g->getGeometryType())) layer = l;
        break;
      }
      l->ResetReading();
    }
  }
  if (!layer) {
    if (!opt.layer.empty()) {
      throw_input("no layer '" + opt.layer + "' (layers: " + names + ")", ctx);
    }
    throw_input(
        "no non-empty polygon layer" + (names.empty() ? std::string() : " (layers: " + names + ")"),
        ctx);
  }
  ctx.layer = layer->GetName();
  ParcelSet set;
  set.file = opt.file;
  set.layer = layer->GetName();
  const OGRSpatialReference* srs = layer->GetSpatialRef();
  // GeoPackage reports its placeholder systems for layers written without one.
  const bool undefined =
      srs && srs->GetName() && std::string(srs->GetName()).rfind("Undefined", 0) == 0;
  if (!opt.crs.empty()) {
    set.source_crs = Crs::from_user_input(opt.crs);
  } else if (!srs || undefined) {
    throw_input("the layer has no coordinate reference system: give it (for example EPSG:4527)",
                ctx);
  } else {
    set.source_crs = Crs::from_ogr(srs);
  }
  // Fields: the id, the land class, the rest passed through.
  OGRFeatureDefn* defn = layer->GetLayerDefn();
  int id_index = defn->GetFieldIndex(opt.id_field.c_str());
  if (id_index < 0 && !opt.id_field.empty() && opt.id_field != "parcel_id") {
    std::string fields;
    for (int i = 0; i < defn->GetFieldCount(); ++i)
      fields += (i ? ", " : "") + std::string(defn->GetFieldDefn(i)->GetNameRef());
    throw_input("no id field '" + opt.id_field + "' (fields: " + fields + ")",
                {.file = opt.file, .layer = set.layer, .field = opt.id_field});
  }
  set.id_field = id_index >= 0 ? opt.id_field : "";
  int class_index = -1;
  if (!opt.land_class_field.empty()) {
    class_index = defn->GetFieldIndex(opt.land_class_field.c_str());
    if (class_index < 0 && !opt.land_class_optional) {
      throw_input("no land-class field '" + opt.land_class_field + "'",
                  {.file = opt.file, .layer = set.layer, .field = opt.land_class_field});
    }
  }
  std::vector<int> pass;
  for (int i = 0; i < defn->GetFieldCount(); ++i) {
    if (i == id_index) continue;
    const OGRFieldDefn* fd = defn->GetFieldDefn(i);
    pass.push_back(i);
    const OGRFieldType t = fd->GetType();
    set.fields.push_back(
        {fd->GetNameRef(), t == OFTInteger || t == OFTInteger64 || t == OFTReal ? t : OFTString});
    if (!valid_utf8(fd->GetNameRef())) {
      throw_input(
          "field names are not valid UTF-8: give the file's encoding (for example --encoding GBK)",
          {.file = opt.file, .layer = set.layer});
    }
  }
  std::unique_ptr<OGRCoordinateTransformation> ct;
  if (!set.source_crs.same_as(grid.crs())) {
    ct.reset(OGRCreateCoordinateTransformation(set.source_crs.ogr(), grid.crs().ogr()));
    if (!ct) {
      throw_input(
          "cannot transform from " + set.source_crs.authority() + " to " + grid.crs().authority(),
          ctx);
    }
  }
  const Extent ext = grid.extent();
  const double unit_m = grid.crs().linear_units_m();
  std::unordered_map<std::string, int> seen;
  layer->ResetReading();
  CPLErrorReset();
  for (FeaturePtr f(layer->GetNextFeature()); f; f.reset(layer->GetNextFeature())) {
    ++set.report.features;
    Parcel p;
    p.fid = f->GetFID();
    p.id = id_index >= 0 ? f->GetFieldAsString(id_index) : std::to_string(p.fid);
    if (id_index >= 0 && !f->IsFieldSetAndNotNull(id_index)) p.id = std::to_string(p.fid);
    for (int i : pass) {
      std::string v = f->IsFieldSetAndNotNull(i) ? f->GetFieldAsString(i) : "";
      if (!valid_utf8(v)) {
        throw_input(
            "attribute text of feature " + std::to_string(p.fid) +
                " is not valid UTF-8: the file's encoding is not declared (a .cpg file) or "
                "is wrong; give it (for example --encoding GBK)",
            {.file = opt.file, .layer = set.layer, .field = defn->GetFieldDefn(i)->GetNameRef()});
      }
      p.attrs.push_back(std::move(v));
    }
    if (!valid_utf8(p.id)) {
      throw_input(
          "id of feature " + std::to_string(p.fid) + " is not valid UTF-8: give the encoding",
          {.file = opt.file, .layer = set.layer, .field = opt.id_field});
    }
    if (class_index >= 0) {
      const std::string v = f->GetFieldAsString(class_index);
      p.basic_farmland =
          std::find(opt.basic_farmland_values.begin(), opt.basic_farmland_values.end(), v) !=
          opt.basic_farmland_values.end();
    }
    GeometryPtr g(f->StealGeometry());
    if (!g || g->IsEmpty() || !polygonal(g->getGeometryType())) {
      // Null, empty, or not a polygon (points and lines are not parcels).
      if (g && !g->IsEmpty() && wkbFlatten(g->getGeometryType()) == wkbGeometryCollection) {
        g = polygonal_part(std::move(g));
      } else {
        g.reset();
      }
      if (!g) {
        ++set.report.dropped;
        continue;
      }
    }
    p.geom = std::move(g);
    set.parcels.push_back(std::move(p));
  }
  // Transform, validate and repair in parallel (each thread its own PROJ transformation; GEOS
  // contexts are per call), then count, drop and check ids serially in feature order.
  const std::size_t n = set.parcels.size();
  std::vector<char> failed(n, 0);
  constexpr std::size_t kChunk = 256;
  parallel_for_n((n + kChunk - 1) / kChunk, [&](std::size_t chunk) {
    std::unique_ptr<OGRCoordinateTransformation> local;
    if (ct) local.reset(ct->Clone());
    CPLPushErrorHandler(CPLQuietErrorHandler);  // GEOS explains invalidity as warnings
    for (std::size_t i = chunk * kChunk; i < std::min(n, (chunk + 1) * kChunk); ++i) {
      Parcel& q = set.parcels[i];
      GeometryPtr g = std::move(q.geom);
      if (local && g->transform(local.get()) != OGRERR_NONE) {
        failed[i] = 1;
        continue;
      }
      if (!g->IsValid()) {
        g = polygonal_part(GeometryPtr(g->MakeValid()));
        q.repaired = g != nullptr;
      } else {
        g = polygonal_part(std::move(g));
      }
      if (!g) continue;  // dropped
      q.multipart = wkbFlatten(g->getGeometryType()) == wkbMultiPolygon &&
                    g->toMultiPolygon()->getNumGeometries() > 1;
      OGREnvelope env;
      g->getEnvelope(&env);
      const Extent e{env.MinX, env.MinY, env.MaxX, env.MaxY};
      if (!e.intersects(ext)) {
        q.outside = true;
      } else if (e.xmin < ext.xmin || e.ymin < ext.ymin || e.xmax > ext.xmax || e.ymax > ext.ymax) {
        q.partly_outside = true;
      }
      q.area_m2 = OGR_G_Area(OGRGeometry::ToHandle(g.get())) * unit_m * unit_m;
      q.geom = std::move(g);
    }
    CPLPopErrorHandler();
  });
  std::vector<Parcel> kept;
  kept.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    Parcel& q = set.parcels[i];
    if (failed[i]) {
      throw_input("feature " + std::to_string(q.fid) + " cannot be transformed from the layer's " +
                      set.source_crs.authority() + " to the analysis grid's " +
                      grid.crs().authority() +
                      " (are its coordinates really in that system? give the right one)",
                  ctx);
    }
    if (!q.geom) {
      ++set.report.dropped;
      continue;
    }
    set.report.repaired += q.repaired;
    set.report.multipart += q.multipart;
    set.report.outside += q.outside;
    set.report.partly_outside += q.partly_outside;
    // Duplicate ids.
    const int k0 = ++seen[q.id];
    if (k0 > 1) {
      if (!opt.unique_ids) {
        throw_input("duplicate id '" + q.id + "' (feature " + std::to_string(q.fid) +
                        "); make ids unique or allow renaming",
                    {.file = opt.file,
                     .layer = set.layer,
                     .field = set.id_field.empty() ? "FID" : set.id_field});
      }
      std::string id;
      int k = k0;
      do {
        id = q.id + "-" + std::to_string(k++);
      } while (seen.count(id));
      seen[id] = 1;
      q.id = id;
      ++set.report.renamed;
    }
    kept.push_back(std::move(q));
  }
  set.parcels = std::move(kept);
  set.report.loaded = static_cast<int64_t>(set.parcels.size());
  log::info(opt.label + ": " + std::to_string(set.report.loaded) + " of " +
                std::to_string(set.report.features) + " features loaded from layer " + set.layer,
            {{"repaired", std::to_string(set.report.repaired)},
             {"dropped", std::to_string(set.report.dropped)},
             {"multipart", std::to_string(set.report.multipart)},
             {"outside", std::to_string(set.report.outside)},
             {"partly_outside", std::to_string(set.report.partly_outside)}});
  return set;
}

}  // namespace fw::vectors
