// Evidence chips: small PNG images of a change patch that field inspectors carry: true colour
// before and after, and NDVI, contrast-stretched, with the patch outline drawn.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/grid.hpp"
#include "rasters/imagery.hpp"

namespace fw::rasters {

struct ChipOptions {
  int min_pixels = 256;            // chips are enlarged (nearest) to at least this many pixels
  double low = 0.02, high = 0.98;  // true colour: per-band stretch between these quantiles
  double ndvi_min = -0.2, ndvi_max = 0.9;
};

enum class ChipKind { kTrueColour, kNdvi };

// The bands chips need (red, green, blue, NIR) of one imagery on the grid, opened once and
// shared by every chip (thread-safe: each thread reads through its own dataset handles).
class ChipSource {
 public:
  // Throws fw::Error (input) when the imagery lacks one of the four bands.
  ChipSource(const Imagery& imagery, const Grid& grid);
  std::vector<float> read(Role role, const Window& window) const;

 private:
  std::vector<std::unique_ptr<BandReader>> readers_;  // red, green, blue, nir
};

// Writes `path` (PNG, atomically): `window` of the source; `outline` (window.pixels() values,
// 1 = a cell the patch outline crosses) drawn in yellow. Masked or missing pixels are grey.
// Throws fw::Error (output).
void write_chip(const ChipSource& source, const Window& window, const std::vector<uint8_t>& outline,
                ChipKind kind, const std::string& path, const ChipOptions& options = {});

}  // namespace fw::rasters
