#include "serve/serve_metrics.h"

namespace galley::serve {
const prometheus::Histogram::BucketBoundaries& BatchSizeBuckets() {
  static const auto* const kBuckets =
      new prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256};
  return *kBuckets;
}

ServeMetrics::ServeMetrics(metrics::Registry& r)
    : requests(prometheus::BuildCounter()
                   .Name("galley_requests_total")
                   .Help("Requests answered, by endpoint, model and outcome.")
                   .Register(r.prom())),
      request_duration(prometheus::BuildHistogram()
                           .Name("galley_request_duration_seconds")
                           .Help("Time from receiving a request to handing over its response.")
                           .Register(r.prom())),
      http_inflight(prometheus::BuildGauge()
                        .Name("galley_http_inflight_requests")
                        .Help("HTTP requests received and not yet answered.")
                        .Register(r.prom())),
      http_connections(prometheus::BuildGauge()
                           .Name("galley_http_open_connections")
                           .Help("Open HTTP connections.")
                           .Register(r.prom())),
      queue_duration(prometheus::BuildHistogram()
                         .Name("galley_queue_duration_seconds")
                         .Help("Time a request waited in its model's queue.")
                         .Register(r.prom())),
      compute_duration(prometheus::BuildHistogram()
                           .Name("galley_compute_duration_seconds")
                           .Help("Time the model took to run one batch.")
                           .Register(r.prom())),
      queue_length(prometheus::BuildGauge()
                       .Name("galley_queue_length")
                       .Help("Requests waiting in the model's queue (inference.queue.length).")
                       .Register(r.prom())),
      model_inflight(prometheus::BuildGauge()
                         .Name("galley_model_inflight_requests")
                         .Help("Requests queued or running on the model.")
                         .Register(r.prom())),
      batch_size(prometheus::BuildHistogram()
                     .Name("galley_batch_size")
                     .Help("Rows in each batch the model ran.")
                     .Register(r.prom())),
      executions(prometheus::BuildCounter()
                     .Name("galley_model_executions_total")
                     .Help("Batches the model ran.")
                     .Register(r.prom())),
      inferences(prometheus::BuildCounter()
                     .Name("galley_model_inferences_total")
                     .Help("Rows the model ran; divided by executions it gives the mean batch size.")
                     .Register(r.prom())),
      load_duration(prometheus::BuildGauge()
                        .Name("galley_model_load_duration_seconds")
                        .Help("Time the model took to load and warm up.")
                        .Register(r.prom())),
      model_ready(prometheus::BuildGauge()
                      .Name("galley_model_ready")
                      .Help("1 when the model is loaded and warmed up, else 0.")
                      .Register(r.prom())),
      http_inflight_gauge(http_inflight.Add({})),
      http_connections_gauge(http_connections.Add({})),
      http_evicted_counter(prometheus::BuildCounter()
                               .Name("galley_http_connections_evicted_total")
                               .Help("Idle keep-alive connections closed to make room for a new "
                                     "client at --max-connections.")
                               .Register(r.prom())
                               .Add({})) {}

void ServeMetrics::SyncConnections(const http::ServerStats& stats) {
  http_connections_gauge.Set(static_cast<double>(stats.open_connections.load()));
  const int64_t evicted_total = stats.evicted_connections.load();
  const int64_t before = evicted_seen_.exchange(evicted_total);
  if (evicted_total > before) http_evicted_counter.Increment(static_cast<double>(evicted_total - before));
}

}  // namespace galley::serve
