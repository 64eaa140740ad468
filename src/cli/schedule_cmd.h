// `galley schedule`: the GPU-aware scheduler's command-line front end.
//   galley schedule replay --nodes FILE --pods FILE [--policy galley] [--seed 42] [--seeds 10]
//   galley schedule synth  --nodes FILE --pods FILE --variant share|multigpu|gpuspec|cpu
//                          --percent P [--seed 1] --out FILE [--cluster-size N --nodes-out FILE]
//   galley schedule run    --kubeconfig FILE [--scheduler-name galley-scheduler]
// Every flag has an environment twin GALLEY_<FLAG>.
#pragma once

#include <functional>

#include "CLI/CLI.hpp"

namespace galley::cli {

// Adds the `schedule` subcommand to `app`. The returned runner (call it after app.parse()) runs
// the chosen sub-subcommand and returns the exit code (0 ok, 1 failure, 2 usage), or -1 when
// `schedule` was not the chosen subcommand. Same shape as the other Add*Command runners.
std::function<int()> AddScheduleCommand(CLI::App& app);

}  // namespace galley::cli
