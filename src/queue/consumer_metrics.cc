#include "queue/consumer_metrics.h"

namespace galley::queue {
namespace {

prometheus::Labels With(prometheus::Labels labels, const char* name, const char* value) {
  labels.emplace(name, value);
  return labels;
}

}  // namespace

ConsumerMetrics::ConsumerMetrics(metrics::Registry& r, prometheus::Labels l)
    : labels(std::move(l)),
      messages(prometheus::BuildCounter()
                   .Name("galley_consumer_messages_total")
                   .Help("Queue messages by what happened to them (docs/queues.md, Metrics).")
                   .Register(r.prom())),
      inflight(prometheus::BuildGauge()
                   .Name("galley_consumer_inflight_messages")
                   .Help("Messages this consumer holds: delivered and not yet acknowledged.")
                   .Register(r.prom())
                   .Add(labels)),
      backlog(prometheus::BuildGauge()
                  .Name("galley_consumer_backlog_messages")
                  .Help("Messages waiting in the broker, not yet delivered to a consumer.")
                  .Register(r.prom())
                  .Add(labels)),
      age(prometheus::BuildHistogram()
              .Name("galley_consumer_message_age_seconds")
              .Help("Age of a message when this consumer received it.")
              .Register(r.prom())
              .Add(labels, metrics::DurationBuckets())),
      end_to_end(prometheus::BuildHistogram()
                     .Name("galley_consumer_end_to_end_seconds")
                     .Help("From a message's time to its result written and acknowledged.")
                     .Register(r.prom())
                     .Add(labels, metrics::DurationBuckets())) {}

void ConsumerMetrics::Count(const char* outcome) {
  messages.Add(With(labels, "outcome", outcome)).Increment();
}

}  // namespace galley::queue
