// The `galley` subcommands. Each Add* registers its flags on `app` and returns a runner that
// main() calls if that subcommand was chosen; the runner returns the process exit code.
#pragma once

#include <functional>

#include "CLI/CLI.hpp"

namespace galley::cli {

using Runner = std::function<int()>;

Runner AddServeCommand(CLI::App& app);
Runner AddGatewayCommand(CLI::App& app);
Runner AddUpCommand(CLI::App& app);
// `galley autoscale plan` (cli/autoscale_cmd.cc).
Runner AddAutoscaleCommand(CLI::App& app);
// `galley autoscale run`, added under the `autoscale` command (cli/autoscale_run_cmd.cc).
Runner AddAutoscaleRunCommand(CLI::App* autoscale);
// `galley schedule run`, added under the `schedule` command (cli/schedule_run_cmd.cc).
Runner AddScheduleRunCommand(CLI::App* schedule);
// `galley sim autoscale` (cli/sim_cmd.cc).
Runner AddSimCommand(CLI::App& app);
Runner AddOperatorCommand(CLI::App& app);
// `galley model fetch` (cli/model_cmd.cc).
Runner AddModelCommand(CLI::App& app);
// `galley index build` and `galley index eval` (cli/index_cmd.cc).
Runner AddIndexCommand(CLI::App& app);

}  // namespace galley::cli
