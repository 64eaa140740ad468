// The server's metric families. Names and labels are documented in docs/api.md ("Metrics").
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "http/server.h"
#include "metrics/registry.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace galley::serve {

// Buckets for the batch-size histogram: 1, 2, 4, ... 256 rows.
const prometheus::Histogram::BucketBoundaries& BatchSizeBuckets();

struct ServeMetrics {
  explicit ServeMetrics(metrics::Registry& registry);

  prometheus::Family<prometheus::Counter>& requests;           // endpoint, model, outcome
  prometheus::Family<prometheus::Histogram>& request_duration; // endpoint
  prometheus::Family<prometheus::Gauge>& http_inflight;        // (none)
  prometheus::Family<prometheus::Gauge>& http_connections;     // (none)
  prometheus::Family<prometheus::Histogram>& queue_duration;   // model
  prometheus::Family<prometheus::Histogram>& compute_duration; // model
  prometheus::Family<prometheus::Gauge>& queue_length;         // model
  prometheus::Family<prometheus::Gauge>& model_inflight;       // model
  prometheus::Family<prometheus::Histogram>& batch_size;       // model
  prometheus::Family<prometheus::Counter>& executions;         // model
  prometheus::Family<prometheus::Counter>& inferences;         // model
  prometheus::Family<prometheus::Gauge>& load_duration;        // model
  prometheus::Family<prometheus::Gauge>& model_ready;          // model

  prometheus::Gauge& http_inflight_gauge;
  prometheus::Gauge& http_connections_gauge;
  prometheus::Counter& http_evicted_counter;

  // Copies the HTTP server's connection counters into the metrics (called before a scrape).
  // Thread-safe.
  void SyncConnections(const http::ServerStats& stats);

 private:
  std::atomic<int64_t> evicted_seen_{0};
};

}  // namespace galley::serve
