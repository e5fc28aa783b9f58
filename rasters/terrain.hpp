// Terrain from a digital elevation model: the DEM (any GDAL raster, any CRS) put onto the
// analysis grid through GDAL's warper (bilinear), then slope in degrees by Horn's 3x3 method,
// streamed window by window (a one-pixel halo) on the block scheduler, written as a
// Cloud-Optimized GeoTIFF.
#pragma once

#include <cstdint>
#include <string>

#include "engine/grid.hpp"
#include "engine/scheduler.hpp"

namespace fw::rasters {

struct SlopeOptions {
  std::string dem;        // the DEM file
  int band = 1;           // its band
  double z_factor = 1.0;  // elevation units to metres (e.g. 0.3048 for feet)
  std::string out;        // slope.tif
};

struct SlopeResult {
  std::string file;
  int64_t valid = 0;  // pixels with a slope
  double min = 0, max = 0, mean = 0;
};

// Slope in degrees (Float32, nodata -9999, band description "slope", metadata UNITS=degrees,
// SOURCE=<dem>, METHOD=Horn 1981) on `analysis`, written to options.out. The DEM (its scale and
// offset applied, times z_factor) is read directly when it lies on the analysis grid's lattice,
// else warped bilinearly. Horizontal distances are in metres: the grid's own units when
// projected (times the CRS's metres per unit); on a geographic grid, degrees converted on the
// CRS's ellipsoid at each row's centre latitude. Raster edges use the nearest inside cell for the
// missing neighbours; a neighbour that is nodata takes the centre cell's value; a cell whose DEM
// value is nodata (or outside the DEM) is nodata. The raster has the same bits for any thread
// count and memory budget (each window is read with a one-pixel halo), and the summary for any
// thread count. Throws fw::Error: input, naming the DEM, when it cannot be read, lacks the band or
// a CRS, or does not overlap the analysis grid; usage for a z factor that is not a positive
// number; no_data, naming the DEM, when no pixel gets a slope (nothing is written then).
SlopeResult compute_slope(const SlopeOptions& options, const Grid& analysis,
                          const SchedulerOptions& scheduler = {});

}  // namespace fw::rasters
