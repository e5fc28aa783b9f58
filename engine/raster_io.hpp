// Window reads and writes over GDAL datasets, with errors that name the file and band.
#pragma once

#include <string>
#include <vector>

#include "engine/gdal_handles.hpp"
#include "engine/grid.hpp"

namespace fw {

template <class T>
constexpr GDALDataType gdal_type();
template <>
constexpr GDALDataType gdal_type<uint8_t>() {
  return GDT_Byte;
}
template <>
constexpr GDALDataType gdal_type<uint16_t>() {
  return GDT_UInt16;
}
template <>
constexpr GDALDataType gdal_type<int16_t>() {
  return GDT_Int16;
}
template <>
constexpr GDALDataType gdal_type<uint32_t>() {
  return GDT_UInt32;
}
template <>
constexpr GDALDataType gdal_type<int32_t>() {
  return GDT_Int32;
}
template <>
constexpr GDALDataType gdal_type<float>() {
  return GDT_Float32;
}
template <>
constexpr GDALDataType gdal_type<double>() {
  return GDT_Float64;
}

// Reads band `band` (1-based) over `win` into `buf` (win.w * win.h values of type `type`,
// row-major). Parts of the window outside the raster are filled with `fill`.
void read_window(GDALDataset& ds, int band, const Window& win, GDALDataType type, void* buf,
                 double fill = 0.0);

template <class T>
void read_window(GDALDataset& ds, int band, const Window& win, std::vector<T>& out,
                 double fill = 0.0) {
  out.resize(static_cast<std::size_t>(win.pixels()));
  read_window(ds, band, win, gdal_type<T>(), out.data(), fill);
}

// Writes `buf` into band `band` over `win` (fully inside the raster).
void write_window(GDALDataset& ds, int band, const Window& win, GDALDataType type, const void* buf);

template <class T>
void write_window(GDALDataset& ds, int band, const Window& win, const std::vector<T>& in) {
  write_window(ds, band, win, gdal_type<T>(), in.data());
}

// The natural block size of band 1 (the layout windows align to).
void block_size(GDALDataset& ds, int& bw, int& bh);

// Creates a tiled GeoTIFF (DEFLATE, predictor for the type, BIGTIFF=IF_SAFER) on `grid`.
// Extra creation options override the defaults.
DatasetPtr create_gtiff(const std::string& path, const Grid& grid, int bands, GDALDataType type,
                        const GdalOptions& extra = {}, int tile = 256);

}  // namespace fw
