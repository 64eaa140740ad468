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
#include "common/lifecycle.h"
#include "common/log.h"
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
  std::chrono::milliseconds restart_initial{10'000};
  std::chrono::milliseconds restart_max{300'000};
  std::chrono::milliseconds replica_drain_delay{1'000};
  std::vector<std::string> serve_args;
  PipelineFlags pipelines;
  // --autoscale and the inference policy's knobs (defaults: autoscale/inference_policy.h).
  bool autoscale = false;
  int min_replicas = 1;
  int max_replicas = 4;
  double target_concurrency = autoscale::InferencePolicy{}.target_concurrency;
  double target_rps = 0;  // > 0: size by request rate, this many requests per second per replica
  std::chrono::milliseconds sync_period{15'000};
  std::chrono::milliseconds stable_window =
      absl::ToChronoMilliseconds(autoscale::InferencePolicy{}.stable_window);
  std::chrono::milliseconds scale_down_delay =
      absl::ToChronoMilliseconds(autoscale::InferencePolicy{}.scale_down_delay);
  std::chrono::milliseconds model_load_time{10'000};
  std::chrono::milliseconds burst_gap_max =
      absl::ToChronoMilliseconds(autoscale::InferencePolicy{}.burst_gap_max);
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
  std::chrono::milliseconds scale_to_zero_grace{30'000};

  // The cross-flag rules of the replica, autoscaling and metrics-source flags; the message names
  // the flags.
  absl::Status Validate() const;
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
  DurationFlag(cmd, "sync-period-ms", up.sync_period, "autoscale: how often to observe and decide")
      ->check(CLI::PositiveNumber);
  DurationFlag(cmd, "stable-window-ms", up.stable_window,
               "autoscale: window the demand is averaged over (the panic window is 10% of it)")
      ->check(CLI::PositiveNumber);
  DurationFlag(cmd, "scale-down-delay-ms", up.scale_down_delay,
               "autoscale: hold the highest recommendation this long before scaling down")
      ->check(CLI::NonNegativeNumber);
  DurationFlag(
      cmd, "burst-gap-max-ms", up.burst_gap_max,
      "autoscale: bursts at most this far apart are recurring, and the fleet they needed is held "
      "while they recur (0 turns it off)")
      ->check(CLI::NonNegativeNumber);
  DurationFlag(
      cmd, "model-load-time-ms", up.model_load_time,
      "autoscale: how long a new replica takes to help (starting replicas count as capacity)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--scale-to-zero", up.scale_to_zero,
                "autoscale: with --min-replicas 0, stop the last replica when idle; the gateway "
                "then holds requests until a replica is ready")
      ->envname("GALLEY_SCALE_TO_ZERO");
  DurationFlag(cmd, "scale-to-zero-grace-ms", up.scale_to_zero_grace,
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

absl::Status UpFlags::Validate() const {
  using absl::InvalidArgumentError;
  if (autoscale && max_replicas < min_replicas) {
    return InvalidArgumentError("--max-replicas (" + std::to_string(max_replicas) +
                                ") is below --min-replicas (" + std::to_string(min_replicas) + ")");
  }
  if (autoscale && min_replicas == 0 && !scale_to_zero) {
    return InvalidArgumentError("--min-replicas 0 needs --scale-to-zero");
  }
  if (scale_to_zero && !autoscale) return InvalidArgumentError("--scale-to-zero needs --autoscale");
  if (metrics_source == "prometheus") {
    if (prometheus_url.empty()) {
      return InvalidArgumentError("--metrics-source prometheus needs --prometheus-url");
    }
    if (auto ep = autoscale::ParsePrometheusUrl(prometheus_url); !ep.ok()) {
      return InvalidArgumentError("--prometheus-url: " + std::string(ep.status().message()));
    }
  }
  if (absl::Status st = queue.Validate(); !st.ok()) return st;
  if (hpa_metric == "queue_backlog" && !queue.enabled()) {
    return InvalidArgumentError("--hpa-metric queue_backlog needs --queue-redis or --queue-amqp");
  }
  if (target_rps > 0 && (autoscale_mode == "hpa" || metrics_source == "prometheus")) {
    return InvalidArgumentError(
        "--target-rps needs --autoscale-mode galley and --metrics-source scrape (the request "
        "counters are read from each replica's /metrics)");
  }
  if (target_rps > 0 && queue.enabled()) {
    // The request counters the rate is read from do not see the messages a queue holds.
    return InvalidArgumentError(
        "--target-rps sizes by HTTP and gRPC requests; a fleet consuming a queue scales by "
        "concurrency (leave out --target-rps)");
  }
  if (autoscale_mode == "hpa") {
    if (hpa_target <= 0) return InvalidArgumentError("--autoscale-mode hpa needs --hpa-target");
    if (scale_to_zero) return InvalidArgumentError("--scale-to-zero needs --autoscale-mode galley");
  }
  return absl::OkStatus();
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
  hpa.downscale_stabilization = absl::FromChrono(up.scale_down_delay);
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

  // Makes the metrics source and the controller (started by the process runner).
  absl::Status Build(const UpFlags& up, local::Supervisor& sup) {
    using std::chrono::milliseconds;
    autoscale::ControllerOptions o;
    o.sync_period = up.sync_period;
    o.policy.min_replicas = up.min_replicas;
    o.policy.max_replicas = up.max_replicas;
    o.policy.target_concurrency = up.target_concurrency;
    if (up.target_rps > 0) {
      o.policy.replica_capacity_rps = up.target_rps / o.policy.target_utilization;
    }
    o.policy.stable_window = absl::FromChrono(up.stable_window);
    o.policy.scale_down_delay = absl::FromChrono(up.scale_down_delay);
    o.policy.model_load_time = absl::FromChrono(up.model_load_time);
    o.policy.burst_gap_max = absl::FromChrono(up.burst_gap_max);
    o.policy.scale_to_zero = up.scale_to_zero;
    o.policy.scale_to_zero_grace = absl::FromChrono(up.scale_to_zero_grace);
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
                                     {"sync_period_ms", up.sync_period.count()},
                                     {"stable_window_ms", up.stable_window.count()},
                                     {"scale_down_delay_ms", up.scale_down_delay.count()},
                                     {"burst_gap_max_ms", up.burst_gap_max.count()},
                                     {"model_load_time_ms", up.model_load_time.count()},
                                     {"scale_to_zero", up.scale_to_zero},
                                     {"scale_to_zero_grace_ms", up.scale_to_zero_grace.count()},
                                     {"queue", up.queue.Describe()}});
    return absl::OkStatus();
  }
};

// The supervisor as `galley up`'s part: its drain starts once the gateway has drained and gives
// the replicas a grace period of their own from then (the gateway's drain may have used most of
// the process's), so a replica finishes the queue messages it holds instead of being killed.
class ReplicaFleet final : public Component {
 public:
  ReplicaFleet(local::Supervisor& sup, Duration grace) : sup_(sup), grace_(grace) {}
  std::string_view component_name() const override { return sup_.component_name(); }
  absl::Status Start() override { return sup_.Start(); }
  bool Drain(TimePoint) override { return sup_.Drain(SteadyClock::Get().Now() + grace_); }
  void Stop() override { sup_.Stop(); }

 private:
  local::Supervisor& sup_;
  const Duration grace_;
};

}  // namespace

Runner AddUpCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("up", "Run the gateway and model replicas on this machine");
  auto flags = std::make_shared<HttpFlags>();
  auto up = std::make_shared<UpFlags>();
  auto opts = std::make_shared<gateway::GatewayRunOptions>();
  flags->Add(cmd);
  Flag(cmd, "replicas", up->replicas, "model replicas to run")->check(CLI::Range(0, 64));
  DurationFlag(
      cmd, "restart-initial-ms", up->restart_initial,
      "restart delay after a second crash in a row (the first restarts at once; doubles per crash)")
      ->check(CLI::PositiveNumber);
  DurationFlag(cmd, "restart-max-ms", up->restart_max, "cap on the restart delay")
      ->check(CLI::PositiveNumber);
  DurationFlag(cmd, "replica-drain-delay-ms", up->replica_drain_delay,
               "each replica's drain delay on shutdown")
      ->check(CLI::NonNegativeNumber);
  Flag(cmd, "serve-arg", up->serve_args,
       "extra flag for every `galley serve` replica (repeatable)");
  AddGatewayPolicyFlags(cmd, *opts);
  up->pipelines.Add(cmd);
  AddAutoscaleFlags(cmd, *up);
  AddMetricsSourceFlags(cmd, *up);
  return [cmd, flags, up, opts]() -> int {
    if (!cmd->parsed()) return -1;
    if (absl::Status st = flags->Apply(opts->http, opts->metrics_http); !st.ok()) {
      return FlagError(st);
    }
    opts->frontend.default_timeout = flags->default_timeout;
    opts->drain_delay = flags->drain_delay;
    opts->grace_period = flags->grace_period;
    FinishGatewayPolicy(*opts);
    if (absl::Status st = up->Validate(); !st.ok()) return FlagError(st);
    if (absl::Status st = up->pipelines.Apply(*opts, ServedModels(up->serve_args)); !st.ok()) {
      return FlagError(st);
    }

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
    so.restart_backoff.initial = up->restart_initial;
    so.restart_backoff.max = up->restart_max;
    so.drain_delay = up->replica_drain_delay;
    so.grace_period = flags->grace_period;
    // Blocks the stop signals before any thread starts: the supervisor's and the gateway's.
    ProcessRunner process({opts->drain_delay, opts->grace_period}, SteadyClock::Get());
    auto supervisor = local::Supervisor::Create(std::move(so));
    if (!supervisor.ok()) {
      log::Error("start_failed", {{"error", std::string(supervisor.status().message())}});
      return 1;
    }
    // Started before the gateway, so they drain after it has stopped taking requests: the
    // autoscaler stops deciding, then the supervisor stops the replicas with their own drain.
    local::Supervisor& sup = **supervisor;
    ReplicaFleet fleet(sup, flags->grace_period);
    if (!process.Start(fleet).ok()) return 1;
    std::unique_ptr<local::FileSdWriter> sd_writer;
    if (!up->prometheus_sd_file.empty()) {
      sd_writer = std::make_unique<local::FileSdWriter>(up->prometheus_sd_file, sup);
      if (!process.Start(*sd_writer).ok()) return 1;
    }
    std::unique_ptr<UpAutoscaler> autoscaler;
    if (up->autoscale) {
      autoscaler = std::make_unique<UpAutoscaler>();
      if (absl::Status st = autoscaler->Build(*up, sup); !st.ok()) {
        log::Error("start_failed", {{"error", std::string(st.message())}});
        return process.Abort();
      }
      if (!process.Start(*autoscaler->controller).ok()) return 1;
    }
    if (!up->queue.redis.empty()) {  // the gateway takes asynchronous requests for the stream
      opts->async_jobs = gateway::AsyncJobsOptions{};
      opts->async_jobs->address = *redis::ParseRedisAddress(up->queue.redis);
      opts->async_jobs->stream = up->queue.stream;
    }
    UpAutoscaler* scaler = autoscaler.get();
    if (scaler != nullptr) opts->frontend.extra_registries.push_back(&scaler->registry);
    if (scaler != nullptr && up->scale_to_zero) {
      opts->gateway.hold_for_replica = true;
      opts->gateway.on_held = [scaler](int64_t n) { scaler->OnHeld(n); };
    }
    const int rc = gateway::RunGateway(*opts, sup, process);
    if (autoscaler) autoscaler->upstream.Shutdown();  // the scrapes' I/O, once it stopped deciding
    return rc;
  };
}

}  // namespace galley::cli
