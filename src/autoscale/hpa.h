// The HPA-compatible mode of the recommender: given the inputs of a Kubernetes autoscaling/v2
// HorizontalPodAutoscaler, returns the replica count that kube-controller-manager would set.
//
// Sources (Kubernetes v1.33): pkg/controller/podautoscaler/horizontal.go (reconcileAutoscaler,
// computeReplicasForMetrics, normalizeDesiredReplicas[WithBehaviors], the stabilisation and rate
// functions), replica_calculator.go (GetResourceReplicas, calcPlainMetricReplicas, groupPods, the
// Object and External calculators), metrics/utilization.go (the ratio arithmetic), and
// pkg/apis/autoscaling/v2/defaults.go (API defaulting); the user-facing rules are in
// https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/ ("Algorithm details",
// "Configurable scaling behavior"). Each rule in hpa.cc carries a comment naming its origin.
#pragma once

#include "autoscale/recommender.h"

namespace galley::autoscale {

// Pure: the HPA's decision for `snapshot` at `now` given the earlier recommendations and scale
// events in `history`. Never fails (an invalid metric set keeps the current count, as the HPA
// does when computeReplicasForMetrics returns an error).
Decision RecommendHpa(const Snapshot& snapshot, const HpaSpec& spec, const History& history,
                      absl::Time now);

// Quantity.MilliValue(): the value in thousandths, rounded up (exact decimal inputs such as 0.1
// are not pushed up by binary floating-point error). Exposed for tests.
int64_t ToMilli(double value);

}  // namespace galley::autoscale
