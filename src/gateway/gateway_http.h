// The gateway's HTTP front-end: the same APIs as `galley serve`. Inference requests and model
// metadata are forwarded to replicas through Gateway; when no replica can answer, the
// in-process fallback model does, and the answer says so (header `X-Galley-Fallback: true` and
// `"fallback": true` in the body). Probes, /v2 and /metrics are the gateway's own.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "gateway/api_keys.h"
#include "gateway/async_jobs.h"
#include "gateway/chat.h"
#include "gateway/gateway.h"
#include "gateway/gateway_metrics.h"
#include "http/server.h"
#include "inference/inference_service.h"
#include "metrics/registry.h"
#include "protocol/frontend_metrics.h"
#include "tracing/tracer.h"

namespace galley::gateway {

struct GatewayFrontendOptions {
  std::string analyze_model = "sentiment";  // the replicas' model behind /inference/analyze
  std::string fallback_model = "vader";     // the in-process fallback (VADER)
  std::chrono::milliseconds default_timeout{30'000};  // deadline when the client sets none
  size_t max_inflight = 4096;                         // beyond: 429 "busy" at once
  std::string server_version;
  // More registries served on the same /metrics (e.g. the autoscaler's in `galley up`); they
  // must outlive the server and use names of their own.
  std::vector<const metrics::Registry*> extra_registries;
  // Whether /v2/health/ready says 200 while no replica is ready and only the fallback answers.
  // Off by default: ready means a replica serves (a load balancer then sees the degraded state).
  bool ready_on_fallback = false;
  // When set, every request but the probes (/v2/health/*, /livez, /readyz) and /metrics needs a
  // key (api_keys.h).
  std::shared_ptr<ApiKeys> api_keys;
  // When set, requests with `Prefer: respond-async` go to the queue and GET /v1/results/{id}
  // answers them (async_jobs.h).
  std::shared_ptr<AsyncJobs> async_jobs;
  // When set, /v1/chat, /v1/chat/{id} and /v1/pipelines/{name} run pipelines (chat.h).
  std::shared_ptr<ChatService> chat;
  // When set, each infer and analyze request forwarded to a replica gets a span, `forward MODEL`,
  // continuing the client's `traceparent`; the replica continues the span's. Not owned.
  tracing::Tracer* tracer = nullptr;
};

// What the gateway can do now, as /v2/health/ready reports it.
enum class GatewayState {
  kServing,       // a replica is ready
  kHolding,       // no replica yet, requests wait for one (scale from zero)
  kFallbackOnly,  // no replica: the fallback model answers
  kDraining,      // shutting down
};
std::string_view GatewayStateName(GatewayState s);

struct GatewayFrontend {
  http::Handler handler;
  http::RejectHook on_rejected;
};

// `gateway`, `fallback` (the in-process model service), the registries and `clock` must outlive
// the server. `state` says what the gateway can do now; /v2/health/ready is 200 when serving or
// holding (and when fallback-only, with ready_on_fallback).
GatewayFrontend MakeGatewayFrontend(Gateway& gateway, inference::InferenceService& fallback,
                                    metrics::Registry& registry,
                                    protocol::FrontendMetrics& frontend_metrics,
                                    GatewayMetrics& metrics, const Clock& clock,
                                    GatewayFrontendOptions options,
                                    std::function<GatewayState()> state,
                                    std::function<void()> before_scrape = {});

}  // namespace galley::gateway
