// The HPA's replica calculator (replica_calculator.go): one metric's replica proposal. Internal to
// the HPA mode; hpa.cc combines the proposals and applies the controller's normalisation.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "autoscale/recommender.h"

namespace galley::autoscale::hpa_internal {

// Saturating int64 arithmetic for milli-values: a sum or product past the int64 range stays at
// its edge instead of wrapping (upstream replica_calculator.go caps an overflowing usage sum at
// MaxInt64, "usage overflow caps at MaxInt64"; Galley saturates in both directions).
inline int64_t SatAdd(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_add_overflow(a, b, &r)) return r;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}
inline int64_t SatMul(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_mul_overflow(a, b, &r)) return r;
  return (a < 0) == (b < 0) ? std::numeric_limits<int64_t>::max()
                            : std::numeric_limits<int64_t>::min();
}

// A replica count from a real number (already rounded by the caller): saturated at MaxInt32, as
// the HPA bounds its proposals to int32, and never negative (NOTE: upstream lets a negative
// metric give a negative proposal, which the controller then clamps to minReplicas; 0 reaches
// the same clamp). NaN gives 0.
inline int ClampReplicas(double x) {
  if (!(x > 0)) return 0;
  if (x >= static_cast<double>(std::numeric_limits<int>::max())) {
    return std::numeric_limits<int>::max();
  }
  return static_cast<int>(x);
}

// An int64 count clamped to the int range (the controller's replica arithmetic is int32).
inline int ClampInt(int64_t x) {
  if (x > std::numeric_limits<int>::max()) return std::numeric_limits<int>::max();
  if (x < std::numeric_limits<int>::min()) return std::numeric_limits<int>::min();
  return static_cast<int>(x);
}

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
