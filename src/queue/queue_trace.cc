#include "queue/queue_trace.h"

#include "common/strings.h"
#include "inference/infer_spans.h"

namespace galley::queue {

std::optional<tracing::Span> StartMessageSpans(tracing::Tracer* tracer, const QueueRequest& q,
                                               std::string_view system,
                                               std::string_view destination, TimePoint now) {
  if (tracer == nullptr) return std::nullopt;
  // Attribute names of OpenTelemetry's messaging semantic conventions.
  if (q.enqueued_ms > 0) {
    tracing::Span wait =
        tracing::StartSpan("queue wait", tracing::SpanKind::kConsumer, q.trace, now);
    wait.start_ns = std::min(q.enqueued_ms * 1'000'000, tracing::UnixNanos(now));
    wait.end_ns = tracing::UnixNanos(now);
    wait.Set("messaging.system", std::string(system));
    wait.Set("messaging.destination.name", std::string(destination));
    wait.Set("messaging.message.id", q.key);
    tracer->Record(std::move(wait));
  }
  tracing::Span span = tracing::StartSpan(StrCat("infer ", q.request.model),
                                          tracing::SpanKind::kConsumer, q.trace, now);
  span.Set("galley.model", q.request.model);
  span.Set("messaging.message.id", q.key);
  return span;
}

void FinishMessageSpans(tracing::Tracer* tracer, std::optional<tracing::Span> span,
                        const inference::InferResult& r, TimePoint now) {
  if (tracer == nullptr || !span) return;
  for (auto& s : inference::FinishInferSpans(std::move(*span), r, now))
    tracer->Record(std::move(s));
}

}  // namespace galley::queue
