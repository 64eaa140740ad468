// The HTTP front-end of `galley serve`: routes for the seed's API, the Open Inference Protocol
// REST API, probes and /metrics. It reaches models only through InferenceService.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/clock.h"
#include "http/server.h"
#include "inference/inference_service.h"
#include "metrics/registry.h"
#include "protocol/frontend_metrics.h"
#include "tracing/tracer.h"

namespace galley::serve {

struct HttpFrontendOptions {
  std::string analyze_model = "vader";                // model behind POST /inference/analyze
  std::chrono::milliseconds default_timeout{30'000};  // 0: no deadline unless the client sets one
  std::string server_name = "galley";
  std::string server_version;
  // Set: inference requests are traced (spans for the request, its queue wait and its
  // execution), continuing the caller's `traceparent`. Must outlive the server.
  tracing::Tracer* tracer = nullptr;
};

struct HttpFrontend {
  http::Handler handler;         // for http::Server
  http::RejectHook on_rejected;  // counts what the HTTP layer refuses before routing
};

// The front-end for http::Server. Models are those `service` knows now. `service`, `registry`,
// `metrics` and `clock` must outlive the server. `before_scrape` runs before each /metrics
// exposition (to refresh gauges).
HttpFrontend MakeHttpFrontend(inference::InferenceService& service, metrics::Registry& registry,
                              protocol::FrontendMetrics& metrics, const Clock& clock,
                              HttpFrontendOptions options,
                              std::function<void()> before_scrape = {});

}  // namespace galley::serve
