// The metric families of a front-end (REST, gRPC, the gateway's REST): requests by endpoint,
// model and outcome, their durations, requests in flight and open connections. Names and labels
// are documented in docs/api.md ("Metrics").
#pragma once

#include <atomic>
#include <cstdint>

#include "metrics/registry.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace galley::protocol {

struct FrontendMetrics {
  explicit FrontendMetrics(metrics::Registry& registry);

  prometheus::Family<prometheus::Counter>& requests;            // endpoint, model, outcome
  prometheus::Family<prometheus::Histogram>& request_duration;  // endpoint
  prometheus::Family<prometheus::Gauge>& http_inflight;         // (none)
  prometheus::Family<prometheus::Gauge>& http_connections;      // (none)
  prometheus::Gauge& http_inflight_gauge;
  prometheus::Gauge& http_connections_gauge;
  prometheus::Counter& http_evicted_counter;

  // Copies a server's connection counters (open now, evicted since start) into the metrics;
  // called before a scrape. Thread-safe.
  void SyncConnections(int64_t open_connections, int64_t evicted_total);

 private:
  std::atomic<int64_t> evicted_seen_{0};
};

}  // namespace galley::protocol
