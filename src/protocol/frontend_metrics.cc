#include "protocol/frontend_metrics.h"

namespace galley::protocol {

FrontendMetrics::FrontendMetrics(metrics::Registry& r)
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
      http_inflight_gauge(http_inflight.Add({})),
      http_connections_gauge(http_connections.Add({})),
      http_evicted_counter(prometheus::BuildCounter()
                               .Name("galley_http_connections_evicted_total")
                               .Help("Idle keep-alive connections closed to make room for a new "
                                     "client at --max-connections.")
                               .Register(r.prom())
                               .Add({})) {}

void FrontendMetrics::SyncConnections(int64_t open_connections, int64_t evicted_total) {
  http_connections_gauge.Set(static_cast<double>(open_connections));
  const int64_t before = evicted_seen_.exchange(evicted_total);
  if (evicted_total > before)
    http_evicted_counter.Increment(static_cast<double>(evicted_total - before));
}

}  // namespace galley::protocol
