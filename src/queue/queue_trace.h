// The spans of one queue message, for both consumers: a `queue wait` span from when the message
// was enqueued to when the consumer took it, and the inference span (with its own queue wait in
// the model and its execution, inference/infer_spans.h), both continuing the producer's trace.
#pragma once

#include <optional>
#include <string_view>

#include "inference/inference_service.h"
#include "queue/queue_message.h"
#include "tracing/tracer.h"

namespace galley::queue {

// With a tracer: records the message's queue wait (when its enqueue time is known) and returns
// its inference span, started at `now`. Without one: nullopt.
std::optional<tracing::Span> StartMessageSpans(tracing::Tracer* tracer, const QueueRequest& q,
                                               std::string_view system,
                                               std::string_view destination, TimePoint now);

// Ends and records the inference span (and its children) once the service answered.
void FinishMessageSpans(tracing::Tracer* tracer, std::optional<tracing::Span> span,
                        const inference::InferResult& r, TimePoint now);

}  // namespace galley::queue
