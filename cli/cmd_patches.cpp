// `farmwatch patches`: change patches with minimum mapping unit, overlays, priority and chips.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/commands.hpp"
#include "cli/imagery_options.hpp"
#include "cli/parcel_options.hpp"
#include "pipelines/patch_run.hpp"

namespace fw::cli {

void add_patches(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "patches",
      "Change patches (图斑): polygons above a minimum mapping unit, farmland and zone "
      "overlays, priority P1-P3, evidence chips");
  struct Args {
    std::string change_class, intensity, magnitude, cover, index_before, index_after, out;
    std::string mmu = "400";
    ImageryArgs before, after;
    ParcelArgs parcels;
    std::string land_class_field = "land_class", zones, zones_layer, zone_id = "zone_id";
    std::vector<std::string> basic{"permanent_basic_farmland", "永久基本农田"}, rules;
    vectors::ZoneOptions zo;
    bool simplify = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--change-class", a->change_class, "change_class.tif (farmwatch change)")
      ->required();
  cmd->add_option("--intensity", a->intensity,
                  "change_intensity.tif (default: beside the change classes, when present; none: "
                  "no intensity)");
  cmd->add_option("--magnitude", a->magnitude,
                  "change_magnitude.tif (default: beside the change classes, when present; none: "
                  "no magnitude)");
  cmd->add_option("--cover", a->cover,
                  "change_cover.tif: sub-pixel areas (default: beside the change classes, when "
                  "present; none: areas in whole cells)");
  cmd->add_option("--index-before", a->index_before, "An index of date 1 (e.g. NDVI) for means");
  cmd->add_option("--index-after", a->index_after, "The same index of date 2");
  cmd->add_option("--before", a->before.files, "Date 1 imagery, for the evidence chips");
  cmd->add_option("--after", a->after.files, "Date 2 imagery, for the evidence chips");
  add_sensor_options(cmd, a->before);
  add_parcel_options(cmd, a->parcels, false);
  CLI::Option* land_class = cmd->add_option("--land-class-field", a->land_class_field,
                                            "Field marking permanent basic farmland")
                                ->capture_default_str();
  cmd->add_option("--basic-farmland", a->basic, "Values of it meaning basic farmland")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--zones", a->zones, "Ecological zones: any OGR vector");
  cmd->add_option("--zones-layer", a->zones_layer, "Layer of the zones file");
  cmd->add_option("--zone-id-field", a->zone_id, "Zone id field (else the FID)")
      ->capture_default_str();
  cmd->add_option("--zone-name-field", a->zo.name_field)->capture_default_str();
  cmd->add_option("--zone-type-field", a->zo.type_field)->capture_default_str();
  cmd->add_option("--zone-sensitivity-field", a->zo.sensitivity_field,
                  "Zone sensitivity (low, medium, high; type ecological_red_line ranks above)")
      ->capture_default_str();
  cmd->add_option("--mmu", a->mmu, "Minimum mapping unit: m2, or mu with the suffix 'mu' (0.6mu)")
      ->capture_default_str();
  cmd->add_flag("--simplify", a->simplify, "Simplify outlines within half a pixel");
  cmd->add_option("--priority-rule", a->rules,
                  "Replace the priority rules: 'P1: category in construction|bare_soil, "
                  "area_mu >= 1, basic_farmland_area_m2 > 0'");
  cmd->add_option("--out", a->out, "Output folder")->required();
  cmd->callback([&action, a, land_class] {
    action = [a, land_class] {
      pipelines::PatchRun run;
      vectors::PatchOptions& po = run.patches;
      po.change_class = a->change_class;
      const std::filesystem::path dir = std::filesystem::path(a->change_class).parent_path();
      auto beside = [&](const std::string& given, const char* name) {
        if (given == "none") return std::string();
        if (!given.empty()) return given;
        const auto p = dir / name;
        return std::filesystem::exists(p) ? p.string() : std::string();
      };
      po.intensity = beside(a->intensity, "change_intensity.tif");
      po.magnitude = beside(a->magnitude, "change_magnitude.tif");
      po.cover = beside(a->cover, "change_cover.tif");
      po.index_before = a->index_before;
      po.index_after = a->index_after;
      po.simplify = a->simplify;
      po.mmu_m2 = vectors::parse_mmu(a->mmu);
      if (!a->rules.empty()) {
        po.rules.clear();
        for (const auto& r : a->rules) po.rules.push_back(vectors::parse_priority_rule(r));
      }
      run.out_dir = a->out;
      DatasetPtr cls = open_raster(a->change_class);
      const Grid grid = Grid::of(*cls);
      cls.reset();
      std::optional<vectors::ParcelSet> parcels, zones;
      if (!a->parcels.file.empty()) {
        vectors::ParcelOptions o = a->parcels.options();
        o.land_class_field = a->land_class_field;
        o.land_class_optional = land_class->count() == 0;
        o.basic_farmland_values = a->basic;
        parcels = vectors::load_parcels(o, grid);
        run.parcels = &*parcels;
      }
      if (!a->zones.empty()) {
        run.zone_options = a->zo;
        run.zone_options.layer.file = a->zones;
        run.zone_options.layer.layer = a->zones_layer;
        run.zone_options.layer.id_field = a->zone_id;
        run.zone_options.layer.label = "zones";
        zones = vectors::load_zones(run.zone_options, grid);
        run.zones = &*zones;
      }
      std::optional<rasters::Imagery> before, after;
      if (!a->before.files.empty() != !a->after.files.empty())
        throw_usage("evidence chips need both --before and --after");
      if (!a->before.files.empty()) {
        ImageryArgs b = a->before, f = a->before;
        f.files = a->after.files;
        before = rasters::Imagery::open(b.options("date 1 (--before)"));
        after = rasters::Imagery::open(f.options("date 2 (--after)"));
        run.before = &*before;
        run.after = &*after;
      }
      const auto r = run_with_progress(
          a->out, [&](const SchedulerOptions& so) { return pipelines::run_patches(run, so); });
      int counts[4] = {0, 0, 0, 0};
      for (const auto& p : r.set.patches) ++counts[std::clamp(p.priority, 1, 3)];
      std::printf("%zu patches (minimum %lld cells): %d P1, %d P2, %d P3; %lld chips\n",
                  r.set.patches.size(), static_cast<long long>(r.set.mmu_cells), counts[1],
                  counts[2], counts[3], static_cast<long long>(r.chips));
      for (const auto& f : r.files) std::printf("  %s\n", f.c_str());
      return 0;
    };
  });
}

}  // namespace fw::cli
