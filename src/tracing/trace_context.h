// W3C Trace Context (https://www.w3.org/TR/trace-context/, Level 1): the `traceparent` value
// that carries a trace across HTTP headers, gRPC metadata and queue messages:
//   version "-" trace-id "-" parent-id "-" trace-flags      e.g.
//   00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
// lower-case hex; an all-zero trace-id or parent-id is invalid; version ff is invalid; a later
// version is read by its first four fields (§3.2.4, "Versioning of traceparent").
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace galley::tracing {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

struct TraceContext {
  TraceId trace_id{};
  SpanId span_id{};  // the parent-id of the next hop: the span that sent it
  bool sampled = true;
};

// The context in a `traceparent` value, or nullopt when it is absent or invalid (the receiver
// then starts a new trace, as §3.2.2 says).
std::optional<TraceContext> ParseTraceparent(std::string_view value);
std::string FormatTraceparent(const TraceContext& c);

// Random identifiers, never all zero. Thread-safe.
TraceId NewTraceId();
SpanId NewSpanId();

std::string Hex(const uint8_t* data, size_t n);
inline std::string Hex(const TraceId& id) { return Hex(id.data(), id.size()); }
inline std::string Hex(const SpanId& id) { return Hex(id.data(), id.size()); }

}  // namespace galley::tracing
