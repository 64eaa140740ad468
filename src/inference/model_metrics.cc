#include "inference/model_metrics.h"

namespace galley::inference {

const prometheus::Histogram::BucketBoundaries& BatchSizeBuckets() {
  static const auto* const kBuckets =
      new prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256};
  return *kBuckets;
}

ModelMetrics::ModelMetrics(metrics::Registry& r)
    : queue_duration(prometheus::BuildHistogram()
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
      inferences(
          prometheus::BuildCounter()
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
                      .Register(r.prom())) {}

}  // namespace galley::inference
