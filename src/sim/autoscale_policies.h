// Private to galley_sim_autoscale: the metric names shared by the simulated policies
// (autoscale_policies.cc: MakePolicy, ParsePolicies, declared in autoscale_sim.h) and the
// discrete-event engine that reports them (autoscale_sim.cc).
#pragma once

namespace galley::sim {

constexpr const char* kQueueMetric = "galley_queue_length";
// The KEDA-style policy's External metric: requests waiting for an answer, fleet-wide.
constexpr const char* kBacklogMetric = "galley_backlog";

}  // namespace galley::sim
