// `galley up`: the whole stack on one machine. The gateway on --listen (default 0.0.0.0:8080)
// in front of `galley serve` replicas that a local supervisor runs as child processes on free
// loopback ports, restarts when they crash, and stops cleanly on SIGTERM.
#include <iostream>

#include "cli/commands.h"
#include "cli/flags.h"
#include "common/log.h"
#include "common/signals.h"
#include "gateway/gateway_main.h"
#include "local/supervisor.h"

namespace galley::cli {

void AddGatewayPolicyFlags(CLI::App* cmd, gateway::GatewayRunOptions& o, int64_t& try_timeout_ms,
                           int64_t& health_interval_ms, int64_t& eject_ms, int64_t& break_ms);
bool ApplyGatewayPolicyFlags(gateway::GatewayRunOptions& o, int64_t try_timeout_ms,
                             int64_t health_interval_ms, int64_t eject_ms, int64_t break_ms);

namespace {

struct UpFlags {
  int replicas = 2;
  int64_t restart_initial_ms = 10'000;
  int64_t restart_max_ms = 300'000;
  int64_t replica_drain_delay_ms = 1'000;
  std::vector<std::string> serve_args;
  std::array<int64_t, 4> policy_ms{5000, 1000, 5000, 5000};
};

}  // namespace

Runner AddUpCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("up", "Run the gateway and model replicas on this machine");
  auto flags = std::make_shared<HttpFlags>();
  auto up = std::make_shared<UpFlags>();
  auto opts = std::make_shared<gateway::GatewayRunOptions>();
  flags->Add(cmd);
  Flag(cmd, "replicas", up->replicas, "model replicas to run")->check(CLI::Range(0, 64));
  Flag(cmd, "restart-initial-ms", up->restart_initial_ms,
       "restart delay after a second crash in a row (the first restarts at once; doubles per crash)")->check(CLI::PositiveNumber);
  Flag(cmd, "restart-max-ms", up->restart_max_ms, "cap on the restart delay")->check(CLI::PositiveNumber);
  Flag(cmd, "replica-drain-delay-ms", up->replica_drain_delay_ms,
       "each replica's drain delay on shutdown")->check(CLI::NonNegativeNumber);
  Flag(cmd, "serve-arg", up->serve_args, "extra flag for every `galley serve` replica (repeatable)");
  AddGatewayPolicyFlags(cmd, *opts, up->policy_ms[0], up->policy_ms[1], up->policy_ms[2], up->policy_ms[3]);
  return [cmd, flags, up, opts]() -> int {
    if (!cmd->parsed()) return -1;
    if (!flags->Apply(opts->http)) return 2;
    BlockStopSignals();  // before any thread: the supervisor's and the gateway's inherit it
    opts->frontend.default_timeout = std::chrono::milliseconds(flags->default_timeout_ms);
    opts->drain_delay = std::chrono::milliseconds(flags->drain_delay_ms);
    opts->grace_period = std::chrono::milliseconds(flags->grace_period_ms);
    ApplyGatewayPolicyFlags(*opts, up->policy_ms[0], up->policy_ms[1], up->policy_ms[2], up->policy_ms[3]);

    local::SupervisorOptions so;
    so.replicas = up->replicas;
    so.serve_args = up->serve_args;
    so.serve_args.push_back("--model");
    so.serve_args.push_back(opts->frontend.analyze_model);
    so.restart_backoff.initial = std::chrono::milliseconds(up->restart_initial_ms);
    so.restart_backoff.max = std::chrono::milliseconds(up->restart_max_ms);
    so.drain_delay = std::chrono::milliseconds(up->replica_drain_delay_ms);
    so.grace_period = std::chrono::milliseconds(flags->grace_period_ms);
    auto supervisor = local::Supervisor::Create(std::move(so));
    if (!supervisor.ok()) {
      log::Error("start_failed", {{"error", std::string(supervisor.status().message())}});
      return 1;
    }
    if (absl::Status st = (*supervisor)->Start(); !st.ok()) {
      log::Error("start_failed", {{"error", std::string(st.message())}});
      return 1;
    }
    local::Supervisor& sup = **supervisor;
    const auto grace = opts->grace_period;
    const int rc = gateway::RunGateway(*opts, sup, {}, [&sup, grace] {
      // The gateway no longer takes requests: stop the replicas with their own drain rules.
      sup.Drain(SteadyClock::Get().Now() + grace);
    });
    sup.Stop();
    return rc;
  };
}

}  // namespace galley::cli
