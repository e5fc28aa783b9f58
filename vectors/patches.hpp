// Change patches (图斑): one polygon per contiguous change of one category, after removing
// clumps below the minimum mapping unit, with where it is, how strong, what it touches and how
// urgent it is.
//
// Pipeline: one streaming pass over the rows finds the 8-connected clumps of each category
// (vectors/clumps.hpp); clumps of fewer cells than the minimum mapping unit are dropped (the
// sieve); each remaining clump is then read on its own box: its cells (flood fill), its polygon
// (GDALPolygonize, 8-connected, holes kept) and its attributes from the change rasters' cells;
// stable ids from the category and the patch's upper-left cell; overlays with parcels and
// ecological zones by GEOS intersection; priority from rules that are data.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/scheduler.hpp"
#include "vectors/parcels.hpp"
#include "vectors/rules.hpp"

namespace fw::vectors {

// A priority rule (vectors/rules.hpp), level 1..3 (P1 most urgent). Variables: area_m2, area_mu,
// intensity_max, intensity_mean, magnitude_mean, farmland_area_m2, basic_farmland_area_m2,
// basic_farmland_share, zone_area_m2, zone_sensitivity (0 none, 1 low, 2 medium, 3 high, 4
// ecological red line), valid_fraction; and `category in a|b|c`.
using PriorityCondition = RuleCondition;
using PriorityRule = Rule;
// "P1: category in construction|bare_soil, area_mu >= 1, basic_farmland_area_m2 > 0".
// Throws fw::Error (usage) naming the rule and what was expected.
PriorityRule parse_priority_rule(const std::string& text);
// P1: construction or bare soil of at least 1 mu on permanent basic farmland; P1: any change in
// an ecological red line of at least 1 mu; P2: any change in an ecological red line or a
// high-sensitivity zone; P2: construction, bare soil or new water of at least 1 mu on farmland;
// otherwise P3. The most urgent rule that holds wins.
std::vector<PriorityRule> default_priority_rules();

struct ZoneOptions {
  ParcelOptions layer;  // id field default zone_id
  std::string name_field = "name", type_field = "zone_type", sensitivity_field = "sensitivity";
};

struct PatchOptions {
  std::string change_class;               // change_class.tif (required)
  std::string intensity, magnitude;       // change_intensity.tif, change_magnitude.tif ("" = none)
  std::string cover;                      // change_cover.tif: areas from the sub-pixel cover
  std::string index_before, index_after;  // e.g. NDVI of both dates ("" = none)
  double mmu_m2 = 400.0;                  // minimum mapping unit
  bool simplify = false;                  // simplify within half a pixel (topology kept)
  std::vector<PriorityRule> rules = default_priority_rules();
  std::string township_field = "township", village_field = "village";
  // An administrative layer (townships or villages): when given, a patch's township and village
  // come from the unit it overlaps most, instead of from the parcels.
  const ParcelSet* admin = nullptr;
  std::string admin_township_field = "township", admin_village_field = "village";
};

struct Patch {
  std::string id, category;
  int category_code = 0;
  GeometryPtr geom;                                    // in the change raster's CRS
  double area_m2 = 0, area_mu = 0, pixel_area_m2 = 0;  // area_m2: sub-pixel when a cover is given
  int64_t cells = 0;
  double intensity_max = 0, intensity_mean = 0, magnitude_mean = 0;
  double index_before = 0, index_after = 0, valid_fraction = 0;  // NaN when absent
  double lon = 0, lat = 0;                                       // centroid, WGS 84
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;                 // bounding box in the raster's CRS
  double farmland_area_m2 = 0, basic_farmland_area_m2 = 0;
  std::vector<std::string> parcel_ids;
  std::string zone_id, zone_name, zone_type, zone_sensitivity;  // the zone it overlaps most
  double zone_area_m2 = 0;
  std::string township, village;
  int priority = 3;
  std::string chips;               // chip file names, ';'-separated (filled by the caller)
  std::vector<std::string> extra;  // values of PatchSet::extra_fields (filled by the caller)
};

struct PatchSet {
  Grid grid;
  std::vector<Patch> patches;  // in id order
  int64_t mmu_cells = 0;       // the unit in cells (with the cover, smaller clumps stay when
                               // their sub-pixel area reaches the unit)
  int64_t below_unit = 0;      // rims dropped: sub-pixel area under half the unit
  int64_t sieved_cells = 0;    // changed cells in clumps below the unit
  int64_t drawn_late = 0;      // clumps taller than the rows kept, drawn from their own boxes
  int64_t stitched = 0;        // sharded runs: fragments of the shards' bands joined to another
  // Columns a caller adds after the patch's own (e.g. the run history's status and due date),
  // written by write_patches; each patch's `extra` holds their values in this order.
  std::vector<FieldDef> extra_fields;
};

// Throws fw::Error: input (unreadable raster, rasters on different grids, zones without a
// named field), usage (bad rules).
PatchSet extract_patches(const PatchOptions& options, const ParcelSet* parcels,
                         const ParcelSet* zones, const ZoneOptions& zone_options,
                         const SchedulerOptions& scheduler = {});

// A minimum mapping unit: "400" (m2) or "0.6mu"; throws fw::Error (usage) saying what is expected.
double parse_mmu(const std::string& text);

// Zones: loads the layer (id field zone_id or the FID) and checks the name, type and
// sensitivity fields exist (an error naming the file, layer and field otherwise).
ParcelSet load_zones(const ZoneOptions& options, const Grid& grid);

// patches.geojson (RFC 7946), patches.gpkg (layer "patches", the raster's CRS), patches.csv;
// each written atomically. `dir`: the output folder.
void write_patches(const std::string& dir, const PatchSet& set);

// The rings of a (multi)polygon in the pixel coordinates of `window` on `grid` (fractional
// columns and rows from the window's upper-left corner), for drawing outlines.
using PixelRing = std::vector<std::pair<double, double>>;
std::vector<PixelRing> outline_rings(const OGRGeometry& geom, const Grid& grid,
                                     const Window& window);

}  // namespace fw::vectors
