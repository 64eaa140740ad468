#include "inference/infer_spans.h"

namespace galley::inference {

std::vector<tracing::Span> FinishInferSpans(tracing::Span request, const InferResult& r,
                                            TimePoint now) {
  std::vector<tracing::Span> out;
  if (r.exec_start != TimePoint{}) {
    tracing::Span queue =
        tracing::StartSpan("queue", tracing::SpanKind::kInternal, request.Context(), TimePoint{});
    queue.start_ns = request.start_ns;
    queue.end_ns = tracing::UnixNanos(r.exec_start);
    tracing::Span exec = tracing::StartSpan("execute", tracing::SpanKind::kInternal,
                                            request.Context(), r.exec_start);
    exec.end_ns = tracing::UnixNanos(r.exec_end);
    exec.Set("galley.batch_rows", int64_t{r.batch_rows});
    out.push_back(std::move(queue));
    out.push_back(std::move(exec));
  }
  request.end_ns = tracing::UnixNanos(now);
  if (r.outcome != Outcome::kOk) {
    request.error = true;
    request.status_message = r.message.empty() ? std::string(OutcomeName(r.outcome)) : r.message;
  }
  out.push_back(std::move(request));
  return out;
}

}  // namespace galley::inference
