#include "rasters/chips.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "engine/atomic_file.hpp"
#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"

namespace fw::rasters {

namespace {
std::size_t slot(Role r) {
  return r == Role::kRed ? 0 : r == Role::kGreen ? 1 : r == Role::kBlue ? 2 : 3;
}
}  // namespace

ChipSource::ChipSource(const Imagery& im, const Grid& grid) {
  for (Role r : {Role::kRed, Role::kGreen, Role::kBlue, Role::kNir}) {
    readers_.push_back(
        std::make_unique<BandReader>(im.band(r, "evidence chips"), grid, Resampling::kBilinear));
  }
}

std::vector<float> ChipSource::read(Role role, const Window& win) const {
  std::vector<float> v(static_cast<std::size_t>(win.pixels()));
  readers_[slot(role)]->read_reflectance(win, v.data());
  return v;
}

void write_chip(const ChipSource& src, const Window& win, const std::vector<ChipRing>& outline,
                ChipKind kind, const std::string& path, const ChipOptions& o) {
  const auto n = static_cast<std::size_t>(win.pixels());
  if (n == 0) throw_usage("empty chip window");
  std::array<std::vector<uint8_t>, 3> rgb;
  for (auto& c : rgb) c.assign(n, 128);
  auto read = [&](Role r) { return src.read(r, win); };
  if (kind == ChipKind::kTrueColour) {
    const std::array<Role, 3> roles = {Role::kRed, Role::kGreen, Role::kBlue};
    for (int b = 0; b < 3; ++b) {
      const std::vector<float> v = read(roles[static_cast<std::size_t>(b)]);
      for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(v[i])) continue;
        const double t = std::clamp(static_cast<double>(v[i]) / o.max_reflectance, 0.0, 1.0);
        rgb[static_cast<std::size_t>(b)][i] =
            static_cast<uint8_t>(std::lround(255.0 * std::pow(t, 1.0 / o.gamma)));
      }
    }
  } else {
    const std::vector<float> red = read(Role::kRed), nir = read(Role::kNir);
    for (std::size_t i = 0; i < n; ++i) {
      const float s = nir[i] + red[i];
      if (!std::isfinite(s) || s == 0) continue;
      const double t =
          std::clamp(((nir[i] - red[i]) / s - o.ndvi_min) / (o.ndvi_max - o.ndvi_min), 0.0, 1.0);
      // Brown (bare) through pale yellow to dark green (dense vegetation).
      const double r = t < 0.5 ? 140 + (240 - 140) * t * 2 : 240 - (240 - 20) * (t - 0.5) * 2;
      const double g = t < 0.5 ? 90 + (230 - 90) * t * 2 : 230 - (230 - 120) * (t - 0.5) * 2;
      const double b = t < 0.5 ? 40 + (150 - 40) * t * 2 : 150 - (150 - 30) * (t - 0.5) * 2;
      rgb[0][i] = static_cast<uint8_t>(std::lround(r));
      rgb[1][i] = static_cast<uint8_t>(std::lround(g));
      rgb[2][i] = static_cast<uint8_t>(std::lround(b));
    }
  }
  // Enlarge (nearest) so small patches stay legible.
  const int64_t f =
      std::max<int64_t>(1, (o.min_pixels + std::max(win.w, win.h) - 1) / std::max(win.w, win.h));
  const int64_t W = win.w * f, H = win.h * f;
  DatasetPtr mem(
      driver("MEM").Create("", static_cast<int>(W), static_cast<int>(H), 3, GDT_Byte, nullptr));
  // The outline on the enlarged image: each ring segment stepped in quarter chip pixels, a
  // square of line_width pixels at each step.
  std::vector<uint8_t> line(static_cast<std::size_t>(W * H), 0);
  const double fd = static_cast<double>(f);
  for (const ChipRing& ring : outline) {
    for (std::size_t k = 0; k + 1 < ring.size(); ++k) {
      const double x0 = ring[k].first * fd, y0 = ring[k].second * fd;
      const double x1 = ring[k + 1].first * fd, y1 = ring[k + 1].second * fd;
      const int steps = std::max(1, static_cast<int>(std::ceil(4 * std::hypot(x1 - x0, y1 - y0))));
      for (int st = 0; st <= steps; ++st) {
        const double t = static_cast<double>(st) / steps;
        const auto cx = static_cast<int64_t>(std::floor(x0 + t * (x1 - x0) - o.line_width / 2.0));
        const auto cy = static_cast<int64_t>(std::floor(y0 + t * (y1 - y0) - o.line_width / 2.0));
        for (int64_t yy = cy; yy < cy + o.line_width; ++yy)
          for (int64_t xx = cx; xx < cx + o.line_width; ++xx)
            if (xx >= 0 && yy >= 0 && xx < W && yy < H)
              line[static_cast<std::size_t>(yy * W + xx)] = 1;
      }
    }
  }
  static constexpr uint8_t kYellow[3] = {255, 230, 0};
  std::vector<uint8_t> big(static_cast<std::size_t>(W * H));
  std::vector<std::size_t> src_col(static_cast<std::size_t>(W));
  for (int64_t x = 0; x < W; ++x)
    src_col[static_cast<std::size_t>(x)] = static_cast<std::size_t>(x / f);
  for (int b = 0; b < 3; ++b) {
    const std::vector<uint8_t>& band = rgb[static_cast<std::size_t>(b)];
    for (int64_t y = 0; y < H; ++y) {
      const uint8_t* from = band.data() + static_cast<std::size_t>((y / f) * win.w);
      uint8_t* dst = big.data() + static_cast<std::size_t>(y * W);
      const uint8_t* ln = line.data() + static_cast<std::size_t>(y * W);
      for (std::size_t x = 0; x < static_cast<std::size_t>(W); ++x)
        dst[x] = ln[x] ? kYellow[b] : from[src_col[x]];
    }
    if (mem->GetRasterBand(b + 1)->RasterIO(
            GF_Write, 0, 0, static_cast<int>(W), static_cast<int>(H), big.data(),
            static_cast<int>(W), static_cast<int>(H), GDT_Byte, 0, 0, nullptr) != CE_None)
      throw_internal("chip raster write failed");
  }
  const std::string vsi =
      "/vsimem/fw-chip-" + std::to_string(reinterpret_cast<uintptr_t>(&big)) + ".png";
  // zlib level 1: chips are small and many; level 6 (the default) took twice as long to encode
  // for files about a fifth smaller.
  GdalOptions pco;
  pco.set("ZLEVEL", "1");
  DatasetPtr png(
      driver("PNG").CreateCopy(vsi.c_str(), mem.get(), FALSE, pco.get(), nullptr, nullptr));
  if (!png) throw_output("cannot encode the chip as PNG", {.file = path});
  png.reset();
  VSIUnlink((vsi + ".aux.xml").c_str());
  vsi_l_offset len = 0;
  GByte* data = VSIGetMemFileBuffer(vsi.c_str(), &len, TRUE);
  std::string bytes(reinterpret_cast<const char*>(data), static_cast<std::size_t>(len));
  CPLFree(data);
  write_file_atomic(path, bytes, /*durable=*/false);
}

}  // namespace fw::rasters
