// `galley gateway`: the front door over a static list of replicas.
#include <iostream>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/kube_flags.h"
#include "cli/listen.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/strings.h"
#include "gateway/gateway_main.h"
#include "kube/client.h"
#include "kubefleet/endpoint_replicas.h"

namespace galley::cli {

void AddGatewayPolicyFlags(CLI::App* cmd, gateway::GatewayRunOptions& o, int64_t& try_timeout_ms,
                           int64_t& health_interval_ms, int64_t& eject_ms, int64_t& break_ms) {
  Flag(cmd, "max-attempts", o.gateway.max_attempts, "first try plus retries")
      ->check(CLI::Range(1, 10));
  Flag(cmd, "try-timeout-ms", try_timeout_ms, "deadline of one attempt")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "try-timeout-multiplier", o.gateway.attempt_latency.multiplier,
       "an attempt with another replica to go to gets this times the model's recent p99 answer "
       "time (at least 50 ms, at most --try-timeout-ms); 0: always --try-timeout-ms")
      ->check(CLI::Range(0.0, 1000.0));
  Flag(cmd, "health-interval-ms", health_interval_ms, "ready-probe period")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "eject-after-failures", o.gateway.eject_after_failures,
       "consecutive failures that eject a replica");
  Flag(cmd, "eject-ms", eject_ms, "base ejection time (jittered up to 1.5x)")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "breaker-min-calls", o.gateway.replica_breaker.minimum_throughput,
       "calls in the window before a breaker may open");
  Flag(cmd, "breaker-failure-ratio", o.gateway.replica_breaker.failure_ratio,
       "failure ratio that opens a breaker");
  Flag(cmd, "breaker-break-ms", break_ms, "first open period of a breaker")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "grpc-port", o.grpc_port,
       "gRPC (Open Inference Protocol) door on the --listen host, its calls taking the REST "
       "path (keys as `authorization` or `x-api-key` metadata); 0: a free port; -1: off")
      ->check(CLI::Range(-1, 65535));
  Flag(cmd, "max-inflight", o.frontend.max_inflight, "requests in the gateway before 429 busy");
  Flag(cmd, "fallback-queue-capacity", o.fallback.queue_capacity,
       "fallback model queue before 429 busy");
  Flag(cmd, "model", o.frontend.analyze_model, "the replicas' model behind /inference/analyze");
  Flag(cmd, "fallback-model", o.frontend.fallback_model,
       "name of the in-process VADER fallback model");
  Flag(cmd, "api-keys-file", o.api_keys_file,
       "require an API key (Authorization: Bearer KEY or X-API-Key: KEY) listed by its SHA-256 "
       "in this file: NAME SHA256-HEX [rate=R] [burst=B] [models=a,b] per line");
  Flag(cmd, "upstream-tls-ca", o.upstream_tls_ca,
       "PEM CA bundle: reach replicas over TLS, their certificates verified against it and their "
       "address");
  Flag(cmd, "upstream-tls-cert", o.upstream_tls_cert,
       "PEM certificate the gateway presents to replicas (mutual TLS)");
  Flag(cmd, "upstream-tls-key", o.upstream_tls_key, "PEM private key of --upstream-tls-cert");
  cmd->add_flag("--ready-on-fallback", o.frontend.ready_on_fallback,
                "/v2/health/ready says 200 while only the fallback answers (no replica ready)")
      ->envname("GALLEY_READY_ON_FALLBACK");
}

bool ApplyGatewayPolicyFlags(gateway::GatewayRunOptions& o, int64_t try_timeout_ms,
                             int64_t health_interval_ms, int64_t eject_ms, int64_t break_ms) {
  o.gateway.try_timeout = std::chrono::milliseconds(try_timeout_ms);
  o.gateway.health_interval = std::chrono::milliseconds(health_interval_ms);
  o.gateway.health_timeout = std::min(o.gateway.health_interval, std::chrono::milliseconds(1000));
  o.gateway.eject_duration = std::chrono::milliseconds(eject_ms);
  o.gateway.replica_breaker.break_duration = std::chrono::milliseconds(break_ms);
  o.gateway.model_breaker = o.gateway.replica_breaker;
  return true;
}

Runner AddGatewayCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("gateway", "Run the gateway in front of model replicas");
  auto flags = std::make_shared<HttpFlags>();
  auto opts = std::make_shared<gateway::GatewayRunOptions>();
  auto replicas = std::make_shared<std::string>();
  auto ms =
      std::make_shared<std::array<int64_t, 4>>(std::array<int64_t, 4>{5000, 1000, 5000, 5000});
  flags->Add(cmd);
  Flag(cmd, "replicas", *replicas, "replicas as HOST:PORT,HOST:PORT,... (or --kube-endpoints)");
  auto kube = std::make_shared<KubeFlags>();
  auto kube_on = std::make_shared<bool>(false);
  auto kube_ns = std::make_shared<std::string>();
  cmd->add_flag("--kube-endpoints", *kube_on,
                "replicas from the EndpointSlices of every InferenceModel's Service (label "
                "galley.dev/model), routed by model name");
  Flag(cmd, "kube-namespace", *kube_ns, "--kube-endpoints: only this namespace (default: all)");
  kube->Add(cmd);
  AddGatewayPolicyFlags(cmd, *opts, (*ms)[0], (*ms)[1], (*ms)[2], (*ms)[3]);
  auto async = std::make_shared<std::array<std::string, 2>>(
      std::array<std::string, 2>{"", gateway::AsyncJobsOptions{}.stream});
  Flag(cmd, "queue-redis", (*async)[0],
       "asynchronous requests (Prefer: respond-async) go to a Redis stream at HOST:PORT that "
       "replicas consume (galley serve --queue-redis); empty: off");
  Flag(cmd, "queue-stream", (*async)[1], "queue-redis: the stream");
  return [cmd, flags, opts, replicas, ms, async, kube, kube_on, kube_ns]() -> int {
    if (!cmd->parsed()) return -1;
    if (!flags->Apply(opts->http) || !flags->ApplyMetrics(opts->http, opts->metrics_http)) return 2;
    if (replicas->empty() == !*kube_on) {
      std::cerr << "give either --replicas HOST:PORT,... or --kube-endpoints\n";
      return 2;
    }
    opts->frontend.default_timeout = std::chrono::milliseconds(flags->default_timeout_ms);
    opts->drain_delay = std::chrono::milliseconds(flags->drain_delay_ms);
    opts->grace_period = std::chrono::milliseconds(flags->grace_period_ms);
    ApplyGatewayPolicyFlags(*opts, (*ms)[0], (*ms)[1], (*ms)[2], (*ms)[3]);
    if (!(*async)[0].empty()) {
      auto address = redis::ParseRedisAddress((*async)[0]);
      if (!address.ok()) {
        std::cerr << "--queue-redis: " << address.status().message() << "\n";
        return 2;
      }
      opts->async_jobs = gateway::AsyncJobsOptions{};
      opts->async_jobs->address = *address;
      opts->async_jobs->stream = (*async)[1];
    }
    if (*kube_on) {
      BlockStopSignals();  // before the informer's thread starts: SIGTERM is RunGateway's
      auto config = kube->Load();
      if (!config.ok()) {
        std::cerr << "galley gateway: " << config.status().message() << "\n";
        return 2;
      }
      kube::ClientOptions co;
      co.user_agent = "galley-gateway";
      auto client = kube::Client::Create(*config, co);
      if (!client.ok()) {
        std::cerr << "galley gateway: " << client.status().message() << "\n";
        return 2;
      }
      auto source = kubefleet::EndpointSliceReplicas::Start(client->get(), *kube_ns,
                                                            std::chrono::seconds(30));
      if (!source.ok()) {
        log::Error("start_failed", {{"error", std::string(source.status().message())}});
        return 1;
      }
      return gateway::RunGateway(*opts, **source);
    }
    std::vector<fleet::ReplicaEndpoint> list;
    for (std::string_view item : Split(*replicas, ',')) {
      item = StripWhitespace(item);
      if (item.empty()) continue;
      auto hp = ParseListen(item);
      if (!hp.ok()) {
        std::cerr << "--replicas: " << hp.status().message() << "\n";
        return 2;
      }
      list.push_back({std::string(item), hp->host, hp->port, true, {}});
    }
    if (list.empty()) {
      std::cerr << "--replicas: give at least one HOST:PORT\n";
      return 2;
    }
    fleet::StaticReplicaSource source(std::move(list));
    return gateway::RunGateway(*opts, source);
  };
}

}  // namespace galley::cli
