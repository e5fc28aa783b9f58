// Zonal statistics: one streaming pass over any number of rasters (on one grid) for any number
// of parcels. Windows of the rasters are processed in parallel on the engine's scheduler; each
// window's parcels come from a window index built once; the cells a parcel covers in a window
// get their coverage fractions (vectors/coverage.hpp) and feed per-parcel accumulators that
// merge in window order, so results are identical for any thread count. A parcel's values list
// (kept only when quantiles or class statistics are asked) is released as soon as its last
// window is merged, so memory is bounded by the window budget and the parcels that span the
// windows in flight, not by the raster size.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/scheduler.hpp"
#include "engine/shard.hpp"
#include "vectors/coverage.hpp"
#include "vectors/parcels.hpp"

namespace fw::vectors {

struct ZonalRaster {
  std::string path;
  int band = 1;
  std::string name;                // column prefix; "" = the file's stem
  std::vector<std::string> stats;  // its own statistics; empty = ZonalOptions::stats
};

// Values are the band's after its nodata is set aside and its GDAL scale and offset applied (an
// Int16 index stored x 10000 with scale 1e-4 gives index values), as QGIS shows them.
// Statistics (weighted by coverage fraction; in center and all_touched modes every counted cell
// weighs 1): count (sum of weights of valid cells), sum, mean, min, max, variance (population),
// stdev, median, pNN (quantile NN %, e.g. p10), aboveT (share of the valid weight above T, e.g.
// above0.3), majority, minority, variety, frac (one column per
// class value: its share of the valid weight), coverage (covered weight, valid or not),
// valid_fraction (count / coverage), cells (cells touched with a positive weight).
struct ZonalOptions {
  CoverageMode mode = CoverageMode::kExact;
  std::vector<std::string> stats = {"count", "mean"};
};

struct ZonalTable {
  std::vector<std::string> columns;       // <raster>_<stat>
  std::vector<std::vector<double>> rows;  // per parcel (ParcelSet order); NaN where undefined
};

// Throws fw::Error: usage (unknown statistic), input (rasters on different grids, no parcel
// overlapping the rasters).
ZonalTable zonal_stats(const ParcelSet& parcels, const std::vector<ZonalRaster>& rasters,
                       const ZonalOptions& options, const SchedulerOptions& scheduler = {});

// Sharded zonal statistics (docs/scale-out.md). zonal_stats_shard computes the windows of shard
// `shard` (the plan's windows split into contiguous runs balanced by pixels and parcels) and
// stores their per-parcel accumulators, value lists included, in `file`; zonal_stats_merge reads
// every shard's file, merges the accumulators in window order and finishes the statistics: the
// table equals zonal_stats's bit for bit, quantiles of parcels split across shards included.
// Every call must see the same parcels, rasters, options and memory budget (the same window
// plan); `run_key` names the run, and files of another run, pass or plan are refused.
void zonal_stats_shard(const ParcelSet& parcels, const std::vector<ZonalRaster>& rasters,
                       const ZonalOptions& options, const ShardSpec& shard, const std::string& file,
                       const std::string& run_key, const SchedulerOptions& scheduler = {});
ZonalTable zonal_stats_merge(const ParcelSet& parcels, const std::vector<ZonalRaster>& rasters,
                             const ZonalOptions& options, const std::vector<std::string>& files,
                             const std::string& run_key, const SchedulerOptions& scheduler = {});

// The grid of the rasters (all must share it).
Grid zonal_grid(const std::vector<ZonalRaster>& rasters);

// Per-parcel columns written with the parcels' id and attributes (attributes named like a
// column are left out): numeric values (NaN = null), then text values.
struct ParcelColumns {
  std::string layer = "parcels", id_field = "parcel_id";  // the layer (.gpkg) and the id column
  std::vector<std::string> numeric, text;
  std::vector<std::vector<double>> values;            // [parcel][numeric]
  std::vector<std::vector<std::string>> text_values;  // [parcel][text]
};
// .csv (no geometry), .geojson (RFC 7946: WGS 84) or .gpkg (`crs`); written atomically.
void write_parcels(const std::string& path, const ParcelSet& parcels, const ParcelColumns& cols,
                   const Crs& crs);

// Writes the parcels with their statistics: .csv (no geometry), .geojson (RFC 7946), .gpkg.
void write_zonal(const std::string& path, const ParcelSet& parcels, const ZonalTable& table,
                 const Crs& crs);

}  // namespace fw::vectors
