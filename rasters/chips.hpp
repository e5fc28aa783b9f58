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
  int min_pixels = 256;  // chips are enlarged (nearest) to at least this many pixels
  // True colour: the same stretch for every chip, so before and after compare: reflectance 0 to
  // max_reflectance onto 0-255 with gamma 1/gamma (land reflectance is mostly below 0.3; the
  // gamma lifts vegetation's dark visible bands).
  double max_reflectance = 0.3, gamma = 1.8;
  double ndvi_min = -0.2, ndvi_max = 0.9;
  int line_width = 2;  // outline, in chip pixels
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

// Writes `path` (PNG, atomically): `window` of the source, enlarged by a whole factor; the
// `outline` rings (window pixel coordinates, vectors::outline_rings) drawn in yellow on the
// cell edges. Masked or missing pixels are grey. Throws fw::Error (output).
using ChipRing = std::vector<std::pair<double, double>>;
void write_chip(const ChipSource& source, const Window& window,
                const std::vector<ChipRing>& outline, ChipKind kind, const std::string& path,
                const ChipOptions& options = {});

}  // namespace fw::rasters
