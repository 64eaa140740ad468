// `galley up`: the whole stack on one machine. The gateway on --listen (default 127.0.0.1:8080)
// in front of `galley serve` replicas that a local supervisor runs as child processes on free
// loopback ports, restarts when they crash, and stops cleanly on SIGTERM. With --autoscale, the
// autoscaler's controller scrapes the replicas (or asks Prometheus, --metrics-source) and scales
// the supervisor; --prometheus-sd-file keeps a Prometheus file_sd file listing the replicas.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "autoscale/controller.h"
#include "autoscale/prometheus_metrics_source.h"
#include "autoscale/scrape_metrics_source.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/gateway_flags.h"
#include "cli/queue_depth.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/strings.h"
#include "gateway/gateway_main.h"
#include "inference/model_repository.h"
#include "local/file_sd.h"
#include "local/supervisor.h"
#include "metrics/registry.h"
#include "redis/redis_client.h"
#include "upstream/http_upstream.h"

namespace galley::cli {

namespace {

// The models the replicas will serve: those of the repository their --model-repository names
// (a --serve-arg), else of `galley serve`'s default repository. Folders that do not load are
// left out (the replicas will not serve them either).
std::vector<std::string> ServedModels(const std::vector<std::string>& serve_args) {
  std::string repository = GALLEY_SOURCE_MODELS;
  for (size_t i = 0; i < serve_args.size(); ++i) {
    const std::string& a = serve_args[i];
    if (a == "--model-repository" && i + 1 < serve_args.size()) repository = serve_args[i + 1];
    if (StartsWith(a, "--model-repository=")) repository = a.substr(19);
  }
  std::vector<std::string> names;
  auto entries = inference::ScanRepository(repository);
  if (!entries.ok()) return names;
  for (const auto& e : *entries) {
    if (e.status.ok()) names.push_back(e.name);
  }
  return names;
}

struct UpFlags {
  int replicas = 2;
  int64_t restart_initial_ms = 10'000;
  int64_t restart_max_ms = 300'000;
  int64_t replica_drain_delay_ms = 1'000;
  std::vector<std::string> serve_args;
  PipelineFlags pipelines;
  std::array<int64_t, 4> policy_ms{5000, 1000, 5000, 5000};
  // --autoscale and the inference policy's knobs (defaults: autoscale/inference_policy.h).
  bool autoscale = false;
  int min_replicas = 1;
  int max_replicas = 4;
  double target_concurrency = autoscale::InferencePolicy{}.target_concurrency;
  double target_rps = 0;  // > 0: size by request rate, this many requests per second per replica
  int64_t sync_period_ms = 15'000;
  int64_t stable_window_ms = absl::ToInt64Milliseconds(autoscale::InferencePolicy{}.stable_window);
  int64_t scale_down_delay_ms =
      absl::ToInt64Milliseconds(autoscale::InferencePolicy{}.scale_down_delay);
  int64_t model_load_time_ms = 10'000;
  int64_t burst_gap_max_ms = absl::ToInt64Milliseconds(autoscale::InferencePolicy{}.burst_gap_max);
  // --queue-redis or --queue-amqp: the replicas consume this queue, and the autoscaler reads its
  // depth.
  QueueSource queue;
  // --autoscale-mode hpa: the HPA-compatible recommender on one Pods metric (AverageValue).
  std::string autoscale_mode = "galley";
  std::string hpa_metric = "queue_length";
  double hpa_target = 0;
  // Where the autoscaler reads the replicas' load, and the Prometheus file_sd file to keep.
  std::string metrics_source = "scrape";
  std::string prometheus_url;
  std::string prometheus_sd_file;
  bool scale_to_zero = false;
  int64_t scale_to_zero_grace_ms = 30'000;
};

void AddAutoscaleFlags(CLI::App* cmd, UpFlags& up) {
  cmd->add_flag("--autoscale", up.autoscale,
                "scale the replicas with the autoscaler (starts --min-replicas of them)")
      ->envname("GALLEY_AUTOSCALE");
  Flag(cmd, "min-replicas", up.min_replicas,
       "autoscale: the warm pool, never scaled below (0 needs --scale-to-zero)")
      ->check(CLI::Range(0, 64));
  Flag(cmd, "max-replicas", up.max_replicas, "autoscale: most replicas")->check(CLI::Range(1, 64));
  Flag(cmd, "target-concurrency", up.target_concurrency,
       "autoscale: in-flight plus queued requests per replica to aim for")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "target-rps", up.target_rps,
       "autoscale: size by request rate instead, this many requests per second per replica (the "
       "model's full-batch throughput x 0.8 is a good start; 0: by concurrency)")
      ->check(CLI::NonNegativeNumber);
  Flag(cmd, "sync-period-ms", up.sync_period_ms, "autoscale: how often to observe and decide")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "stable-window-ms", up.stable_window_ms,
       "autoscale: window the demand is averaged over (the panic window is 10% of it)")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "scale-down-delay-ms", up.scale_down_delay_ms,
       "autoscale: hold the highest recommendation this long before scaling down")
      ->check(CLI::NonNegativeNumber);
  Flag(cmd, "burst-gap-max-ms", up.burst_gap_max_ms,
       "autoscale: bursts at most this far apart are recurring, and the fleet they needed is held "
       "while they recur (0 turns it off)")
      ->check(CLI::NonNegativeNumber);
  Flag(cmd, "model-load-time-ms", up.model_load_time_ms,
       "autoscale: how long a new replica takes to help (starting replicas count as capacity)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--scale-to-zero", up.scale_to_zero,
                "autoscale: with --min-replicas 0, stop the last replica when idle; the gateway "
                "then holds requests until a replica is ready")
      ->envname("GALLEY_SCALE_TO_ZERO");
  Flag(cmd, "scale-to-zero-grace-ms", up.scale_to_zero_grace_ms,
       "autoscale: idle time before the last replica stops")
      ->check(CLI::NonNegativeNumber);
}

void AddMetricsSourceFlags(CLI::App* cmd, UpFlags& up) {
  Flag(cmd, "autoscale-mode", up.autoscale_mode,
       "autoscale: galley (the inference policy) or hpa (Kubernetes HPA rules on --hpa-metric; "
       "--scale-down-delay-ms is then its downscale stabilization window)")
      ->check(CLI::IsMember({"galley", "hpa"}));
  Flag(cmd, "hpa-metric", up.hpa_metric,
       "autoscale-mode hpa: the Pods metric, queue_length (galley_queue_length) or inflight "
       "(galley_model_inflight_requests), per replica; or queue_backlog, the External metric "
       "of the queue (--queue-redis: lag + pending; --queue-amqp: ready + the replicas' "
       "in-flight messages), per replica")
      ->check(CLI::IsMember({"queue_length", "inflight", "queue_backlog"}));
  Flag(cmd, "hpa-target", up.hpa_target,
       "autoscale-mode hpa: the metric's target AverageValue per replica (required)")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "metrics-source", up.metrics_source,
       "autoscale: scrape (each replica's /metrics) or prometheus (query --prometheus-url)")
      ->check(CLI::IsMember({"scrape", "prometheus"}));
  Flag(cmd, "prometheus-url", up.prometheus_url,
       "metrics-source prometheus: the server, http://IP:PORT[/prefix]");
  AddQueueSourceFlags(cmd, up.queue, "replicas consume work from, and the autoscaler scales on,");
  Flag(cmd, "prometheus-sd-file", up.prometheus_sd_file,
       "keep this Prometheus file_sd JSON file listing the replicas (rewritten atomically on "
       "every change)");
}

// Checks the flags of AddMetricsSourceFlags against each other; prints why not to stderr.
bool CheckMetricsSourceFlags(const UpFlags& up) {
  if (up.metrics_source == "prometheus") {
    if (up.prometheus_url.empty()) {
      std::cerr << "--metrics-source prometheus needs --prometheus-url\n";
      return false;
    }
    if (auto ep = autoscale::ParsePrometheusUrl(up.prometheus_url); !ep.ok()) {
      std::cerr << "--prometheus-url: " << ep.status().message() << "\n";
      return false;
    }
  }
  if (!up.queue.Check()) return false;
  if (up.hpa_metric == "queue_backlog" && !up.queue.enabled()) {
    std::cerr << "--hpa-metric queue_backlog needs --queue-redis or --queue-amqp\n";
    return false;
  }
  if (up.target_rps > 0 && (up.autoscale_mode == "hpa" || up.metrics_source == "prometheus")) {
    std::cerr << "--target-rps needs --autoscale-mode galley and --metrics-source scrape (the "
                 "request counters are read from each replica's /metrics)\n";
    return false;
  }
  if (up.target_rps > 0 && up.queue.enabled()) {
    // The request counters the rate is read from do not see the messages a queue holds.
    std::cerr << "--target-rps sizes by HTTP and gRPC requests; a fleet consuming a queue scales "
                 "by concurrency (leave out --target-rps)\n";
    return false;
  }
  if (up.autoscale_mode == "hpa") {
    if (up.hpa_target <= 0) {
      std::cerr << "--autoscale-mode hpa needs --hpa-target\n";
      return false;
    }
    if (up.scale_to_zero) {
      std::cerr << "--scale-to-zero needs --autoscale-mode galley\n";
      return false;
    }
  }
  return true;
}

// The HPA spec of --autoscale-mode hpa: one Pods metric at an AverageValue target, no behavior
// (the legacy rules: scale up to at most max(2 * current, 4), scale down after the downscale
// stabilization window).
autoscale::HpaSpec HpaSpecFromFlags(const UpFlags& up) {
  autoscale::HpaSpec hpa;
  hpa.min_replicas = up.min_replicas;
  hpa.max_replicas = up.max_replicas;
  autoscale::MetricSpec m;
  m.type = autoscale::MetricSourceType::kPods;
  m.name = up.hpa_metric == "inflight" ? autoscale::kPodsInflight : autoscale::kPodsQueueLength;
  if (up.hpa_metric == "queue_backlog") {  // as KEDA's scalers: External, AverageValue
    m.type = autoscale::MetricSourceType::kExternal;
    m.name = autoscale::kExternalQueueBacklog;
  }
  m.target_type = autoscale::TargetType::kAverageValue;
  m.value = up.hpa_target;
  hpa.metrics = {m};
  hpa.downscale_stabilization = absl::Milliseconds(up.scale_down_delay_ms);
  return hpa;
}

// The autoscaler of `galley up`: scrapes the supervisor's replicas, scales the supervisor.
// Its galley_autoscale_* metrics are served on the gateway's /metrics (extra_registries).
struct UpAutoscaler {
  metrics::Registry registry;  // served on the gateway's /metrics
  upstream::HttpUpstream upstream;
  std::unique_ptr<autoscale::MetricsSource> source;
  std::unique_ptr<autoscale::Controller> controller;
  std::atomic<int64_t> held{0};  // requests the gateway holds for want of a replica

  // The gateway's on_held: a request waiting with no replica ticks the controller at once.
  void OnHeld(int64_t n) {
    if (held.exchange(n) == 0 && n > 0 && controller) controller->Poke();
  }

  absl::Status Start(const UpFlags& up, local::Supervisor& sup) {
    using std::chrono::milliseconds;
    autoscale::ControllerOptions o;
    o.sync_period = milliseconds(up.sync_period_ms);
    o.policy.min_replicas = up.min_replicas;
    o.policy.max_replicas = up.max_replicas;
    o.policy.target_concurrency = up.target_concurrency;
    if (up.target_rps > 0) {
      o.policy.replica_capacity_rps = up.target_rps / o.policy.target_utilization;
    }
    o.policy.stable_window = absl::Milliseconds(up.stable_window_ms);
    o.policy.scale_down_delay = absl::Milliseconds(up.scale_down_delay_ms);
    o.policy.model_load_time = absl::Milliseconds(up.model_load_time_ms);
    o.policy.burst_gap_max = absl::Milliseconds(up.burst_gap_max_ms);
    o.policy.scale_to_zero = up.scale_to_zero;
    o.policy.scale_to_zero_grace = absl::Milliseconds(up.scale_to_zero_grace_ms);
    o.gateway_held = [this] { return static_cast<double>(held.load()); };
    if (up.autoscale_mode == "hpa") o.hpa = HpaSpecFromFlags(up);
    const milliseconds timeout = std::min(milliseconds(1'000), o.sync_period);
    o.queue_depth = MakeQueueDepthReader(up.queue, timeout);
    if (up.metrics_source == "prometheus") {
      autoscale::PrometheusOptions prom;
      prom.url = up.prometheus_url;
      prom.timeout = timeout;
      auto p = autoscale::PrometheusMetricsSource::Create(sup, upstream, SteadyClock::Get(), prom);
      if (!p.ok()) return p.status();
      source = *std::move(p);
    } else {
      autoscale::ScrapeOptions scrape;
      scrape.timeout = timeout;
      source = std::make_unique<autoscale::ScrapeMetricsSource>(sup, upstream, SteadyClock::Get(),
                                                                scrape);
    }
    controller =
        std::make_unique<autoscale::Controller>(*source, sup, SteadyClock::Get(), o, &registry);
    log::Info("autoscaler_started", {{"min_replicas", up.min_replicas},
                                     {"max_replicas", up.max_replicas},
                                     {"mode", up.autoscale_mode},
                                     {"metrics_source", up.metrics_source},
                                     {"target_concurrency", up.target_concurrency},
                                     {"sync_period_ms", up.sync_period_ms},
                                     {"stable_window_ms", up.stable_window_ms},
                                     {"scale_down_delay_ms", up.scale_down_delay_ms},
                                     {"burst_gap_max_ms", up.burst_gap_max_ms},
                                     {"model_load_time_ms", up.model_load_time_ms},
                                     {"scale_to_zero", up.scale_to_zero},
                                     {"scale_to_zero_grace_ms", up.scale_to_zero_grace_ms},
                                     {"queue", up.queue.Describe()}});
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
  Flag(
      cmd, "restart-initial-ms", up->restart_initial_ms,
      "restart delay after a second crash in a row (the first restarts at once; doubles per crash)")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "restart-max-ms", up->restart_max_ms, "cap on the restart delay")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "replica-drain-delay-ms", up->replica_drain_delay_ms,
       "each replica's drain delay on shutdown")
      ->check(CLI::NonNegativeNumber);
  Flag(cmd, "serve-arg", up->serve_args,
       "extra flag for every `galley serve` replica (repeatable)");
  AddGatewayPolicyFlags(cmd, *opts, up->policy_ms[0], up->policy_ms[1], up->policy_ms[2],
                        up->policy_ms[3]);
  AddPipelineFlags(cmd, up->pipelines);
  AddAutoscaleFlags(cmd, *up);
  AddMetricsSourceFlags(cmd, *up);
  return [cmd, flags, up, opts]() -> int {
    if (!cmd->parsed()) return -1;
    if (!flags->Apply(opts->http) || !flags->ApplyMetrics(opts->http, opts->metrics_http)) return 2;
    BlockStopSignals();  // before any thread: the supervisor's and the gateway's inherit it
    opts->frontend.default_timeout = std::chrono::milliseconds(flags->default_timeout_ms);
    opts->drain_delay = std::chrono::milliseconds(flags->drain_delay_ms);
    opts->grace_period = std::chrono::milliseconds(flags->grace_period_ms);
    ApplyGatewayPolicyFlags(*opts, up->policy_ms[0], up->policy_ms[1], up->policy_ms[2],
                            up->policy_ms[3]);
    if (up->autoscale && up->max_replicas < up->min_replicas) {
      std::cerr << "--max-replicas (" << up->max_replicas << ") is below --min-replicas ("
                << up->min_replicas << ")\n";
      return 2;
    }
    if (up->autoscale && up->min_replicas == 0 && !up->scale_to_zero) {
      std::cerr << "--min-replicas 0 needs --scale-to-zero\n";
      return 2;
    }
    if (up->scale_to_zero && !up->autoscale) {
      std::cerr << "--scale-to-zero needs --autoscale\n";
      return 2;
    }

    if (!CheckMetricsSourceFlags(*up)) return 2;
    if (!ApplyPipelineFlags(*opts, up->pipelines, ServedModels(up->serve_args))) return 2;

    local::SupervisorOptions so;
    so.replicas = up->autoscale ? up->min_replicas : up->replicas;
    so.serve_args = up->serve_args;
    so.serve_args.push_back("--model");
    so.serve_args.push_back(opts->frontend.analyze_model);
    if (!opts->otlp_endpoint.empty()) {  // the replicas continue the gateway's traces
      for (const std::string& a :
           {std::string("--otlp-endpoint"), opts->otlp_endpoint, std::string("--otlp-service-name"),
            std::string("galley-replica")}) {
        so.serve_args.push_back(a);
      }
    }
    // Replicas sit behind the gateway, which takes gRPC at its own door (--grpc-port) and
    // forwards it as REST; with gRPC on, replicas would contend for one port, and the
    // supervisor reads a replica's port from its `listening` lines.
    so.serve_args.push_back("--grpc-port");
    so.serve_args.push_back("-1");
    if (!up->queue.redis.empty()) {  // each replica names its consumer after itself
      for (const std::string& a :
           {std::string("--queue-redis"), up->queue.redis, std::string("--queue-stream"),
            up->queue.stream, std::string("--queue-group"), up->queue.group}) {
        so.serve_args.push_back(a);
      }
    }
    if (!up->queue.amqp.empty()) {
      for (const std::string& a : {std::string("--queue-amqp"), up->queue.amqp,
                                   std::string("--queue-amqp-queue"), up->queue.amqp_queue}) {
        so.serve_args.push_back(a);
      }
    }
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
    std::unique_ptr<local::FileSdWriter> sd_writer;  // stopped before the supervisor goes
    if (!up->prometheus_sd_file.empty()) {
      sd_writer = std::make_unique<local::FileSdWriter>(up->prometheus_sd_file, sup);
      if (absl::Status st = sd_writer->Start(); !st.ok()) {
        log::Error("start_failed", {{"error", std::string(st.message())}});
        return 1;
      }
    }
    std::unique_ptr<UpAutoscaler> autoscaler;
    if (up->autoscale) {
      autoscaler = std::make_unique<UpAutoscaler>();
      if (absl::Status st = autoscaler->Start(*up, sup); !st.ok()) {
        log::Error("start_failed", {{"error", std::string(st.message())}});
        return 1;
      }
    }
    if (!up->queue.redis.empty()) {  // the gateway takes asynchronous requests for the stream
      opts->async_jobs = gateway::AsyncJobsOptions{};
      opts->async_jobs->address = *redis::ParseRedisAddress(up->queue.redis);
      opts->async_jobs->stream = up->queue.stream;
    }
    const auto grace = opts->grace_period;
    UpAutoscaler* scaler = autoscaler.get();
    if (scaler != nullptr) opts->frontend.extra_registries.push_back(&scaler->registry);
    if (scaler != nullptr && up->scale_to_zero) {
      opts->gateway.hold_for_replica = true;
      opts->gateway.on_held = [scaler](int64_t n) { scaler->OnHeld(n); };
    }
    const int rc = gateway::RunGateway(*opts, sup, {}, [&sup, grace, scaler] {
      // The gateway no longer takes requests: stop scaling, then stop the replicas with their
      // own drain rules.
      if (scaler != nullptr) scaler->Stop();
      sup.Drain(SteadyClock::Get().Now() + grace);
    });
    if (autoscaler) autoscaler->Stop();
    sup.Stop();
    if (sd_writer) sd_writer->Stop();  // an empty target list: the replicas are gone
    return rc;
  };
}

}  // namespace galley::cli
