// `farmwatch change`: change classes, intensities and magnitudes between two dates.
#include <cstdio>
#include <filesystem>

#include "cli/commands.hpp"
#include "cli/imagery_options.hpp"
#include "engine/log.hpp"
#include "engine/progress.hpp"
#include "rasters/change.hpp"

namespace fw::cli {

void add_change(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "change", "Change classes, intensity grades and magnitude between two dates");
  struct Args {
    ImageryArgs before, after;
    std::string mask_before, mask_after, out, method = "diff", threshold = "mad";
    double mad_k = 5.0, alpha = 1e-3;
    std::vector<std::string> rules, cva_vars{"ndvi", "ndbi", "mndwi", "bsi"};
    int64_t sample = 1 << 20;
    int max_iterations = 100;
    bool mad_variates = false, normalize = false, cover = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--before", a->before.files, "Date 1 raster(s)")->required();
  cmd->add_option("--after", a->after.files, "Date 2 raster(s)")->required();
  add_sensor_options(cmd, a->before);
  cmd->add_option("--mask-before", a->mask_before, "Date 1 cloud/quality mask");
  cmd->add_option("--mask-after", a->mask_after, "Date 2 cloud/quality mask");
  cmd->add_option("--method", a->method,
                  "diff (index differencing), cva (change vector analysis) or irmad "
                  "(iteratively reweighted MAD)")
      ->check(CLI::IsMember({"diff", "cva", "irmad"}))
      ->capture_default_str();
  cmd->add_option("--cva-vars", a->cva_vars,
                  "CVA variables: ndvi ndbi mndwi bsi blue green red nir swir1 swir2 (the "
                  "direction is the angle of the first two)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--alpha", a->alpha,
                  "IR-MAD: change when the no-change probability is below alpha")
      ->check(CLI::Range(1e-12, 0.5))
      ->capture_default_str();
  cmd->add_option("--irmad-sample", a->sample,
                  "IR-MAD: pixels the iterations use (a fixed position-hashed sample); 0 = all, "
                  "streamed window by window each iteration")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-iterations", a->max_iterations, "IR-MAD iteration limit")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_flag("--mad-variates", a->mad_variates, "IR-MAD: also write mad_variates.tif");
  cmd->add_flag("--normalize", a->normalize,
                "Normalise date 2 onto date 1 first (orthogonal regression over IR-MAD "
                "no-change pixels): for pairs from different seasons or sensors");
  cmd->add_flag("--cover", a->cover,
                "Also write change_cover.tif: per category, the share of each pixel the change "
                "covers (sub-pixel, linear mixing; per cent), for exact changed areas");
  cmd->add_option("--threshold", a->threshold, "mad (median +- k MAD) or otsu")
      ->check(CLI::IsMember({"mad", "otsu"}))
      ->capture_default_str();
  cmd->add_option("--mad-k", a->mad_k, "k of the MAD rule")->capture_default_str();
  cmd->add_option("--rule", a->rules,
                  "Replace the category rules, in order: 'category: var > value, var < value'");
  cmd->add_option("--out", a->out, "Output folder")->required();
  cmd->callback([&action, a] {
    action = [a] {
      ImageryArgs before = a->before, after = a->before;  // sensor options apply to both dates
      after.files = a->after.files;
      before.mask = a->mask_before;
      after.mask = a->mask_after;
      const rasters::Imagery d0 = rasters::Imagery::open(before.options("date 1 (--before)"));
      const rasters::Imagery d1 = rasters::Imagery::open(after.options("date 2 (--after)"));
      const Grid grid = rasters::change_grid(d0, d1);
      rasters::ChangeOptions o;
      o.method = a->method;
      o.cva_vars = a->cva_vars;
      o.irmad_alpha = a->alpha;
      o.irmad_sample = a->sample;
      o.irmad_max_iterations = a->max_iterations;
      o.mad_variates = a->mad_variates;
      o.normalize = a->normalize;
      o.cover = a->cover;
      o.threshold_method = a->threshold;
      o.mad_k = a->mad_k;
      o.out_dir = a->out;
      if (!a->rules.empty()) {
        o.rules.clear();
        for (const auto& r : a->rules) o.rules.push_back(rasters::parse_rule(r));
      }
      const auto r = run_with_progress(a->out, [&](const SchedulerOptions& so) {
        return rasters::detect_change(d0, d1, grid, o, so);
      });
      if (!r.canonical_correlations.empty()) {
        std::printf("IR-MAD: %d iterations%s on %lld pixels; canonical correlations",
                    r.irmad_iterations, r.irmad_converged ? "" : " (not converged)",
                    static_cast<long long>(r.irmad_pixels));
        for (double rho : r.canonical_correlations) std::printf(" %.4f", rho);
        std::printf("\n");
      }
      if (r.normalization.applied) {
        std::printf("date 2 normalised on %lld no-change pixels (slopes",
                    static_cast<long long>(r.normalization.pixels));
        for (double sl : r.normalization.slope) std::printf(" %.3f", sl);
        std::printf(")\n");
      }
      std::printf("%lld pixels valid at both dates, %lld no data\n",
                  static_cast<long long>(r.valid), static_cast<long long>(r.nodata));
      for (int c = 1; c < rasters::kChangeCategories; ++c) {
        int64_t n = 0;
        for (int g = 1; g < 4; ++g)
          n += r.counts[static_cast<std::size_t>(c)][static_cast<std::size_t>(g)];
        std::printf("  %-16s %10lld px  %12.1f m2  %10.2f mu\n",
                    rasters::category_name(static_cast<rasters::ChangeCategory>(c)),
                    static_cast<long long>(n), n * r.pixel_area_m2,
                    n * r.pixel_area_m2 / (10000.0 / 15.0));
      }
      for (const auto& f : r.files) std::printf("  %s\n", f.c_str());
      return 0;
    };
  });
}

}  // namespace fw::cli
