// The gateway process: the HTTP front-end, the forwarding core, the upstream client and the
// in-process fallback model, with the same start-up, drain and shutdown rules as `galley serve`.
// `galley gateway` runs it over a static replica list; `galley up` over the local supervisor.
#pragma once

#include <chrono>
#include <functional>
#include <optional>

#include "common/lifecycle.h"
#include "fleet/replica_source.h"
#include "gateway/chat.h"
#include "gateway/gateway.h"
#include "gateway/gateway_http.h"
#include "http/server.h"
#include "inference/model_runner.h"

namespace galley::gateway {

struct GatewayRunOptions {
  http::ServerOptions http;
  std::optional<http::ServerOptions> metrics_http;  // set: /metrics on its own listener
  GatewayFrontendOptions frontend;
  GatewayOptions gateway;
  inference::RunnerOptions fallback;  // the fallback model's queue and batching
  std::string api_keys_file;          // empty: no keys needed
  // TLS to the replicas: the CA their certificates chain to (set: TLS on), and the gateway's own
  // certificate and key for mutual TLS (optional).
  std::string upstream_tls_ca, upstream_tls_cert, upstream_tls_key;
  // Set: asynchronous requests go to this Redis stream (async_jobs.h).
  std::optional<AsyncJobsOptions> async_jobs;
  // Set: pipelines and /v1/chat (chat.h), checked at start against `pipeline_models`, the models
  // the replicas serve.
  std::optional<ChatOptions> chat;
  std::vector<std::string> pipeline_models;
  // Set: traces go to this OTLP/HTTP collector (tracing/tracer.h).
  std::string otlp_endpoint;
  std::string otlp_service_name = "galley-gateway";
  // The gRPC door (Open Inference Protocol) on the HTTP host: its calls take the REST path
  // (grpc_frontend.h, proxy mode). 0: a free port; -1: off.
  int grpc_port = -1;
  std::chrono::milliseconds drain_delay{5'000};
  std::chrono::milliseconds grace_period{30'000};
};

// Starts the gateway's parts on `process` (after whatever the caller started there first, e.g.
// the replicas it fronts: those drain after the gateway has stopped taking requests) and runs
// until SIGTERM/SIGINT, then drains and stops every part. `after_start` runs once the gateway
// listens, with the HTTP port (the gRPC door logs its own `listening` line). Returns the exit
// code.
int RunGateway(const GatewayRunOptions& options, fleet::ReplicaSource& source,
               ProcessRunner& process, std::function<void(uint16_t port)> after_start = {});

}  // namespace galley::gateway
