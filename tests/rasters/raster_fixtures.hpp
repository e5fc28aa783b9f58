// Small georeferenced rasters for the raster and CLI tests, written with the engine's helpers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/crs.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/grid.hpp"
#include "engine/raster_io.hpp"

namespace fw::test {

// Upper-left corner of the test grids: the synthetic scene's, in UTM zone 50N (EPSG:32650).
inline constexpr double kOriginX = 399960.0;
inline constexpr double kOriginY = 3400020.0;

// A north-up grid of `res` x `res` pixels with its upper-left corner at (x0, y0).
inline Grid utm_grid(int64_t width, int64_t height, double res = 10.0, double x0 = kOriginX,
                     double y0 = kOriginY, int epsg = 32650) {
  return Grid(GeoTransform::north_up(x0, y0, res, res), width, height, Crs::from_epsg(epsg));
}

// Index of pixel (col, row) in a row-major buffer of `width` columns.
inline std::size_t px(int64_t col, int64_t row, int64_t width) {
  return static_cast<std::size_t>(row * width + col);
}

// Writes a tiled GeoTIFF on `grid`, one vector of grid.width() * grid.height() values per band,
// with optional band descriptions and nodata.
template <class T>
void write_raster(const std::string& path, const Grid& grid,
                  const std::vector<std::vector<T>>& bands,
                  const std::vector<std::string>& descriptions = {},
                  std::optional<double> nodata = std::nullopt, int tile = 256) {
  DatasetPtr ds =
      create_gtiff(path, grid, static_cast<int>(bands.size()), gdal_type<T>(), GdalOptions{}, tile);
  for (std::size_t b = 0; b < bands.size(); ++b) {
    const int band = static_cast<int>(b) + 1;
    GDALRasterBand* rb = ds->GetRasterBand(band);
    if (b < descriptions.size()) rb->SetDescription(descriptions[b].c_str());
    if (nodata) rb->SetNoDataValue(*nodata);
    write_window(*ds, band, grid.full_window(), bands[b]);
  }
  close_dataset(ds, path);
}

// Reads a whole band.
template <class T>
std::vector<T> read_band(GDALDataset& ds, int band = 1) {
  std::vector<T> v;
  read_window(ds, band, Window{0, 0, ds.GetRasterXSize(), ds.GetRasterYSize()}, v);
  return v;
}

// The names of every entry of a folder, hidden ones included, sorted; none when it is missing.
inline std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace fw::test
