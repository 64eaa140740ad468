// What the RabbitMQ consumer and the autoscaler share: opening a connection, declaring the
// queues (docs/queues.md, "RabbitMQ") and reading the queue's depth.
//
// AmqpQueueDepth is the autoscaler's view of a RabbitMQ queue: messages ready (waiting, not yet
// delivered to any consumer), read by a passive queue.declare (AMQP 0-9-1 `declare-ok`
// message-count). Messages delivered and not yet acknowledged are not in that count; the
// autoscaler takes them from the consumers' own in-flight gauges, since a dead consumer's
// unacknowledged messages return to the ready count when the broker closes its connection.
#pragma once

#include <amqp.h>

#include <chrono>
#include <initializer_list>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "queue/amqp_consumer.h"

namespace galley::queue {

// `options` with the derived names filled in (results and dead queues).
AmqpOptions WithAmqpDefaults(AmqpOptions options);

// A connection to options.host:port, logged in, with `channels` open. `rpc_timeout` bounds every
// synchronous call; the caller owns the connection (amqp_destroy_connection). Unavailable with
// the reason when any step fails (nothing is leaked).
absl::StatusOr<amqp_connection_state_t> OpenAmqpConnection(
    const AmqpOptions& options, std::initializer_list<amqp_channel_t> channels,
    std::chrono::milliseconds connect_timeout, std::chrono::milliseconds rpc_timeout);

// Declares the queue (a durable quorum queue with its delivery limit and dead-letter exchange),
// the results queue, the dead-letter exchange and queue, idempotently. A queue that exists with
// other arguments is refused by the broker (PRECONDITION_FAILED, returned as Unavailable).
absl::Status DeclareAmqpTopology(amqp_connection_state_t conn, amqp_channel_t channel,
                                 const AmqpOptions& options);

// Reads the ready count of one queue over a connection of its own, declaring the topology once
// per connection (so producers can publish before any consumer has run: a fleet scaled to zero
// has nobody else to declare it). A failed read drops the connection; the next read reconnects.
// Not thread-safe: one caller at a time.
class AmqpQueueDepth {
 public:
  AmqpQueueDepth(AmqpOptions options, std::chrono::milliseconds timeout);
  ~AmqpQueueDepth();
  AmqpQueueDepth(const AmqpQueueDepth&) = delete;
  AmqpQueueDepth& operator=(const AmqpQueueDepth&) = delete;

  // Messages ready in the queue. Unavailable (with the reason) when the broker cannot be reached
  // or refuses the declaration.
  absl::StatusOr<double> Ready();

 private:
  void Drop();

  AmqpOptions options_;
  std::chrono::milliseconds timeout_;
  amqp_connection_state_t conn_ = nullptr;
};

}  // namespace galley::queue
