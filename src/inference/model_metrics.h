// The metric families of the models a process serves (queue, compute, batch sizes, readiness).
// Names and labels are documented in docs/api.md ("Metrics"). Every series is labelled by model.
#pragma once

#include "metrics/registry.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace galley::inference {

// Buckets for the batch-size histogram: 1, 2, 4, ... 256 rows.
const prometheus::Histogram::BucketBoundaries& BatchSizeBuckets();

struct ModelMetrics {
  explicit ModelMetrics(metrics::Registry& registry);

  prometheus::Family<prometheus::Histogram>& queue_duration;
  prometheus::Family<prometheus::Histogram>& compute_duration;
  prometheus::Family<prometheus::Gauge>& queue_length;
  prometheus::Family<prometheus::Gauge>& model_inflight;
  prometheus::Family<prometheus::Histogram>& batch_size;
  prometheus::Family<prometheus::Counter>& executions;
  prometheus::Family<prometheus::Counter>& inferences;
  prometheus::Family<prometheus::Gauge>& load_duration;
  prometheus::Family<prometheus::Gauge>& model_ready;
};

}  // namespace galley::inference
