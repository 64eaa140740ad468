#include "gateway/gateway_metrics.h"

namespace galley::gateway {

GatewayMetrics::GatewayMetrics(metrics::Registry& r)
    : upstream_requests(prometheus::BuildCounter()
                            .Name("galley_gateway_upstream_requests_total")
                            .Help("Attempts sent to replicas, by replica and outcome.")
                            .Register(r.prom())),
      upstream_duration(prometheus::BuildHistogram()
                            .Name("galley_gateway_upstream_duration_seconds")
                            .Help("Time from sending an attempt to its answer or failure.")
                            .Register(r.prom())),
      breaker_state(prometheus::BuildGauge()
                        .Name("galley_gateway_breaker_state")
                        .Help("Circuit breaker state: 0 closed, 1 open, 2 half-open.")
                        .Register(r.prom())),
      breaker_transitions(prometheus::BuildCounter()
                              .Name("galley_gateway_breaker_transitions_total")
                              .Help("Circuit breaker transitions, by the state entered.")
                              .Register(r.prom())),
      retries(prometheus::BuildCounter()
                  .Name("galley_gateway_retries_total")
                  .Help("Attempts that were retries of an earlier failed attempt.")
                  .Register(r.prom())),
      retries_denied(prometheus::BuildCounter()
                         .Name("galley_gateway_retries_denied_total")
                         .Help("Retries not made, by reason (budget, deadline, attempts).")
                         .Register(r.prom())),
      fallbacks(prometheus::BuildCounter()
                    .Name("galley_gateway_fallbacks_total")
                    .Help("Requests answered by the in-process fallback model, by reason.")
                    .Register(r.prom())),
      ejections(prometheus::BuildCounter()
                    .Name("galley_gateway_ejections_total")
                    .Help("Replicas ejected after consecutive failures.")
                    .Register(r.prom())),
      auth(prometheus::BuildCounter()
               .Name("galley_gateway_auth_total")
               .Help("Requests checked against the API keys, by outcome (allowed, missing, "
                     "invalid, forbidden, rate_limited).")
               .Register(r.prom())),
      replica_ready(prometheus::BuildGauge()
                        .Name("galley_gateway_replica_ready")
                        .Help("1 when the replica passes its ready probe and is not ejected.")
                        .Register(r.prom())),
      replica_outstanding(prometheus::BuildGauge()
                              .Name("galley_gateway_replica_outstanding_requests")
                              .Help("Attempts in flight to the replica.")
                              .Register(r.prom())),
      held_requests(prometheus::BuildGauge()
                        .Name("galley_gateway_held_requests")
                        .Help("Requests waiting at the gateway for a replica to become ready.")
                        .Register(r.prom())
                        .Add({})) {
  // Series that alerts watch exist from the start at 0, so "none yet" reads as 0, not as no data.
  retries.Add({});
  for (const char* reason : {"budget", "deadline", "attempts"})
    retries_denied.Add({{"reason", reason}});
  for (const char* reason :
       {"no_ready_replica", "model_breaker_open", "deadline", "replicas_failed"}) {
    fallbacks.Add({{"reason", reason}});
  }
}

}  // namespace galley::gateway
