#include "tracing/span.h"

#include <chrono>

namespace galley::tracing {

int64_t UnixNanos(TimePoint t) {
  const auto sys_now = std::chrono::system_clock::now();
  const auto steady_now = std::chrono::steady_clock::now();
  const auto sys =
      sys_now + std::chrono::duration_cast<std::chrono::system_clock::duration>(t - steady_now);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(sys.time_since_epoch()).count();
}

Span StartSpan(std::string name, SpanKind kind, const std::optional<TraceContext>& parent,
               TimePoint start) {
  Span s;
  s.name = std::move(name);
  s.kind = kind;
  s.span_id = NewSpanId();
  if (parent) {
    s.trace_id = parent->trace_id;
    s.parent = parent->span_id;
    s.sampled = parent->sampled;  // parent-based: the caller's decision stands
  } else {
    s.trace_id = NewTraceId();  // a trace this process starts is always recorded
  }
  s.start_ns = UnixNanos(start);
  return s;
}

}  // namespace galley::tracing
