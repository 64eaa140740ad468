// The `galley` command. Subcommands: serve, gateway, up (more arrive with their components).
// Every flag has an environment twin, GALLEY_<FLAG_IN_UPPER_SNAKE_CASE>; the flag wins.
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "cli/commands.h"
#include "cli/schedule_cmd.h"

#ifndef GALLEY_VERSION
#define GALLEY_VERSION "dev"
#endif

int main(int argc, char** argv) {
#ifdef NDEBUG
  // Debian builds abseil with its debug checks on, so every absl::Mutex acquisition would walk
  // a process-wide lock-order graph. The release binary turns that off; the debug and
  // ASan+UBSan builds the tests run keep it (a lock-order cycle aborts there).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  CLI::App app{"Galley: serve AI models as cloud-native microservices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", GALLEY_VERSION);

  std::vector<galley::cli::Runner> runners;
  runners.push_back(galley::cli::AddServeCommand(app));
  runners.push_back(galley::cli::AddGatewayCommand(app));
  runners.push_back(galley::cli::AddUpCommand(app));
  runners.push_back(galley::cli::AddScheduleCommand(app));
  runners.push_back(galley::cli::AddAutoscaleCommand(app));
  runners.push_back(galley::cli::AddSimCommand(app));
  runners.push_back(galley::cli::AddOperatorCommand(app));
  runners.push_back(galley::cli::AddModelCommand(app));
  runners.push_back(galley::cli::AddIndexCommand(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, with CLI11's message on stderr.
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (auto& run : runners) {
    const int rc = run();
    if (rc >= 0) return rc;
  }
  return 0;
}
