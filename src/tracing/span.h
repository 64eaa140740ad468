// Spans in the OpenTelemetry data model (https://opentelemetry.io/docs/specs/otel/trace/api/):
// trace ID, span ID, parent, kind, start and end in Unix nanoseconds, attributes, an error
// status. Sampling is parent-based: a span continues its parent's decision, and a trace Galley
// starts is recorded. Recording one is the exporter's business (tracer.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "tracing/trace_context.h"

namespace galley::tracing {

enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5 };

struct Attribute {
  std::string key;
  std::variant<std::string, int64_t, double, bool> value;
};

struct Span {
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent{};  // all zero: a root span
  bool sampled = true;
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  int64_t start_ns = 0;  // Unix time
  int64_t end_ns = 0;
  std::vector<Attribute> attributes;
  bool error = false;
  std::string status_message;

  // The context a child or the next hop continues.
  TraceContext Context() const { return {trace_id, span_id, sampled}; }
  void Set(std::string key, std::variant<std::string, int64_t, double, bool> v) {
    attributes.push_back({std::move(key), std::move(v)});
  }
};

// Unix nanoseconds of a steady-clock time point (through the offset between the two clocks now).
int64_t UnixNanos(TimePoint t);

// A span that starts at `start`: a child of `parent`, or the root of a new trace without one.
Span StartSpan(std::string name, SpanKind kind, const std::optional<TraceContext>& parent,
               TimePoint start);

}  // namespace galley::tracing
