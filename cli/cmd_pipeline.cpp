// `farmwatch validate | stages | run | monitor | history | verify | demo`: pipelines and the
// monitoring run.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "engine/error.hpp"
#include "engine/progress.hpp"
#include "pipelines/run.hpp"
#include "pipelines/slurm.hpp"
#include "pipelines/stages.hpp"
#include "pipelines/synth.hpp"

namespace fw::cli {
namespace {

namespace fs = std::filesystem;

// How a run is split (farmwatch run/monitor --shard, --merge; farmwatch merge).
struct ShardArgs {
  std::string shard, run_dir, merge;
  int phase = 1, shards = 0;

  void add(CLI::App* cmd) {
    cmd->add_option("--shard", shard, "Run only shard i of N (0-based i/N) of --phase")
        ->group("Sharded runs (docs/scale-out.md)");
    cmd->add_option("--phase", phase, "The pass a shard computes (1-based; with --shard)")
        ->capture_default_str()
        ->group("Sharded runs (docs/scale-out.md)");
    cmd->add_option("--run-dir", run_dir, "Shared run folder the shards write (with --shard)")
        ->group("Sharded runs (docs/scale-out.md)");
    cmd->add_option("--merge", merge, "Merge the shards in this run folder into the outputs")
        ->group("Sharded runs (docs/scale-out.md)");
    cmd->add_option("--shards", shards, "Shard count of the run to merge (with --merge)")
        ->group("Sharded runs (docs/scale-out.md)");
  }
};

int execute(const pipelines::Config& cfg, bool force, const ShardArgs& sh = {}) {
  ProgressReporter progress(stderr_is_terminal());
  pipelines::RunOptions ro;
  ro.force = force;
  ro.scheduler.progress = progress.fn();
  if (!sh.shard.empty()) {
    if (sh.run_dir.empty()) throw_usage("--shard needs --run-dir (the shared run folder)");
    if (!sh.merge.empty()) throw_usage("--shard and --merge are two different jobs");
    const ShardSpec spec = ShardSpec::parse(sh.shard);
    const auto r = pipelines::run_shard(cfg, ro, spec, sh.phase, sh.run_dir);
    progress.finish();
    if (r.computed) {
      std::printf("shard %s, phase %d: computed %s in %.1f s into %s\n", spec.text().c_str(),
                  sh.phase, r.pass.c_str(), r.seconds, r.folder.c_str());
    } else {
      std::printf("shard %s, phase %d: nothing to compute (%s is the merge's); recorded in %s\n",
                  spec.text().c_str(), sh.phase, r.pass.c_str(), r.folder.c_str());
    }
    return 0;
  }
  if (!sh.run_dir.empty() && sh.merge.empty())
    throw_usage("--run-dir goes with --shard (for a merge: --merge DIR --shards N)");
  if (!sh.merge.empty()) {
    if (sh.shards < 1) throw_usage("--merge needs --shards N");
    ro.merge_dir = sh.merge;
    ro.shards = sh.shards;
  }
  const auto rep = pipelines::run_pipeline(cfg, ro);
  progress.finish();
  if (rep.skipped) {
    std::printf(
        "%s is up to date (inputs, configuration and software unchanged); --force to "
        "run again\n",
        rep.target.c_str());
    return 0;
  }
  std::printf("wrote %zu files into %s:\n", rep.files.size(), rep.target.c_str());
  std::size_t chips = 0;
  for (const auto& f : rep.files) {
    if (f.rfind("chips/", 0) == 0) {
      ++chips;
      continue;
    }
    std::printf("  %s\n", f.c_str());
  }
  if (chips) std::printf("  chips/ (%zu evidence chips)\n", chips);
  double total = 0;
  for (const auto& [s, t] : rep.seconds) total += t;
  std::printf("stages:");
  for (const auto& s : pipelines::stages()) {
    auto it = rep.seconds.find(s.name);
    if (it != rep.seconds.end()) std::printf(" %s %.1f s,", s.name.c_str(), it->second);
  }
  std::printf(" total %.1f s\n", total);
  return 0;
}

// A pipeline file with its overrides, run (or merged) by a subcommand.
struct FileArgs {
  std::string file;
  std::vector<std::string> sets;
  bool force = false;
  ShardArgs shard;
};

void run_file(CLI::App* cmd, Action& action, std::shared_ptr<FileArgs> a) {
  cmd->callback([&action, a] {
    action = [a] {
      return execute(pipelines::load_pipeline(a->file, a->sets), a->force, a->shard);
    };
  });
}

std::string absolute(const std::string& p) {
  return p.empty() || p.rfind("/vsi", 0) == 0 ? p : fs::absolute(p).lexically_normal().string();
}

struct MonitorArgs {
  std::vector<std::string> before, after, sets;
  std::string parcels, zones, sensor = "auto", mask_before, mask_after, mask_type = "scl", out,
                              history, dem, lst_before, lst_after;
  bool force = false;
  ShardArgs shard;
};

// The default pipeline for the given inputs, as pipeline text (JSON is YAML).
std::string monitor_pipeline(const MonitorArgs& a) {
  nlohmann::json j;
  auto date = [&](const std::vector<std::string>& files, const std::string& mask) {
    nlohmann::json d;
    std::vector<std::string> abs;
    for (const auto& f : files) abs.push_back(absolute(f));
    d["files"] = abs;
    d["sensor"] = a.sensor;
    if (!mask.empty()) {
      d["mask"] = absolute(mask);
      d["mask_type"] = a.mask_type;
    }
    return d;
  };
  j["inputs"]["before"] = date(a.before, a.mask_before);
  j["inputs"]["after"] = date(a.after, a.mask_after);
  j["inputs"]["parcels"]["file"] = absolute(a.parcels);
  if (!a.zones.empty()) j["inputs"]["zones"]["file"] = absolute(a.zones);
  if (!a.dem.empty()) j["inputs"]["dem"]["file"] = absolute(a.dem);
  if (!a.lst_before.empty()) j["inputs"]["before"]["lst"] = absolute(a.lst_before);
  if (!a.lst_after.empty()) j["inputs"]["after"]["lst"] = absolute(a.lst_after);
  j["outputs"]["dir"] = absolute(a.out);
  if (!a.history.empty())
    j["history"]["store"] = a.history.rfind("PG:", 0) == 0 ? a.history : absolute(a.history);
  return j.dump(2);
}

}  // namespace

void add_pipeline_commands(CLI::App& app, Action& action) {
  {
    auto* cmd = app.add_subcommand("validate", "Check a pipeline file without running it");
    struct Args {
      std::string file;
      std::vector<std::string> sets;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("file", a->file, "Pipeline file (YAML or JSON)")->required();
    cmd->add_option("--set", a->sets, "Override a key: key.path=value (repeatable)");
    cmd->callback([&action, a] {
      action = [a] {
        const auto cfg = pipelines::load_pipeline(a->file, a->sets);
        std::printf("%s: valid; runs into %s\n", a->file.c_str(), cfg.path("outputs.dir").c_str());
        return 0;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("stages", "List the pipeline stages and their options");
    auto markdown = std::make_shared<bool>(false);
    cmd->add_flag("--markdown", *markdown, "As the reference tables of docs/pipeline.md");
    cmd->callback([&action, markdown] {
      action = [markdown] {
        if (*markdown) {
          for (const auto& s : pipelines::stages()) {
            std::printf("### %s\n\n%s.", s.name.c_str(), s.doc.c_str());
            if (!s.writes.empty()) {
              std::printf(" Writes:");
              for (std::size_t i = 0; i < s.writes.size(); ++i)
                std::printf("%s `%s`", i ? "," : "", s.writes[i].c_str());
              std::printf(".");
            }
            std::printf("\n\n");
            if (s.options.empty()) continue;
            std::printf("| key | type | default | meaning |\n|---|---|---|---|\n");
            for (const auto& o : s.options) {
              std::string doc = o.doc;
              std::string esc;
              for (char ch : doc) esc += ch == '|' ? std::string("\\|") : std::string(1, ch);
              std::printf("| `%s` | %s%s | %s | %s |\n", o.key.c_str(),
                          pipelines::opt_type_name(o.type), o.required ? ", **required**" : "",
                          o.def.empty() ? "" : ("`" + o.def + "`").c_str(), esc.c_str());
            }
            std::printf("\n");
          }
          return 0;
        }
        for (const auto& s : pipelines::stages()) {
          std::printf("%s: %s\n", s.name.c_str(), s.doc.c_str());
          for (const auto& o : s.options) {
            std::printf("    %-40s %s%s%s. %s\n", o.key.c_str(), pipelines::opt_type_name(o.type),
                        o.required ? ", required" : "",
                        o.def.empty() ? "" : (", default " + o.def).c_str(), o.doc.c_str());
          }
          if (!s.writes.empty()) {
            std::printf("    writes:");
            for (const auto& w : s.writes) std::printf(" %s", w.c_str());
            std::printf("\n");
          }
        }
        return 0;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("run", "Run a pipeline file");
    auto a = std::make_shared<FileArgs>();
    cmd->add_option("file", a->file, "Pipeline file (YAML or JSON)")->required();
    cmd->add_option("--set", a->sets, "Override a key: key.path=value (repeatable)");
    cmd->add_flag("--force", a->force, "Run even when the outputs are up to date");
    a->shard.add(cmd);
    run_file(cmd, action, a);
  }
  {
    auto* cmd = app.add_subcommand(
        "merge", "Merge the shards of a sharded run into the outputs of a one-machine run");
    auto a = std::make_shared<FileArgs>();
    cmd->add_option("file", a->file, "Pipeline file (YAML or JSON), as the shards ran it")
        ->required();
    cmd->add_option("--set", a->sets, "Override a key: key.path=value (as the shards had them)");
    cmd->add_option("--run-dir", a->shard.merge, "The shared run folder the shards wrote")
        ->required();
    cmd->add_option("--shards", a->shard.shards, "Shard count")->required();
    cmd->add_flag("--force", a->force, "Merge even when the outputs are up to date");
    run_file(cmd, action, a);
  }
  {
    auto* cmd = app.add_subcommand(
        "slurm", "Run a pipeline as Slurm job arrays (one per phase) and an afterok merge job");
    struct Args {
      std::string file, run_dir, partition, time;
      std::vector<std::string> sets;
      int shards = 0, phases = 0, cpus = 0;
      bool dry_run = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("file", a->file, "Pipeline file (YAML or JSON), on storage every node sees")
        ->required();
    cmd->add_option("--shards", a->shards, "Tasks per array (shards)")
        ->required()
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--run-dir", a->run_dir,
                    "Shared run folder for the shards' results (default: the outputs folder's "
                    "sibling <outputs.dir>.shards)");
    cmd->add_option("--phases", a->phases,
                    "Phases (array jobs) to run; default: what the pipeline's passes allow");
    cmd->add_option("--partition", a->partition, "#SBATCH --partition");
    cmd->add_option("--time", a->time, "#SBATCH --time, per job (for example 02:00:00)");
    cmd->add_option("--cpus-per-task", a->cpus, "#SBATCH --cpus-per-task (and --threads)");
    cmd->add_option("--set", a->sets, "Override a key: key.path=value (passed on to every job)");
    cmd->add_flag("--dry-run", a->dry_run, "Print the batch scripts instead of submitting them");
    cmd->callback([&action, a] {
      action = [a] {
        const auto cfg = pipelines::load_pipeline(a->file, a->sets);
        pipelines::SlurmJob j;
        j.pipeline = a->file;
        j.sets = a->sets;
        j.run_dir = a->run_dir.empty() ? cfg.path("outputs.dir") + ".shards" : a->run_dir;
        j.farmwatch = fs::read_symlink("/proc/self/exe").string();
        j.shards = a->shards;
        j.phases = a->phases > 0 ? a->phases : pipelines::shard_phases(cfg);
        j.memory_mib = default_memory_mib();
        j.partition = a->partition;
        j.time = a->time;
        j.cpus_per_task = a->cpus;
        if (a->dry_run) {
          for (const auto& s : pipelines::slurm_scripts(j))
            std::printf("### %s/slurm/%s\n%s\n", j.run_dir.c_str(), s.name.c_str(), s.text.c_str());
          return 0;
        }
        const auto ids = pipelines::submit_slurm(j);
        for (std::size_t k = 0; k + 1 < ids.size(); ++k)
          std::printf("phase %zu: array job %s (%d tasks)\n", k + 1, ids[k].c_str(), j.shards);
        std::printf("merge: job %s (after phase %d) writes %s\n", ids.back().c_str(), j.phases,
                    cfg.path("outputs.dir").c_str());
        std::printf("job ids: %s", ids.front().c_str());
        for (std::size_t k = 1; k < ids.size(); ++k) std::printf(",%s", ids[k].c_str());
        std::printf("\n");
        return 0;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "monitor", "Run the default monitoring pipeline on two dates, parcels and zones");
    auto a = std::make_shared<MonitorArgs>();
    cmd->add_option("--before", a->before, "Date 1 raster(s)")->required();
    cmd->add_option("--after", a->after, "Date 2 raster(s)")->required();
    cmd->add_option("--parcels", a->parcels, "Farmland parcels (any OGR vector)")->required();
    cmd->add_option("--zones", a->zones,
                    "Ecological zones (any OGR vector): FVC, RSEI and per-zone indicators");
    cmd->add_option("--dem", a->dem, "Digital elevation model: slope and steep farmland");
    cmd->add_option("--lst-before", a->lst_before, "Land surface temperature of date 1 (RSEI)");
    cmd->add_option("--lst-after", a->lst_after, "Land surface temperature of date 2 (RSEI)");
    cmd->add_option("--sensor", a->sensor, "Sensor of both dates (default: auto)");
    cmd->add_option("--mask-before", a->mask_before, "Date 1 cloud/quality mask");
    cmd->add_option("--mask-after", a->mask_after, "Date 2 cloud/quality mask");
    cmd->add_option("--mask-type", a->mask_type, "scl, qa_pixel or binary")
        ->check(CLI::IsMember({"scl", "qa_pixel", "binary"}))
        ->capture_default_str();
    cmd->add_option("--history", a->history,
                    "History store: a GeoPackage path or a PG: connection string");
    cmd->add_option("--set", a->sets, "Override any pipeline key: key.path=value (repeatable)");
    cmd->add_flag("--force", a->force, "Run even when the outputs are up to date");
    cmd->add_option("--out", a->out, "The run folder")->required();
    a->shard.add(cmd);
    cmd->callback([&action, a] {
      action = [a] {
        return execute(pipelines::load_pipeline_text(monitor_pipeline(*a), "monitor", a->sets),
                       a->force, a->shard);
      };
    });
  }
  {
    auto* hist = app.add_subcommand(
        "history", "What a history store holds, as CSV: runs, cases, a parcel's series");
    hist->require_subcommand(1);
    struct Args {
      std::string store, parcel;
      bool all = false;
    };
    auto a = std::make_shared<Args>();
    auto* runs = hist->add_subcommand("runs", "Every run with its counts by status");
    runs->add_option("--history", a->store, "History store")->required();
    runs->callback([&action, a] {
      action = [a] {
        std::fputs(pipelines::history::runs_csv(a->store).c_str(), stdout);
        return 0;
      };
    });
    auto* cases = hist->add_subcommand("cases", "The open, alerted cases (--all: every case)");
    cases->add_option("--history", a->store, "History store")->required();
    cases->add_flag("--all", a->all, "Every case, closed ones too");
    cases->callback([&action, a] {
      action = [a] {
        std::fputs(pipelines::history::cases_csv(a->store, a->all).c_str(), stdout);
        return 0;
      };
    });
    auto* parcel = hist->add_subcommand("parcel", "One parcel's indicators, run by run");
    parcel->add_option("id", a->parcel, "Parcel id")->required();
    parcel->add_option("--history", a->store, "History store")->required();
    parcel->callback([&action, a] {
      action = [a] {
        std::fputs(pipelines::history::parcel_series_csv(a->store, a->parcel).c_str(), stdout);
        return 0;
      };
    });
  }
  {
    auto* verify = app.add_subcommand(
        "verify", "Field verification: export the open cases, import the filled-in file");
    verify->require_subcommand(1);
    struct Args {
      std::string store, file;
      bool all = false;
    };
    auto a = std::make_shared<Args>();
    auto* ex = verify->add_subcommand(
        "export", "Write the open cases with empty verification fields (.gpkg .geojson .csv .shp)");
    ex->add_option("--history", a->store, "History store")->required();
    ex->add_option("--out", a->file, "File to write")->required();
    ex->add_flag("--all", a->all, "Every case, closed ones too");
    ex->callback([&action, a] {
      action = [a] {
        const auto r = pipelines::history::export_verification(a->store, a->file, a->all);
        std::printf("wrote %lld cases to %s\n", static_cast<long long>(r.cases), a->file.c_str());
        return 0;
      };
    });
    auto* im = verify->add_subcommand(
        "import", "Apply a filled-in verification file to the store (all rows or none)");
    im->add_option("file", a->file, "The filled-in file (any OGR format with track_id)")
        ->required();
    im->add_option("--history", a->store, "History store")->required();
    im->callback([&action, a] {
      action = [a] {
        const auto r = pipelines::history::import_verification(a->store, a->file);
        std::printf(
            "imported %lld verified cases from %s (%lld closed: legal or false alarm, not "
            "alerted again; %lld rows not filled in)\n",
            static_cast<long long>(r.applied), a->file.c_str(), static_cast<long long>(r.closed),
            static_cast<long long>(r.unchanged));
        return 0;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "demo", "Synthesise a realistic scene and run the default pipeline on it");
    struct Args {
      std::string out = "farmwatch-demo", size = "4096";
      int parcels = 8000;
      bool force = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--out", a->out, "Demo folder")->capture_default_str();
    cmd->add_option("--size", a->size, "Scene size in 10 m pixels")->capture_default_str();
    cmd->add_option("--parcels", a->parcels, "Parcels")->capture_default_str();
    cmd->add_flag("--force", a->force, "Run even when the outputs are up to date");
    cmd->callback([&action, a] {
      action = [a] {
        const std::string scene = a->out + "/scene";
        if (!fs::exists(scene + "/" + synth::kDate2)) {
          synth::Options o;
          o.out = scene;
          synth::parse_size(a->size, o.width, o.height);
          o.parcels = a->parcels;
          o.seed = 1;
          ProgressReporter progress(stderr_is_terminal());
          SchedulerOptions so;
          so.progress = progress.fn();
          const auto r = synth::generate(o, so);
          progress.finish();
          std::printf("synthesised %s: %d parcels, %d zones, %d planted changes, %d clouds\n",
                      scene.c_str(), r.parcels, r.zones, r.changes, r.clouds);
        }
        MonitorArgs m;
        m.before = {scene + "/" + synth::kDate1};
        m.after = {scene + "/" + synth::kDate2};
        m.mask_before = scene + "/" + synth::kScl1;
        m.mask_after = scene + "/" + synth::kScl2;
        m.parcels = scene + "/parcels.gpkg";
        m.zones = scene + "/zones.geojson";
        m.out = a->out + "/run";
        const int rc = execute(pipelines::load_pipeline_text(monitor_pipeline(m), "demo",
                                                             {"inputs.before.date=2024-05-01",
                                                              "inputs.after.date=2024-09-01"}),
                               a->force);
        std::printf(
            "\nOpen %s/run/report.html in a browser for the summary, the quick-look map and the "
            "most urgent patches with their before/after chips.\n"
            "In QGIS (Layer > Add Layer, or drag the files in): %s/run/change_class.tif and "
            "change_intensity.tif (styled by their .qml), %s/run/farmwatch.gpkg (layers parcels "
            "and patches, styled by alert and priority), and %s/scene/date2.tif for the image. "
            "%s/scene/truth.json lists the planted changes.\n",
            a->out.c_str(), a->out.c_str(), a->out.c_str(), a->out.c_str(), a->out.c_str());
        return rc;
      };
    });
  }
}

}  // namespace fw::cli
