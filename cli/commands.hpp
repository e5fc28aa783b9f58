// The farmwatch subcommands: each registers its options on the app and sets the action to run.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace fw::cli {

// The action a parsed subcommand runs; returns the process exit code.
using Action = std::function<int()>;

void add_info(CLI::App& app, Action& action);
void add_synth(CLI::App& app, Action& action);
void add_indices(CLI::App& app, Action& action);
void add_change(CLI::App& app, Action& action);
void add_zonal(CLI::App& app, Action& action);
void add_indicators(CLI::App& app, Action& action);
void add_patches(CLI::App& app, Action& action);
void add_ecology(CLI::App& app, Action& action);
void add_pipeline_commands(CLI::App& app, Action& action);  // validate, stages, run, monitor, demo

}  // namespace fw::cli
