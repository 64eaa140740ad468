// The queue an autoscaler scales on, as both `galley up --autoscale` and `galley autoscale run`
// read it: a Redis stream's lag and pending count for one consumer group (queue/redis_backlog.h),
// or a RabbitMQ queue's ready count with the unacknowledged messages taken from the replicas'
// own gauges (queue/amqp_topology.h).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "autoscale/metrics_source.h"
#include "cli/flags.h"

namespace galley::cli {

struct QueueSource {
  std::string redis;  // HOST:PORT; empty: not Redis
  std::string stream = "galley:requests";
  std::string group = "galley";
  std::string amqp;  // HOST:PORT; empty: not RabbitMQ
  std::string amqp_queue = "galley.requests";

  bool enabled() const { return !redis.empty() || !amqp.empty(); }
  // "HOST:PORT/STREAM" or "HOST:PORT/QUEUE"; empty when off.
  std::string Describe() const;
  // The addresses parse and at most one broker is named; the message names the flag.
  absl::Status Validate() const;
};

// Adds --queue-redis, --queue-stream, --queue-group, --queue-amqp, --queue-amqp-queue. `what`
// starts each help text (e.g. "scale on").
void AddQueueSourceFlags(CLI::App* cmd, QueueSource& q, const std::string& what);

// A reader of the queue's depth for autoscale::ControllerOptions::queue_depth, with its own
// connection (opened on first use, reopened after a failure; each call bounded by `timeout`).
// Thread-safe. Validate() must have passed; an empty function when the source is off.
std::function<absl::StatusOr<autoscale::QueueDepth>()> MakeQueueDepthReader(
    const QueueSource& q, std::chrono::milliseconds timeout);

}  // namespace galley::cli
