#include "rasters/cover.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/error.hpp"

namespace fw::rasters {

void subpixel_cover(const uint8_t* cls, const float* diff, const float* before, int nbands,
                    int64_t ew_w, int64_t ew_h, const Window& core, int categories,
                    const CoverOptions& opt, uint8_t* out) {
  constexpr int kMaxBands = 16;
  if (nbands < 1 || nbands > kMaxBands) throw_usage("sub-pixel cover: 1 to 16 bands");
  if (categories < 1 || categories > 30) throw_usage("sub-pixel cover: 1 to 30 categories");
  const int64_t R = opt.radius;
  const auto n_ew = static_cast<std::size_t>(ew_w * ew_h);
  const auto n_core = static_cast<std::size_t>(core.w * core.h);
  auto is_change = [&](uint8_t c) { return c >= 1 && c <= categories; };

  // Per expanded pixel: a valid difference, a change in its 3 x 3 neighbourhood, background.
  std::vector<uint8_t> finite(n_ew), near(n_ew), bg(n_ew), interior(n_ew);
  for (std::size_t i = 0; i < n_ew; ++i) {
    bool ok = true;
    for (int b = 0; b < nbands; ++b)
      ok &= std::isfinite(diff[static_cast<std::size_t>(b) * n_ew + i]);
    finite[i] = ok;
  }
  for (int64_t y = 0; y < ew_h; ++y) {
    for (int64_t x = 0; x < ew_w; ++x) {
      bool any = false;
      const std::size_t i = static_cast<std::size_t>(y * ew_w + x);
      bool all_same = x > 0 && y > 0 && x < ew_w - 1 && y < ew_h - 1 && is_change(cls[i]);
      for (int64_t yy = std::max<int64_t>(0, y - 1); yy <= std::min(ew_h - 1, y + 1); ++yy) {
        for (int64_t xx = std::max<int64_t>(0, x - 1); xx <= std::min(ew_w - 1, x + 1); ++xx) {
          any |= is_change(cls[yy * ew_w + xx]);
          all_same &= cls[yy * ew_w + xx] == cls[i];
        }
      }
      interior[i] = all_same;
      near[i] = any;
      bg[i] = !any && cls[i] == 0 && finite[i];
    }
  }

  std::memset(out, 0, n_core * static_cast<std::size_t>(categories));
  for (int64_t cy = 0; cy < core.h; ++cy) {
    for (int64_t cx = 0; cx < core.w; ++cx) {
      const int64_t x = core.x + cx, y = core.y + cy;
      const std::size_t i = static_cast<std::size_t>(y * ew_w + x);
      const std::size_t o = static_cast<std::size_t>(cy * core.w + cx);
      const uint8_t own = cls[i];
      if (own != 0 && !is_change(own)) {
        for (int c = 0; c < categories; ++c) out[static_cast<std::size_t>(c) * n_core + o] = 255;
        continue;
      }
      if (!near[i] || !finite[i]) continue;
      const int64_t x0 = std::max<int64_t>(0, x - R), x1 = std::min(ew_w - 1, x + R);
      const int64_t y0 = std::max<int64_t>(0, y - R), y1 = std::min(ew_h - 1, y + R);
      // Background change.
      std::array<double, kMaxBands> e0{};
      int nbg = 0;
      for (int64_t yy = y0; yy <= y1; ++yy) {
        for (int64_t xx = x0; xx <= x1; ++xx) {
          const std::size_t q = static_cast<std::size_t>(yy * ew_w + xx);
          if (!bg[q]) continue;
          for (int b = 0; b < nbands; ++b) e0[b] += diff[static_cast<std::size_t>(b) * n_ew + q];
          ++nbg;
        }
      }
      if (nbg) {
        for (int b = 0; b < nbands; ++b) e0[b] /= nbg;
      }
      auto x1_at = [&](std::size_t q, int b) {
        return before ? static_cast<double>(before[static_cast<std::size_t>(b) * n_ew + q]) : 0.0;
      };
      auto e_at = [&](std::size_t q, int b) {
        return static_cast<double>(diff[static_cast<std::size_t>(b) * n_ew + q]) - e0[b];
      };
      auto mag = [&](std::size_t q) {
        double s = 0;
        for (int b = 0; b < nbands; ++b) s += e_at(q, b) * e_at(q, b);
        return s;
      };
      // Candidate categories: those of the 3 x 3 neighbourhood (this pixel included).
      uint32_t cand = 0;
      for (int64_t yy = std::max<int64_t>(0, y - 1); yy <= std::min(ew_h - 1, y + 1); ++yy) {
        for (int64_t xx = std::max<int64_t>(0, x - 1); xx <= std::min(ew_w - 1, x + 1); ++xx) {
          const uint8_t c = cls[yy * ew_w + xx];
          if (is_change(c)) cand |= 1u << c;
        }
      }
      const double mp = mag(i);
      int chosen = 0;
      double chosen_f = 0, chosen_rr = 0, own_f = 0;
      int chosen_rank = -1;
      for (int c = 1; c <= categories; ++c) {
        if (!(cand & (1u << c))) continue;
        double best = 0;
        for (int64_t yy = y0; yy <= y1; ++yy) {
          for (int64_t xx = x0; xx <= x1; ++xx) {
            const std::size_t q = static_cast<std::size_t>(yy * ew_w + xx);
            if (cls[q] == c && finite[q]) best = std::max(best, mag(q));
          }
        }
        if (best <= 0) continue;
        // The reference cells: the interior cells of class c (pure); else, with date 1, the
        // purest ones; else the most changed ones.
        std::array<double, kMaxBands> ref{}, ref_x1{};
        int nref = 0;
        for (int64_t yy = y0; yy <= y1; ++yy) {
          for (int64_t xx = x0; xx <= x1; ++xx) {
            const std::size_t q = static_cast<std::size_t>(yy * ew_w + xx);
            if (!opt.interior_reference || cls[q] != c || !finite[q] || !interior[q]) continue;
            for (int b = 0; b < nbands; ++b) ref[b] += e_at(q, b), ref_x1[b] += x1_at(q, b);
            ++nref;
          }
        }
        // Class c has interior cells here: a patch of its own, not only the mixed rim of another.
        const bool patch = nref > 0;
        if (nref == 0 && before) {
          // No pure cell: the purest ones make the reference. With the cells' own date-1
          // reflectances, the share of q relative to cell m is the projection of e_q onto the
          // change from q's date 1 to m's date 2; start from the most changed cell, move to any
          // cell that covers more (a textured field makes the most changed one not the purest),
          // then take the cells within 10 % of it.
          std::vector<std::size_t> cells;
          std::size_t m = 0;
          for (int64_t yy = y0; yy <= y1; ++yy) {
            for (int64_t xx = x0; xx <= x1; ++xx) {
              const std::size_t q = static_cast<std::size_t>(yy * ew_w + xx);
              if (cls[q] != c || !finite[q]) continue;
              if (cells.empty() || mag(q) > mag(m)) m = q;
              cells.push_back(q);
            }
          }
          auto share = [&](std::size_t q, std::size_t of) {
            double d = 0, r2 = 0;
            for (int b = 0; b < nbands; ++b) {
              const double r = e_at(of, b) + x1_at(of, b) - x1_at(q, b);
              d += e_at(q, b) * r, r2 += r * r;
            }
            return r2 > 0 ? d / r2 : 0.0;
          };
          for (int it = 0; it < 3; ++it) {
            std::size_t top = m;
            double top_f = 1.0;
            for (std::size_t q : cells) {
              const double f = share(q, m);
              if (f > top_f) top = q, top_f = f;
            }
            if (top == m || top_f < 1.02) break;
            m = top;
          }
          for (std::size_t q : cells) {
            if (q != m && share(q, m) < opt.ref_purity) continue;
            for (int b = 0; b < nbands; ++b) ref[b] += e_at(q, b), ref_x1[b] += x1_at(q, b);
            ++nref;
          }
        }
        for (int64_t yy = y0; yy <= y1 && nref == 0; ++yy) {
          for (int64_t xx = x0; xx <= x1; ++xx) {
            const std::size_t q = static_cast<std::size_t>(yy * ew_w + xx);
            if (cls[q] != c || !finite[q] || mag(q) < opt.ref_share * best) continue;
            for (int b = 0; b < nbands; ++b) ref[b] += e_at(q, b), ref_x1[b] += x1_at(q, b);
            ++nref;
          }
        }
        double rr = 0, dot = 0;
        for (int b = 0; b < nbands; ++b) {
          // With the dates' bands, the full change at this cell is from its own date-1
          // reflectance to the reference cells' date-2 one (the after state is the endmember,
          // the before is the cell's own): the reference's mean e plus how much brighter the
          // reference cells were on date 1 than this cell.
          ref[b] = (ref[b] + ref_x1[b]) / nref - x1_at(i, b);
          rr += ref[b] * ref[b];
          dot += e_at(i, b) * ref[b];
        }
        if (rr <= 0) continue;
        const bool pure = own == c && interior[i];
        const double f = pure ? 1.0 : std::clamp(dot / rr, 0.0, 1.0);
        if (own == c) own_f = f;
        double res = 0;
        for (int b = 0; b < nbands; ++b) {
          const double r = e_at(i, b) - f * ref[b];
          res += r * r;
        }
        const bool explains = pure || res <= opt.max_residual * std::max(mp, 1e-30);
        const bool enough = is_change(own) || f >= opt.min_fraction;
        // Ranking of the categories that explain the cell: its own class when that is a patch
        // here (interior cells in the neighbourhood), then other patches, then rims (classes
        // with no interior cell, such as the vegetation-loss ring a construction's mixed edge
        // gets from the rules); within a rank the strongest full change.
        const int rank = patch ? (own == c ? 2 : 1) : 0;
        if (explains && enough &&
            (!chosen || rank > chosen_rank || (rank == chosen_rank && rr > chosen_rr))) {
          chosen = c, chosen_f = f, chosen_rr = rr, chosen_rank = rank;
        }
      }
      if (!chosen && is_change(own)) chosen = own, chosen_f = own_f;
      if (chosen) {
        out[static_cast<std::size_t>(chosen - 1) * n_core + o] =
            static_cast<uint8_t>(std::lround(100.0 * chosen_f));
      }
    }
  }
}

}  // namespace fw::rasters
