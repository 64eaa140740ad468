// The HPA's replica calculator (replica_calculator.go): one metric's replica proposal. Internal to
// the HPA mode; hpa.cc combines the proposals and applies the controller's normalisation.
#pragma once

#include <string>

#include "autoscale/recommender.h"

namespace galley::autoscale::hpa_internal {

// Tolerance around a usage ratio of 1.0, per direction (KEP-4951, Kubernetes 1.33
// `behavior.scaleUp/scaleDown.tolerance`; both default to --horizontal-pod-autoscaler-tolerance).
struct Tolerances {
  double scale_down = 0.1;
  double scale_up = 0.1;
  // replica_calculator.go tolerances.isWithin: (1 - down) <= ratio <= (1 + up).
  bool IsWithin(double ratio) const {
    return (1.0 - scale_down) <= ratio && ratio <= (1.0 + scale_up);
  }
};

struct CalcContext {
  const Snapshot* snapshot = nullptr;
  int current_replicas = 0;  // spec.replicas of the scale target
  Tolerances tolerances;
  absl::Duration cpu_initialization_period;
  absl::Duration initial_readiness_delay;
  absl::Time now;
};

// One metric's proposal; replicas == -1 with `note` set when the metric is invalid (the HPA's
// "FailedGetXMetric" conditions).
MetricProposal ComputeReplicasForMetric(const CalcContext& ctx, const MetricSpec& metric);

// "resource/cpu", "pods/<name>", "object/<kind>/<name>/<metric>", "external/<name>".
std::string MetricKey(const MetricSpec& metric);

}  // namespace galley::autoscale::hpa_internal
