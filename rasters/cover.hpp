// Sub-pixel change cover: the share of each pixel covered by a change, per change category.
//
// A hard change class counts a pixel whole or not at all, so a patch's edge pixels (partly
// changed) overstate or understate its area, and on a patch of a few mu the error is tens of
// per cent. The cover model is linear spectral mixing (each pixel's reflectance is the
// area-weighted mean of what it covers), applied locally:
//  - the background change e0 near pixel p is the mean date-2 minus date-1 difference of the
//    unchanged pixels within `radius` that do not touch a change (phenology, atmosphere);
//  - the reference cells of category c near p are its interior pixels within `radius` (pure);
//    when there is none, with date 1 given, the purest ones: starting from the most changed
//    pixel m, move to any pixel whose share relative to m exceeds 1 (a textured field makes the
//    most changed pixel not the purest), then take those within ref_purity of it; without date
//    1, the most changed pixels (|e|^2 >= ref_share x the largest);
//  - the full change at p is from p's own date-1 reflectance to the reference cells' date-2
//    one less e0 (the after state is the endmember and the before is p's own, so a field's
//    texture, soil here and residue there, does not bias the shares); without date 1, the
//    reference cells' mean e;
//  - p's share of c is the projection f = e_p . ref / |ref|^2, clipped to [0, 1], and 1 for a
//    pixel whose eight neighbours all share its class (an interior pixel);
//  - a pixel next to a change (changed itself, or unchanged but touching one) takes, among the
//    categories of its 3 x 3 neighbourhood whose mixture explains it (residual |e_p - f ref|^2
//    at most max_residual x |e_p|^2): its own class when that class is a patch here (has
//    interior cells in the neighbourhood); else another patch; else a rim (a class with no
//    interior cell, like the vegetation-loss ring the rules give a construction's mixed edge);
//    within a rank, the strongest full change. So a construction's half-covered edge pixel
//    that the rules call vegetation loss is construction at about one half, while a few
//    bare-soil pixels inside a real vegetation loss do not take it over. An unchanged pixel
//    counts only from min_fraction up.
#pragma once

#include <cstdint>

#include "engine/grid.hpp"

namespace fw::rasters {

struct CoverOptions {
  int radius = 2;           // the neighbourhood for references and background: (2 radius + 1)^2
  double ref_share = 0.8;   // without date 1: reference cells from |e|^2 >= ref_share x max
  double ref_purity = 0.9;  // with date 1: cells covering at least this share of the purest
  double max_residual = 0.3;
  double min_fraction = 0.1;
  bool interior_reference = true;  // reference from interior cells when there are any
  int halo() const { return radius + 1; }
};

// One window. `cls`: class codes over the expanded window ew_w x ew_h (0 no change,
// 1..categories a change, anything else no data); `diff`: nbands planes of date 2 minus date 1
// over the same expanded window; `before`: nbands planes of date 1 there (or null); `core`: the
// output window inside it (ew coordinates). `out`: `categories` planes of core.w x core.h, the
// cover in per cent (0..100), 255 where the class is no data.
void subpixel_cover(const uint8_t* cls, const float* diff, const float* before, int nbands,
                    int64_t ew_w, int64_t ew_h, const Window& core, int categories,
                    const CoverOptions& options, uint8_t* out);

}  // namespace fw::rasters
