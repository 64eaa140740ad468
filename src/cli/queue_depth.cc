#include "cli/queue_depth.h"

#include <iostream>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "queue/amqp_topology.h"
#include "queue/redis_backlog.h"

namespace galley::cli {

std::string QueueSource::Describe() const {
  if (!redis.empty()) return redis + "/" + stream;
  if (!amqp.empty()) return amqp + "/" + amqp_queue;
  return "";
}

absl::Status QueueSource::Validate() const {
  if (!redis.empty()) {
    if (auto a = redis::ParseRedisAddress(redis); !a.ok()) {
      return absl::InvalidArgumentError("--queue-redis: " + std::string(a.status().message()));
    }
  }
  if (!amqp.empty()) {
    queue::AmqpOptions a;
    if (absl::Status st = queue::ParseAmqpAddress(amqp, a); !st.ok()) {
      return absl::InvalidArgumentError("--queue-amqp: " + std::string(st.message()));
    }
  }
  if (!redis.empty() && !amqp.empty()) {
    return absl::InvalidArgumentError(
        "--queue-redis and --queue-amqp: the fleet scales on one queue, pick one");
  }
  return absl::OkStatus();
}

void AddQueueSourceFlags(CLI::App* cmd, QueueSource& q, const std::string& what) {
  Flag(cmd, "queue-redis", q.redis,
       what + " a Redis stream at HOST:PORT (docs/queues.md): its lag and pending entries");
  Flag(cmd, "queue-stream", q.stream, "queue-redis: the stream of requests");
  Flag(cmd, "queue-group", q.group, "queue-redis: the replicas' consumer group");
  Flag(cmd, "queue-amqp", q.amqp,
       what +
           " a RabbitMQ quorum queue at HOST:PORT (declared when missing): its ready "
           "messages, and the messages the replicas hold");
  Flag(cmd, "queue-amqp-queue", q.amqp_queue, "queue-amqp: the quorum queue of requests");
}

std::function<absl::StatusOr<autoscale::QueueDepth>()> MakeQueueDepthReader(
    const QueueSource& q, std::chrono::milliseconds timeout) {
  if (!q.redis.empty()) {
    struct Redis {
      Redis(redis::RedisAddress a, std::chrono::milliseconds t) : client(std::move(a), t) {}
      absl::Mutex mu;
      redis::RedisClient client ABSL_GUARDED_BY(mu);
    };
    auto r = std::make_shared<Redis>(*redis::ParseRedisAddress(q.redis), timeout);
    return [r, stream = q.stream, group = q.group]() -> absl::StatusOr<autoscale::QueueDepth> {
      absl::MutexLock lock(&r->mu);
      auto d = queue::ReadStreamDepth(r->client, stream, group);
      if (!d.ok()) return d.status();
      return autoscale::QueueDepth{d->lag, d->pending};
    };
  }
  if (!q.amqp.empty()) {
    queue::AmqpOptions a;
    (void)queue::ParseAmqpAddress(q.amqp, a);  // checked by Validate()
    a.queue = q.amqp_queue;
    struct Amqp {
      Amqp(queue::AmqpOptions a, std::chrono::milliseconds t) : depth(std::move(a), t) {}
      absl::Mutex mu;
      queue::AmqpQueueDepth depth ABSL_GUARDED_BY(mu);
    };
    auto r = std::make_shared<Amqp>(std::move(a), timeout);
    return [r]() -> absl::StatusOr<autoscale::QueueDepth> {
      absl::MutexLock lock(&r->mu);
      absl::StatusOr<double> ready = r->depth.Ready();
      if (!ready.ok()) return ready.status();
      autoscale::QueueDepth d;
      d.lag = *ready;
      d.pending_from_replicas = true;  // unacknowledged: the consumers' own in-flight gauges
      return d;
    };
  }
  return {};
}

}  // namespace galley::cli
