// farmwatch: monitoring farmland and rural ecosystems from satellite imagery.
#include <cstdio>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <iostream>

#include "cli/commands.hpp"
#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/log.hpp"
#include "engine/progress.hpp"
#include "engine/scheduler.hpp"
#include "engine/versions.hpp"

namespace {

void print_versions() {
  const fw::VersionInfo v = fw::version_info();
  for (const auto& [name, version] : v.libraries)
    std::printf("%-10s %s\n", name.c_str(), version.c_str());
}

}  // namespace

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // Window buffers are megabytes each and live for one window. By default glibc serves them with
  // mmap and returns them on free, so every window pays page faults and zeroing again (about
  // 7 % of a patch pass); kept in the heap (up to 32 MiB a buffer, 256 MiB kept free) they are
  // reused. Peak memory moves little (measured: 50 MiB less on the lean 5490 monitoring run,
  // 30 MiB more on the 10980 one): the buffers are bounded by the memory budget anyway.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
  CLI::App app{"farmwatch " + fw::farmwatch_version() +
               ": farmland and rural-ecosystem monitoring from satellite imagery"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  int threads = 0;
  double memory = 256;
  std::string log_format = "text", log_level = "info";
  app.add_flag("--version", show_version, "Print the versions of farmwatch and its libraries");
  app.add_option("--threads", threads, "Worker threads (0 = all cores)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--memory", memory, "Memory budget for raster windows, MiB")
      ->check(CLI::Range(8.0, 1e6))
      ->capture_default_str();
  app.add_option("--log-format", log_format, "Log lines as 'text' or 'json'")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.footer(
      "Exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input, 4 output failed, "
      "5 cancelled, 6 locked, 7 no valid data.");
  fw::cli::Action action;
  fw::cli::add_info(app, action);
  fw::cli::add_synth(app, action);
  fw::cli::add_indices(app, action);
  fw::cli::add_change(app, action);
  fw::cli::add_zonal(app, action);
  fw::cli::add_indicators(app, action);
  fw::cli::add_patches(app, action);
  fw::cli::add_ecology(app, action);
  fw::cli::add_pipeline_commands(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(fw::ExitCode::kUsage);
  }
  try {
    fw::log::set_format(fw::log::parse_format(log_format));
    fw::log::set_level(fw::log::parse_level(log_level));
    fw::init_gdal();
    fw::set_default_threads(threads);
    fw::set_default_memory_mib(memory);
    fw::install_signal_handlers();
    if (show_version) {
      print_versions();
      return 0;
    }
    if (!action) {
      std::cout << app.help();
      return 0;
    }
    return action();
  } catch (const fw::Error& e) {
    fw::log::error(e.what(), {{"exit_code", std::to_string(static_cast<int>(e.code()))},
                              {"kind", fw::exit_code_name(e.code())}});
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    fw::log::error(std::string("internal error: ") + e.what());
    return static_cast<int>(fw::ExitCode::kInternal);
  }
}
