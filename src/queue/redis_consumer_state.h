// Private to galley_queue: the Redis Streams consumer's shared state (RedisStreamConsumer::State),
// whose work is split between redis_consumer.cc (the consumer's lifecycle and its fetcher thread:
// reading, sweeping, trimming) and redis_consumer_state.cc (taking messages in, dead letters and
// the writer thread).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "inference/inference_service.h"
#include "metrics/registry.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "queue/consumer_metrics.h"
#include "queue/queue_message.h"
#include "queue/redis_consumer.h"
#include "redis/redis_client.h"

namespace galley::queue {

struct Completion {
  StreamEntry entry;
  std::shared_ptr<QueueRequest> request;  // null for a message that failed to parse
  Disposition disposition = Disposition::kRelease;
  std::string reason;  // for kDeadLetter
  std::string body;    // for kResult
  int64_t deliveries = 1;
  TimePoint due{};  // for kResubmit
};

struct RedisStreamConsumer::State : std::enable_shared_from_this<State> {
  State(inference::InferenceService& s, RedisStreamOptions o, metrics::Registry& r, const Clock& c)
      : service(s),
        options(std::move(o)),
        clock(c),
        metrics(r, {{"broker", "redis"}}),
        held_gauge(metrics.inflight),
        backlog_gauge(metrics.backlog),
        pending_gauge(prometheus::BuildGauge()
                          .Name("galley_consumer_pending_messages")
                          .Help("Entries delivered to the group and not acknowledged, all "
                                "consumers (Redis Streams only).")
                          .Register(r.prom())
                          .Add(metrics.labels)),
        age(metrics.age),
        end_to_end(metrics.end_to_end) {}

  void Count(const char* outcome) { metrics.Count(outcome); }

  // Fetcher thread.
  void FetchLoop();
  void Sweep(redis::RedisClient& redis, bool own_only);
  void Accept(redis::RedisClient& redis, StreamEntry entry, int64_t deliveries);
  void Submit(std::shared_ptr<QueueRequest> q, StreamEntry entry, int64_t deliveries);
  bool DeadLetter(redis::RedisClient& redis, const StreamEntry& entry, const std::string& reason,
                  int64_t deliveries);
  std::vector<std::string> DeadLetterCommand(const StreamEntry& entry, const std::string& reason,
                                             int64_t deliveries) const;
  void CountDeadLetter(const StreamEntry& entry, const std::string& reason, int64_t deliveries);
  absl::Status EnsureGroup(redis::RedisClient& redis);
  void UpdateBacklogAndTrim(redis::RedisClient& redis);
  // Writer thread.
  void WriteLoop();
  // Writes a batch in one pipeline; false (nothing counted) when Redis could not be reached.
  bool WriteBatch(redis::RedisClient& redis, std::vector<Completion>& batch);
  void Finish();

  inference::InferenceService& service;
  const RedisStreamOptions options;
  const Clock& clock;
  ConsumerMetrics metrics;  // the names every consumer exports, labelled broker="redis"
  prometheus::Gauge& held_gauge;
  prometheus::Gauge& backlog_gauge;
  prometheus::Gauge& pending_gauge;
  prometheus::Histogram& age;
  prometheus::Histogram& end_to_end;

  mutable absl::Mutex mu;
  absl::CondVar cv;
  int held ABSL_GUARDED_BY(mu) = 0;
  bool stop_fetching ABSL_GUARDED_BY(mu) = false;
  bool stop_writing ABSL_GUARDED_BY(mu) = false;
  std::deque<Completion> done ABSL_GUARDED_BY(mu);
  std::deque<Completion> retry ABSL_GUARDED_BY(mu);  // resubmissions, by due time
  std::thread fetcher, writer;
};

}  // namespace galley::queue
