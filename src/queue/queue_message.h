// Queue messages (pure): what a stream entry carries, how it becomes a request for the
// InferenceService, what its result looks like, and what the consumer does with each outcome.
//
// A request entry's fields (docs/queues.md):
//   body         required: an Open Inference Protocol inference request (JSON with "inputs"),
//                or the seed's {"text": "..."} for the model behind /inference/analyze
//   model        the model's name (default: the analyze model)
//   id           the message's own id, the key of its result (default: the entry id); a
//                producer that retries with the same id gets one result
//   deadline_ms  Unix time in milliseconds after which the work is worthless (optional)
//   reply        the stream that gets the result (default: the consumer's results stream)
//   traceparent  the producer's W3C trace context: the consumer's spans continue its trace
//   enqueued_ms  Unix time in milliseconds when the message was queued (for the queue-wait span;
//                a Redis entry id carries it already)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "inference/inference_service.h"
#include "tracing/trace_context.h"

namespace galley::queue {

// One stream entry: its id ("<ms>-<seq>") and its field/value pairs in order.
struct StreamEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;

  // The first value of `name`, or nullptr.
  const std::string* Field(std::string_view name) const;
};

// The milliseconds part of an entry id ("1733300000000-3" -> 1733300000000); none when the id
// is not of that form.
std::optional<int64_t> EntryMillis(std::string_view entry_id);

struct MessageOptions {
  std::string default_model = "vader";
  std::string results_stream;  // where results go when a message names no reply stream
  size_t max_body_bytes = 1 << 20;
};

// A message ready for InferenceService::Infer.
struct QueueRequest {
  std::string key;    // the result's key: the message's id, else the entry id
  std::string reply;  // the stream that gets the result
  bool analyze = false;
  std::string oip_id;                // the request's own "id" (Open Inference Protocol)
  std::vector<std::string> outputs;  // requested outputs (empty: all)
  const model::ModelMetadata* metadata = nullptr;
  inference::InferRequest request;
  // The producer's W3C trace context (field `traceparent`), and when the message was enqueued
  // (Unix ms: field `enqueued_ms`, else a Redis entry id's time; 0: unknown), for traces.
  std::optional<tracing::TraceContext> trace;
  int64_t enqueued_ms = 0;
};

// Parses `entry` for `service`. Every error is InvalidArgument or DeadlineExceeded with a
// message that becomes the dead-letter reason: no body, a body over the limit, not JSON or not
// a valid request for the model, an unknown model, a malformed or past deadline. `now_unix_ms`
// and `now` are the same instant on the wall clock and on the request clock.
absl::StatusOr<QueueRequest> ParseMessage(const StreamEntry& entry,
                                          const inference::InferenceService& service,
                                          const MessageOptions& options, int64_t now_unix_ms,
                                          TimePoint now);

// The result's body for a finished request (kOk): the analyze answer or the inference response.
std::string EncodeResult(const QueueRequest& request, const inference::InferResult& result);

// What the consumer does with a request once the service has answered it.
enum class Disposition {
  kResult,      // write the result, then acknowledge (both in one atomic step)
  kDeadLetter,  // the message can never succeed: dead-letter it with the reason, acknowledge
  kResubmit,    // the model's queue was full: submit again shortly, still holding the message
  kRelease,     // not now (model loading or failing, server stopping): leave it pending, so the
                // visibility timeout hands it to a consumer again (counted toward the limit)
};
Disposition DispositionFor(inference::Outcome outcome);

}  // namespace galley::queue
