// The metrics every queue consumer exports, under one set of names so that one dashboard reads
// any broker (docs/queues.md, "Metrics"). The families are shared through the registry (a second
// consumer in the same process gets the same families); each consumer's series carry its own
// constant labels, so two consumers never write the same gauge.
#pragma once

#include "metrics/registry.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace galley::queue {

struct ConsumerMetrics {
  // `labels` (e.g. {{"broker", "amqp"}}) are added to every series of this consumer.
  ConsumerMetrics(metrics::Registry& registry, prometheus::Labels labels);

  // galley_consumer_messages_total{outcome}: consumed, redelivered, acked, duplicate,
  // dead_lettered, released.
  void Count(const char* outcome);

  prometheus::Labels labels;
  prometheus::Family<prometheus::Counter>& messages;
  prometheus::Gauge& inflight;        // messages held: delivered, not yet acknowledged
  prometheus::Gauge& backlog;         // messages waiting in the broker, not yet delivered
  prometheus::Histogram& age;         // message age when delivered
  prometheus::Histogram& end_to_end;  // from the message's time to its result acknowledged
};

}  // namespace galley::queue
