// The gateway's metric families. Names and labels are documented in docs/gateway.md.
#pragma once

#include "metrics/registry.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace galley::gateway {

struct GatewayMetrics {
  explicit GatewayMetrics(metrics::Registry& registry);

  prometheus::Family<prometheus::Counter>& upstream_requests;    // replica, outcome
  prometheus::Family<prometheus::Histogram>& upstream_duration;  // replica
  prometheus::Family<prometheus::Gauge>& breaker_state;          // scope, name
  prometheus::Family<prometheus::Counter>& breaker_transitions;  // scope, name, to
  prometheus::Family<prometheus::Counter>& retries;              // (none)
  prometheus::Family<prometheus::Counter>& retries_denied;       // reason
  prometheus::Family<prometheus::Counter>& fallbacks;            // reason
  prometheus::Family<prometheus::Counter>& ejections;            // replica
  prometheus::Family<prometheus::Counter>& auth;                 // outcome
  prometheus::Family<prometheus::Gauge>& replica_ready;          // replica
  prometheus::Family<prometheus::Gauge>& replica_outstanding;    // replica
  prometheus::Gauge& held_requests;  // waiting for a replica to become ready (scale from zero)
};

}  // namespace galley::gateway
