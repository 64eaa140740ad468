// `galley up`: the whole stack on one machine. The gateway on --listen (default 0.0.0.0:8080)
// in front of `galley serve` replicas that a local supervisor runs as child processes on free
// loopback ports, restarts when they crash, and stops cleanly on SIGTERM. With --autoscale, the
// autoscaler's controller scrapes the replicas and scales the supervisor.
#include <algorithm>
#include <iostream>

#include "autoscale/controller.h"
#include "autoscale/scrape_metrics_source.h"

#include "cli/commands.h"
#include "cli/flags.h"
#include "common/log.h"
#include "common/signals.h"
#include "gateway/gateway_main.h"
#include "gateway/http_upstream.h"
#include "local/supervisor.h"
#include "metrics/registry.h"

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
  // --autoscale and the inference policy's knobs (defaults: autoscale/inference_policy.h).
  bool autoscale = false;
  int min_replicas = 1;
  int max_replicas = 4;
  double target_concurrency = autoscale::InferencePolicy{}.target_concurrency;
  int64_t sync_period_ms = 15'000;
  int64_t stable_window_ms = 60'000;
  int64_t scale_down_delay_ms = 60'000;
  int64_t model_load_time_ms = 10'000;
};

void AddAutoscaleFlags(CLI::App* cmd, UpFlags& up) {
  cmd->add_flag("--autoscale", up.autoscale,
                "scale the replicas with the autoscaler (starts --min-replicas of them)")
      ->envname("GALLEY_AUTOSCALE");
  Flag(cmd, "min-replicas", up.min_replicas, "autoscale: the warm pool, never scaled below")
      ->check(CLI::Range(1, 64));
  Flag(cmd, "max-replicas", up.max_replicas, "autoscale: most replicas")->check(CLI::Range(1, 64));
  Flag(cmd, "target-concurrency", up.target_concurrency,
       "autoscale: in-flight plus queued requests per replica to aim for")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "sync-period-ms", up.sync_period_ms, "autoscale: how often to observe and decide")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "stable-window-ms", up.stable_window_ms,
       "autoscale: window the demand is averaged over (the panic window is 10% of it)")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "scale-down-delay-ms", up.scale_down_delay_ms,
       "autoscale: hold the highest recommendation this long before scaling down")
      ->check(CLI::NonNegativeNumber);
  Flag(cmd, "model-load-time-ms", up.model_load_time_ms,
       "autoscale: how long a new replica takes to help (starting replicas count as capacity)")
      ->check(CLI::PositiveNumber);
}

// The autoscaler of `galley up`: scrapes the supervisor's replicas, scales the supervisor.
// NOTE: its galley_autoscale_* metrics are not on the gateway's /metrics: RunGateway owns its
// registry and has no hook to add one, so for now the decisions are in the log only.
struct UpAutoscaler {
  metrics::Registry registry;  // served on the gateway's /metrics
  gateway::HttpUpstream upstream;
  std::unique_ptr<autoscale::ScrapeMetricsSource> source;
  std::unique_ptr<autoscale::Controller> controller;

  absl::Status Start(const UpFlags& up, local::Supervisor& sup) {
    using std::chrono::milliseconds;
    autoscale::ControllerOptions o;
    o.sync_period = milliseconds(up.sync_period_ms);
    o.policy.min_replicas = up.min_replicas;
    o.policy.max_replicas = up.max_replicas;
    o.policy.target_concurrency = up.target_concurrency;
    o.policy.stable_window = absl::Milliseconds(up.stable_window_ms);
    o.policy.scale_down_delay = absl::Milliseconds(up.scale_down_delay_ms);
    o.policy.model_load_time = absl::Milliseconds(up.model_load_time_ms);
    autoscale::ScrapeOptions scrape;
    scrape.timeout = std::min(milliseconds(1'000), o.sync_period);
    source = std::make_unique<autoscale::ScrapeMetricsSource>(sup, upstream, SteadyClock::Get(),
                                                              scrape);
    controller = std::make_unique<autoscale::Controller>(*source, sup, SteadyClock::Get(), o, &registry);
    log::Info("autoscaler_started",
              {{"min_replicas", up.min_replicas}, {"max_replicas", up.max_replicas},
               {"target_concurrency", up.target_concurrency},
               {"sync_period_ms", up.sync_period_ms}, {"stable_window_ms", up.stable_window_ms},
               {"scale_down_delay_ms", up.scale_down_delay_ms},
               {"model_load_time_ms", up.model_load_time_ms}});
    return controller->Start();
  }
  // Stops deciding (before the supervisor drains), then the scrapes' I/O. Idempotent.
  void Stop() {
    if (controller) controller->Stop();
    upstream.Shutdown();
  }
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
  AddAutoscaleFlags(cmd, *up);
  return [cmd, flags, up, opts]() -> int {
    if (!cmd->parsed()) return -1;
    if (!flags->Apply(opts->http)) return 2;
    BlockStopSignals();  // before any thread: the supervisor's and the gateway's inherit it
    opts->frontend.default_timeout = std::chrono::milliseconds(flags->default_timeout_ms);
    opts->drain_delay = std::chrono::milliseconds(flags->drain_delay_ms);
    opts->grace_period = std::chrono::milliseconds(flags->grace_period_ms);
    ApplyGatewayPolicyFlags(*opts, up->policy_ms[0], up->policy_ms[1], up->policy_ms[2], up->policy_ms[3]);
    if (up->autoscale && up->max_replicas < up->min_replicas) {
      std::cerr << "--max-replicas (" << up->max_replicas << ") is below --min-replicas ("
                << up->min_replicas << ")\n";
      return 2;
    }

    local::SupervisorOptions so;
    so.replicas = up->autoscale ? up->min_replicas : up->replicas;
    so.serve_args = up->serve_args;
    so.serve_args.push_back("--model");
    so.serve_args.push_back(opts->frontend.analyze_model);
    // Replicas sit behind the gateway, which speaks HTTP only; with gRPC on they would contend
    // for one port, and the supervisor reads a replica's port from its `listening` lines.
    so.serve_args.push_back("--grpc-port");
    so.serve_args.push_back("-1");
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
    std::unique_ptr<UpAutoscaler> autoscaler;
    if (up->autoscale) {
      autoscaler = std::make_unique<UpAutoscaler>();
      if (absl::Status st = autoscaler->Start(*up, sup); !st.ok()) {
        log::Error("start_failed", {{"error", std::string(st.message())}});
        return 1;
      }
    }
    const auto grace = opts->grace_period;
    UpAutoscaler* scaler = autoscaler.get();
    if (scaler != nullptr) opts->frontend.extra_registries.push_back(&scaler->registry);
    const int rc = gateway::RunGateway(*opts, sup, {}, [&sup, grace, scaler] {
      // The gateway no longer takes requests: stop scaling, then stop the replicas with their
      // own drain rules.
      if (scaler != nullptr) scaler->Stop();
      sup.Drain(SteadyClock::Get().Now() + grace);
    });
    if (autoscaler) autoscaler->Stop();
    sup.Stop();
    return rc;
  };
}

}  // namespace galley::cli
