// The RabbitMQ consumer of `galley serve --queue-amqp`: takes inference work from a quorum queue
// (AMQP 0-9-1 over Debian's rabbitmq-c) into the same InferenceService as the HTTP and gRPC
// front-ends, publishes each result with a publisher confirm and acknowledges the message only
// once the broker has confirmed the result.
//
// Delivery (at least once, results carry the message id; docs/queues.md, "RabbitMQ"):
//   * The queue is a durable quorum queue with an explicit `x-delivery-limit` and a dead-letter
//     exchange (RabbitMQ 3.10 sets no limit by default, so a poison message would loop forever),
//     dead-lettering at least once (`x-dead-letter-strategy`, which needs `x-overflow`
//     `reject-publish`).
//   * basic.qos prefetch = max_inflight: the broker never hands this consumer more than it can
//     run, and a full consumer gets nothing more until it acknowledges.
//   * Results and dead letters are persistent, mandatory publishes on a channel in confirm mode;
//     the delivery is acked (basic.ack) only after the broker confirmed the publish, so an
//     acknowledged message always has its result or dead letter.
//   * Messages that can never succeed are dead-lettered at once by this consumer, with the reason
//     and the original body and properties; a full model queue resubmits shortly; a model that is
//     not ready or failing gets basic.nack with requeue, and the delivery limit dead-letters a
//     message that keeps failing (the broker's `delivery_limit` reason).
//   * A lost connection (the broker restarting) is reconnected with back-off; what was held is
//     requeued by the broker and delivered again.
// Lifecycle: Start() -> Drain(deadline) -> Stop(). Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/lifecycle.h"
#include "inference/inference_service.h"
#include "metrics/registry.h"
#include "queue/queue_message.h"
#include "tracing/tracer.h"

namespace galley::queue {

struct AmqpOptions {
  // Set: each message is traced (its queue wait, then its inference), continuing the producer's
  // `traceparent` header. Must outlive the consumer.
  tracing::Tracer* tracer = nullptr;
  std::string host = "127.0.0.1";
  uint16_t port = 5672;
  std::string vhost = "/";
  std::string user = "guest";
  std::string password = "guest";
  std::string queue = "galley.requests";
  std::string results_queue;  // empty: queue + ".results"
  std::string dead_queue;     // empty: queue + ".dead", bound to the exchange queue + ".dlx"
  std::string consumer;       // this consumer's name (its consumer tag and log name)
  int max_inflight = 32;      // basic.qos prefetch
  int max_deliveries = 5;     // x-delivery-limit = max_deliveries - 1
  std::chrono::seconds heartbeat{10};
  std::chrono::milliseconds backlog_every{1'000};  // passive queue.declare for the backlog gauge
  MessageOptions message;                          // results_stream is filled with results_queue
};

// "HOST:PORT" for --queue-amqp. InvalidArgument otherwise.
absl::Status ParseAmqpAddress(std::string_view text, AmqpOptions& options);

class AmqpConsumer final : public Component {
 public:
  // `service`, `registry` and `clock` must outlive the consumer.
  AmqpConsumer(inference::InferenceService& service, AmqpOptions options,
               metrics::Registry& registry, const Clock& clock);
  ~AmqpConsumer();

  // Starts the consumer's thread; the queues are declared once the broker answers, and an
  // unreachable broker is retried with back-off, never fatal. InvalidArgument for bad options.
  absl::Status Start() override;
  // Cancels the consumer (basic.cancel); returns at once.
  void BeginDrain() override;
  // Cancels the consumer, then waits until every held message is finished and acknowledged (or
  // requeued), or until `deadline`; logs `queue_drained` with what is still held. True when
  // none is.
  bool Drain(TimePoint deadline) override;
  // Drains with no wait, closes the connection (the broker requeues whatever is still held) and
  // joins the thread. Idempotent.
  void Stop() override;
  std::string_view component_name() const override { return "amqp-consumer"; }

  int held() const;

  struct State;

 private:
  bool Finish(TimePoint deadline);
  std::shared_ptr<State> state_;
};

}  // namespace galley::queue
