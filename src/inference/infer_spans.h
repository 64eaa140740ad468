// The spans of one traced inference request, for every front-end (REST, the queues): the
// request's own span and, when its batch ran, two children: the wait in the model's queue (from
// the request's span's start to the batch's start) and the batch's execution (shared by every
// request of the batch, with its rows).
#pragma once

#include <vector>

#include "inference/inference_service.h"
#include "tracing/span.h"

namespace galley::inference {

// Ends `request` at `now` (an error status when the outcome is not kOk) and returns it with its
// children, ready to record.
std::vector<tracing::Span> FinishInferSpans(tracing::Span request, const InferResult& r,
                                            TimePoint now);

}  // namespace galley::inference
