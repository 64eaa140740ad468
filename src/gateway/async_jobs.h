// Asynchronous requests through the gateway (docs/gateway.md, "Asynchronous requests"): a
// request with `Prefer: respond-async` (RFC 7240) is not forwarded; its body goes to a Redis
// stream that `galley serve --queue-redis` replicas consume, and the client gets `202 Accepted`
// with the job's id and where to fetch the result. `GET /v1/results/{id}` answers the result
// once a consumer wrote it (with `?wait_ms=N`, waiting up to N ms for it).
//
// One thread with its own Redis connection does the I/O; handlers only queue work for it.
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "http/server.h"
#include "redis/redis_client.h"

namespace galley::gateway {

struct AsyncJobsOptions {
  redis::RedisAddress address;
  std::string stream = "galley:requests";
  std::chrono::milliseconds redis_timeout{2'000};
  std::chrono::milliseconds max_wait{30'000};  // the longest ?wait_ms a client may ask
  std::chrono::seconds job_ttl{86'400};        // as the consumers' --queue-result-ttl-s
  size_t max_pending = 4096;                   // queued submissions and waits, at most
};

class AsyncJobs {
 public:
  static absl::StatusOr<std::unique_ptr<AsyncJobs>> Create(AsyncJobsOptions options);
  ~AsyncJobs();  // Stop()

  // Queues `body` for `model` (deadline_ms: Unix ms, 0 none) and answers 202 with
  // {"id": ..., "status": "queued", "result": "/v1/results/<id>"} and a Location header, or 503
  // when Redis cannot take it, or 429 when too much is queued here. With `wait` > 0 (RFC 7240's
  // `Prefer: respond-async, wait=N`), the request rides the queue synchronously: its result is
  // answered as it arrives (200, or 422 if dead-lettered) if that is within `wait` (capped at
  // max_wait), and the 202 only after. Preference-Applied says which.
  // `traceparent` (the client's W3C trace context, when valid) goes into the entry, so the
  // consumer's spans continue the client's trace.
  void Submit(std::string model, std::string body, int64_t deadline_ms, http::Responder respond,
              std::chrono::milliseconds wait = std::chrono::milliseconds(0),
              std::string traceparent = "");
  // Answers the job's result: 200 with the answer's body, 202 {"status":"pending"} while it
  // runs, 422 {"error": reason} if it was dead-lettered, 404 for an id never seen or expired.
  void Result(std::string id, std::chrono::milliseconds wait, http::Responder respond);
  void Stop();

  struct State;

 private:
  explicit AsyncJobs(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace galley::gateway
