// The export of spans (span.h) over OTLP/HTTP with the JSON encoding
// (https://opentelemetry.io/docs/specs/otlp/, "OTLP/HTTP": POST {endpoint}/v1/traces with an
// ExportTraceServiceRequest; in JSON, trace and span IDs are hex strings and 64-bit integers
// decimal strings). Debian 12 packages no OpenTelemetry C++ SDK, so this is Galley's own: the
// span model of the OpenTelemetry data model (trace ID, span ID, parent, kind, start and end in
// Unix nanoseconds, attributes, status), a parent-based sampler that records every trace it
// starts, and a batching exporter on its own thread whose bounded queue drops spans (counted)
// rather than slow a request down.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tracing/span.h"

namespace galley::tracing {

struct TracerOptions {
  std::string endpoint;  // OTLP/HTTP base, e.g. http://127.0.0.1:4318 (spans go to /v1/traces)
  std::string service_name = "galley";
  size_t max_queue = 8192;  // spans waiting; more are dropped
  size_t max_batch = 512;   // spans per export request
  std::chrono::milliseconds flush_interval{500};
  std::chrono::milliseconds export_timeout{5'000};
};

class Tracer {
 public:
  // InvalidArgument for an endpoint that is not http://HOST:PORT[/PATH].
  static absl::StatusOr<std::unique_ptr<Tracer>> Create(TracerOptions options);
  ~Tracer();  // exports what is queued (within export_timeout), then stops

  // Queues a finished span (end_ns set, or now). Unsampled spans are not recorded. Thread-safe;
  // never blocks on the network.
  void Record(Span span);
  // Blocks until every span queued so far was exported or given up on.
  void Flush();

  uint64_t exported() const;
  uint64_t dropped() const;  // queue full
  uint64_t failed() const;   // export requests that failed (their spans are lost)

  struct State;

 private:
  explicit Tracer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The tracer a process's --otlp-endpoint asks for: null when `endpoint` is empty (no tracing),
// else Tracer::Create's.
absl::StatusOr<std::unique_ptr<Tracer>> TracerFor(const std::string& endpoint,
                                                  const std::string& service_name);

// The OTLP/JSON ExportTraceServiceRequest for `spans` of one service.
std::string EncodeOtlpJson(const std::vector<Span>& spans, const std::string& service_name);

}  // namespace galley::tracing
