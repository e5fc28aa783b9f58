// `farmwatch info`: versions and the GDAL drivers farmwatch needs.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.hpp"
#include "engine/versions.hpp"

namespace fw::cli {

void add_info(CLI::App& app, Action& action) {
  auto* cmd =
      app.add_subcommand("info", "Versions of farmwatch and its libraries, and GDAL drivers");
  auto json_out = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json_out, "Print as JSON");
  cmd->callback([&action, json_out] {
    action = [json_out] {
      const VersionInfo v = version_info();
      bool all = true;
      for (const auto& d : v.drivers) all &= d.second;
      if (*json_out) {
        nlohmann::json j;
        for (const auto& [n, ver] : v.libraries) j["versions"][n] = ver;
        for (const auto& [n, ok] : v.drivers) j["drivers"][n] = ok;
        j["drivers_ok"] = all;
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("Versions\n");
        for (const auto& [n, ver] : v.libraries)
          std::printf("  %-10s %s\n", n.c_str(), ver.c_str());
        std::printf("GDAL drivers\n");
        for (const auto& [n, ok] : v.drivers) {
          std::printf("  %-12s %s\n", n.c_str(), ok ? "yes" : "MISSING");
        }
      }
      return all ? 0 : 1;
    };
  });
}

}  // namespace fw::cli
