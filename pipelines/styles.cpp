#include "pipelines/styles.hpp"

#include <ogrsf_frmts.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <vector>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/log.hpp"

namespace fw::pipelines {
namespace {

namespace fs = std::filesystem;

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

const char* kHead =
    "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
    "<qgis version=\"3.28.0\" styleCategories=\"Symbology\">\n";

struct Category {
  std::string value, label;
  int r, g, b, fill_alpha;
};

std::string categorized(const std::string& field, const std::vector<Category>& cats) {
  std::string s = kHead;
  s += "  <renderer-v2 type=\"categorizedSymbol\" attr=\"" + field +
       "\" symbollevels=\"0\" enableorderby=\"0\" forceraster=\"0\">\n    <categories>\n";
  for (std::size_t i = 0; i < cats.size(); ++i) {
    s += "      <category value=\"" + xml_escape(cats[i].value) + "\" symbol=\"" +
         std::to_string(i) + "\" label=\"" + xml_escape(cats[i].label) + "\" render=\"true\"/>\n";
  }
  s += "    </categories>\n    <symbols>\n";
  for (std::size_t i = 0; i < cats.size(); ++i) {
    const auto& c = cats[i];
    char fill[64], line[64];
    std::snprintf(fill, sizeof fill, "%d,%d,%d,%d", c.r, c.g, c.b, c.fill_alpha);
    std::snprintf(line, sizeof line, "%d,%d,%d,255", c.r, c.g, c.b);
    s += "      <symbol type=\"fill\" name=\"" + std::to_string(i) +
         "\" alpha=\"1\" clip_to_extent=\"1\" force_rhr=\"0\">\n"
         "        <layer class=\"SimpleFill\" enabled=\"1\" locked=\"0\" pass=\"0\">\n"
         "          <prop k=\"color\" v=\"" +
         fill +
         "\"/>\n"
         "          <prop k=\"style\" v=\"solid\"/>\n"
         "          <prop k=\"outline_color\" v=\"" +
         line +
         "\"/>\n"
         "          <prop k=\"outline_style\" v=\"solid\"/>\n"
         "          <prop k=\"outline_width\" v=\"0.6\"/>\n"
         "          <prop k=\"outline_width_unit\" v=\"MM\"/>\n"
         "        </layer>\n      </symbol>\n";
  }
  s += "    </symbols>\n  </renderer-v2>\n  <blendMode>0</blendMode>\n</qgis>\n";
  return s;
}

void add_gpkg_styles(const std::string& gpkg,
                     const std::vector<std::pair<std::string, std::string>>& styles) {
  DatasetPtr ds(static_cast<GDALDataset*>(
      GDALOpenEx(gpkg.c_str(), GDAL_OF_VECTOR | GDAL_OF_UPDATE, nullptr, nullptr, nullptr)));
  if (!ds) throw_output("cannot open for update", {.file = gpkg});
  OGRLayer* st = ds->GetLayerByName("layer_styles");
  if (!st) {
    st = ds->CreateLayer("layer_styles", nullptr, wkbNone, nullptr);
    if (!st) throw_output("cannot create the layer_styles table", {.file = gpkg});
    for (const char* f : {"f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column",
                          "styleName", "styleQML", "styleSLD", "description", "owner", "ui"}) {
      OGRFieldDefn d(f, OFTString);
      st->CreateField(&d);
    }
    OGRFieldDefn def("useAsDefault", OFTInteger);
    def.SetSubType(OFSTBoolean);
    st->CreateField(&def);
  }
  for (const auto& [layer, qml] : styles) {
    OGRLayer* l = ds->GetLayerByName(layer.c_str());
    if (!l) continue;
    OGRFeature f(st->GetLayerDefn());
    f.SetField("f_table_catalog", "");
    f.SetField("f_table_schema", "");
    f.SetField("f_table_name", layer.c_str());
    f.SetField("f_geometry_column", l->GetGeometryColumn());
    f.SetField("styleName", layer.c_str());
    f.SetField("styleQML", qml.c_str());
    f.SetField("styleSLD", "");
    f.SetField("description", "farmwatch default style");
    f.SetField("owner", "");
    f.SetField("ui", "");
    f.SetField("useAsDefault", 1);
    if (st->CreateFeature(&f) != OGRERR_NONE)
      throw_output("cannot write the style of layer " + layer, {.file = gpkg});
  }
}

}  // namespace

std::string raster_palette_qml(const std::string& raster) {
  DatasetPtr ds = open_raster(raster);
  GDALRasterBand* b = ds->GetRasterBand(1);
  const GDALColorTable* ct = b->GetColorTable();
  if (!ct) throw_input("no colour table to style", {.file = raster});
  // Labels: GDAL's category names, else the CLASS_NAMES metadata item ("1=name;2=name").
  std::vector<std::string> labels;
  if (char** names = b->GetCategoryNames()) {
    for (int k = 0; names[k]; ++k) labels.emplace_back(names[k]);
  } else if (const char* m = ds->GetMetadataItem("CLASS_NAMES")) {
    std::stringstream ss(m);
    std::string item;
    while (std::getline(ss, item, ';')) {
      const auto eq = item.find('=');
      if (eq == std::string::npos) continue;
      const auto k = static_cast<std::size_t>(std::atoi(item.substr(0, eq).c_str()));
      if (k >= labels.size()) labels.resize(k + 1);
      labels[k] = item.substr(eq + 1);
    }
  }
  int has_nd = 0;
  const double nd = b->GetNoDataValue(&has_nd);
  std::string s = kHead;
  s += "  <pipe>\n    <rasterrenderer type=\"paletted\" band=\"1\" opacity=\"1\" "
       "alphaBand=\"-1\" nodataColor=\"\">\n      <rasterTransparency/>\n      <colorPalette>\n";
  for (int v = 0; v < ct->GetColorEntryCount(); ++v) {
    if (has_nd && v == static_cast<int>(nd)) continue;
    const std::string label =
        static_cast<std::size_t>(v) < labels.size() ? labels[static_cast<std::size_t>(v)] : "";
    if (label.empty()) continue;  // unused codes
    const GDALColorEntry* e = ct->GetColorEntry(v);
    char col[16];
    std::snprintf(col, sizeof col, "#%02x%02x%02x", e->c1, e->c2, e->c3);
    s += "        <paletteEntry value=\"" + std::to_string(v) + "\" color=\"" + col +
         "\" alpha=\"" + std::to_string(e->c4) + "\" label=\"" + xml_escape(label) + "\"/>\n";
  }
  s += "      </colorPalette>\n    </rasterrenderer>\n"
       "    <brightnesscontrast brightness=\"0\" contrast=\"0\" gamma=\"1\"/>\n"
       "    <rasterresampler maxOversampling=\"2\"/>\n  </pipe>\n  <blendMode>0</blendMode>\n"
       "</qgis>\n";
  return s;
}

std::string patches_qml() {
  return categorized("priority", {{"P1", "P1 (most urgent)", 215, 25, 28, 110},
                                  {"P2", "P2", 253, 141, 60, 90},
                                  {"P3", "P3", 255, 215, 0, 60}});
}

std::string parcels_qml() {
  return categorized("alert_level", {{"alarm", "alarm", 215, 25, 28, 120},
                                     {"warning", "warning", 253, 141, 60, 100},
                                     {"watch", "watch", 255, 215, 0, 80},
                                     {"none", "no alert", 120, 160, 90, 0}});
}

// A discrete pseudocolour style: each class up to (below) its `upper` value.
std::string discrete_qml(const std::vector<std::pair<double, Category>>& classes) {
  std::string s = kHead;
  s += "  <pipe>\n    <rasterrenderer type=\"singlebandpseudocolor\" band=\"1\" opacity=\"1\" "
       "alphaBand=\"-1\" classificationMin=\"0\" classificationMax=\"1\" nodataColor=\"\">\n"
       "      <rasterTransparency/>\n      <rastershader>\n"
       "        <colorrampshader colorRampType=\"DISCRETE\" classificationMode=\"1\" "
       "clip=\"0\">\n";
  for (const auto& [upper, c] : classes) {
    char col[16];
    std::snprintf(col, sizeof col, "#%02x%02x%02x", c.r, c.g, c.b);
    const std::string v = std::isinf(upper) ? "inf" : c.value;
    s += "          <item value=\"" + v + "\" color=\"" + col + "\" alpha=\"255\" label=\"" +
         xml_escape(c.label) + "\"/>\n";
  }
  s += "        </colorrampshader>\n      </rastershader>\n    </rasterrenderer>\n"
       "    <brightnesscontrast brightness=\"0\" contrast=\"0\" gamma=\"1\"/>\n"
       "    <rasterresampler maxOversampling=\"2\"/>\n  </pipe>\n  <blendMode>0</blendMode>\n"
       "</qgis>\n";
  return s;
}

// Five grades with their names, from the breaks stored in the raster's metadata.
std::string grades_qml(const std::string& tif, const char* key,
                       const std::array<const char*, 5>& labels,
                       const std::array<std::array<int, 3>, 5>& colors) {
  DatasetPtr ds = open_raster(tif);
  const char* m = ds->GetMetadataItem(key);
  std::vector<double> br;
  if (m) {
    std::stringstream ss(m);
    std::string item;
    while (std::getline(ss, item, ',')) br.push_back(std::strtod(item.c_str(), nullptr));
  }
  if (br.size() != 4) br = {0.2, 0.4, 0.6, 0.8};
  br.push_back(std::numeric_limits<double>::infinity());
  std::vector<std::pair<double, Category>> classes;
  for (std::size_t k = 0; k < 5; ++k) {
    char v[32];
    std::snprintf(v, sizeof v, "%.10g", br[k]);
    classes.push_back({br[k], {v, labels[k], colors[k][0], colors[k][1], colors[k][2], 255}});
  }
  return discrete_qml(classes);
}

std::string zones_qml() {
  return categorized("eco_alert", {{"alarm", "alarm", 215, 25, 28, 120},
                                   {"warning", "warning", 253, 141, 60, 100},
                                   {"watch", "watch", 255, 215, 0, 80},
                                   {"none", "no alert", 60, 140, 60, 40}});
}

void write_styles(const std::string& dir) {
  static const std::array<std::array<int, 3>, 5> ramp = {
      {{215, 48, 39}, {252, 141, 89}, {254, 224, 139}, {145, 207, 96}, {26, 152, 80}}};
  for (const char* t : {"t0", "t1"}) {
    const std::string rsei = dir + "/rsei_" + std::string(t) + ".tif";
    if (fs::exists(rsei))
      write_file_atomic(dir + "/rsei_" + std::string(t) + ".qml",
                        grades_qml(rsei, "GRADE_BREAKS",
                                   {"poor", "fair", "moderate", "good", "excellent"}, ramp));
    const std::string fvc = dir + "/fvc_" + std::string(t) + ".tif";
    if (fs::exists(fvc))
      write_file_atomic(dir + "/fvc_" + std::string(t) + ".qml",
                        grades_qml(fvc, "LEVEL_BREAKS",
                                   {"very low", "low", "medium", "medium-high", "high"}, ramp));
  }
  if (fs::exists(dir + "/slope.tif")) {
    write_file_atomic(dir + "/slope.qml",
                      discrete_qml({{6, {"6", "0-6 degrees", 255, 255, 204, 255}},
                                    {15, {"15", "6-15 degrees", 161, 218, 180, 255}},
                                    {25, {"25", "15-25 degrees", 65, 182, 196, 255}},
                                    {std::numeric_limits<double>::infinity(),
                                     {"inf", "above 25 degrees", 37, 52, 148, 255}}}));
  }
  if (fs::exists(dir + "/zones.geojson")) write_file_atomic(dir + "/zones.qml", zones_qml());
  for (const char* r : {"change_class", "change_intensity", "rsei_grade_change"}) {
    const std::string tif = dir + "/" + r + ".tif";
    if (!fs::exists(tif)) continue;
    DatasetPtr ds = open_raster(tif);
    if (!ds->GetRasterBand(1)->GetColorTable()) continue;
    ds.reset();
    write_file_atomic(dir + "/" + r + ".qml", raster_palette_qml(tif));
  }
  if (fs::exists(dir + "/patches.geojson")) write_file_atomic(dir + "/patches.qml", patches_qml());
  if (fs::exists(dir + "/parcels.geojson")) write_file_atomic(dir + "/parcels.qml", parcels_qml());
  if (fs::exists(dir + "/farmwatch.gpkg"))
    add_gpkg_styles(
        dir + "/farmwatch.gpkg",
        {{"parcels", parcels_qml()}, {"patches", patches_qml()}, {"zones", zones_qml()}});
}

}  // namespace fw::pipelines
