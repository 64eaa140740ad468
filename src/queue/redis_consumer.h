// The Redis Streams consumer of `galley serve --queue-redis`: takes inference work from a stream
// through a consumer group into the same InferenceService as the HTTP and gRPC front-ends, and
// writes each result and its acknowledgement in one atomic step.
//
// Delivery (at least once, answered once; docs/queues.md):
//   * XREADGROUP ... > with COUNT equal to the free capacity (never holds more than
//     max_inflight messages: a full consumer stops fetching).
//   * A result is written (to the reply stream, guarded by a per-message done key with SET NX)
//     and the entry acknowledged (XACK) by one Lua script, so an acknowledged message always has
//     its result, and a redelivered message whose result exists is acknowledged without a second
//     result.
//   * A sweeper reclaims entries idle past the visibility timeout (XPENDING IDLE + XCLAIM, which
//     counts deliveries) from crashed consumers, and its own entries after a restart; an entry
//     delivered max_deliveries times goes to the dead-letter stream with the reason.
//   * Messages that can never succeed (not JSON, unknown model, too large, past deadline) go to
//     the dead-letter stream at once, with their fields and the reason; nothing is dropped.
//   * Trimming removes only entries that every group of the stream has delivered and
//     acknowledged (XTRIM MINID below the oldest pending and the oldest last-delivered id).
// A Component (common/lifecycle.h): Start() -> [BeginDrain()] -> Drain(deadline) -> Stop().
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/lifecycle.h"
#include "inference/inference_service.h"
#include "metrics/registry.h"
#include "queue/queue_message.h"
#include "redis/redis_client.h"
#include "tracing/tracer.h"

namespace galley::queue {

struct RedisStreamOptions {
  redis::RedisAddress address;
  // Set: each message is traced (its queue wait, then its inference), continuing the producer's
  // `traceparent` field. Must outlive the consumer.
  tracing::Tracer* tracer = nullptr;
  std::string stream = "galley:requests";
  std::string group = "galley";
  std::string consumer;        // this consumer's name; keep it across restarts
  std::string dead_stream;     // empty: stream + ":dead"
  std::string results_stream;  // empty: stream + ":results"
  int max_inflight = 32;       // messages held (fetched, not yet acknowledged) at most
  std::chrono::milliseconds visibility_timeout{30'000};
  int max_deliveries = 5;
  std::chrono::seconds result_ttl{86'400};  // how long a done key keeps a result from repeating
  std::chrono::milliseconds block{500};     // XREADGROUP BLOCK
  std::chrono::milliseconds redis_timeout{5'000};
  bool trim = true;
  MessageOptions message;  // results_stream is filled from the above
};

class RedisStreamConsumer final : public Component {
 public:
  // `service`, `registry` and `clock` must outlive the consumer.
  RedisStreamConsumer(inference::InferenceService& service, RedisStreamOptions options,
                      metrics::Registry& registry, const Clock& clock);
  ~RedisStreamConsumer();

  // Starts fetching; the group (and the stream) is created if missing once Redis answers, and
  // an unreachable Redis is retried, never fatal. InvalidArgument for bad options.
  absl::Status Start() override;
  // Stops fetching; returns at once.
  void BeginDrain() override;
  // Stops fetching, then waits until every held message is finished and acknowledged (or
  // released), or until `deadline`; logs `queue_drained` with what is still held. Messages
  // still held then stay pending for another consumer. True when none is.
  bool Drain(TimePoint deadline) override;
  // Drains with no wait and joins the threads. Idempotent.
  void Stop() override;
  std::string_view component_name() const override { return "redis-consumer"; }

  int held() const;

  struct State;

 private:
  bool Finish(TimePoint deadline);
  std::shared_ptr<State> state_;
};

}  // namespace galley::queue
