#include "autoscale/hpa.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

#include "autoscale/hpa_calculator.h"
#include "common/strings.h"

namespace galley::autoscale {
namespace {

using hpa_internal::CalcContext;
using hpa_internal::Tolerances;

// GenerateHPAScaleUpRules (apis/autoscaling/v2/defaults.go): no stabilisation, Max of
// "4 pods per 15 s" and "100% per 15 s".
ScalingRules DefaultScaleUp(const std::optional<ScalingRules>& given) {
  ScalingRules r = given.value_or(ScalingRules{});
  if (!r.stabilization_window_seconds) r.stabilization_window_seconds = 0;
  if (!r.select_policy) r.select_policy = SelectPolicy::kMax;
  if (r.policies.empty()) {
    r.policies = {{PolicyType::kPods, 4, 15}, {PolicyType::kPercent, 100, 15}};
  }
  return r;
}

// GenerateHPAScaleDownRules: "100% per 15 s", Max; a nil window is later set by
// maybeInitScaleDownStabilizationWindow to --horizontal-pod-autoscaler-downscale-stabilization.
ScalingRules DefaultScaleDown(const std::optional<ScalingRules>& given, absl::Duration window) {
  ScalingRules r = given.value_or(ScalingRules{});
  if (!r.stabilization_window_seconds) {
    r.stabilization_window_seconds = static_cast<int>(absl::ToInt64Seconds(window));
  }
  if (!r.select_policy) r.select_policy = SelectPolicy::kMax;
  if (r.policies.empty()) r.policies = {{PolicyType::kPercent, 100, 15}};
  return r;
}

// getReplicasChangePerPeriod: the sum of changes of the events strictly after now - period.
int ReplicasChangePerPeriod(int period_seconds, const std::vector<ScaleEvent>& events, int sign,
                            absl::Time now) {
  const absl::Time cutoff = now - absl::Seconds(period_seconds);
  int total = 0;
  for (const ScaleEvent& e : events) {
    if (e.time > cutoff && e.change * sign > 0) total += e.change * sign;
  }
  return total;
}

// calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors: each policy
// allows a change relative to the replica count at the start of its period; selectPolicy picks
// the largest change (Max), the smallest (Min), or none (Disabled).
int RateLimit(bool up, int current, const ScalingRules& rules, const History& h, absl::Time now) {
  if (*rules.select_policy == SelectPolicy::kDisabled) return current;
  // For a scale-up Max picks the highest limit; for a scale-down Max picks the lowest.
  const bool pick_high = (*rules.select_policy == SelectPolicy::kMax) == up;
  int result = pick_high ? INT_MIN : INT_MAX;
  for (const ScalingPolicy& p : rules.policies) {
    const int added = ReplicasChangePerPeriod(p.period_seconds, h.scale_events, +1, now);
    const int deleted = ReplicasChangePerPeriod(p.period_seconds, h.scale_events, -1, now);
    const int start = current - added + deleted;
    // Saturating: a count near MaxInt32 must not wrap negative.
    int proposed;
    if (p.type == PolicyType::kPods) {
      proposed = hpa_internal::ClampInt(int64_t{start} + (up ? p.value : -int64_t{p.value}));
    } else if (up) {
      // Rounded up, or a small percentage could never add a replica.
      proposed = hpa_internal::ClampReplicas(std::ceil(start * (1 + p.value / 100.0)));
    } else {
      // Truncated, as in the source.
      proposed = hpa_internal::ClampReplicas(std::trunc(start * (1 - p.value / 100.0)));
    }
    result = pick_high ? std::max(result, proposed) : std::min(result, proposed);
  }
  return result;
}

struct Limited {
  int replicas;
  std::string reason;
  std::string message;
};

// convertDesiredReplicasWithBehaviorRate: clamp to the rate limits and to [min, max].
Limited ApplyBehaviorRate(int current, int desired, int min, int max, const ScalingRules& up,
                          const ScalingRules& down, const History& h, absl::Time now) {
  if (desired > current) {
    const int limit = std::max(RateLimit(true, current, up, h, now), current);
    if (max > limit) {
      if (desired > limit) {
        return {limit, "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate"};
      }
    } else if (desired > max) {
      return {max, "TooManyReplicas",
              "the desired replica count is more than the maximum replica count"};
    }
  } else if (desired < current) {
    const int limit = std::min(RateLimit(false, current, down, h, now), current);
    if (min < limit) {
      if (desired < limit) {
        return {limit, "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate"};
      }
    } else if (desired < min) {
      return {min, "TooFewReplicas",
              "the desired replica count is less than the minimum replica count"};
    }
  }
  return {desired, "DesiredWithinRange", "the desired count is within the acceptable range"};
}

// calculateScaleUpLimit: without behavior, at most max(2 * current, 4).
// Saturates at MaxInt32 (a float64 product converted to int32 upstream).
int LegacyScaleUpLimit(int current) {
  return std::max(hpa_internal::ClampInt(2 * int64_t{current}), 4);
}

// convertDesiredReplicasWithRules: clamp to min, and to the smaller of max and the legacy cap.
Limited ApplyLegacyRules(int current, int desired, int min, int max) {
  const int cap = LegacyScaleUpLimit(current);
  if (desired < min) {
    return {min, "TooFewReplicas",
            "the desired replica count is less than the minimum replica count"};
  }
  if (max > cap) {
    if (desired > cap) {
      return {cap, "ScaleUpLimit",
              "the desired replica count is increasing faster than the maximum scale rate"};
    }
  } else if (desired > max) {
    return {max, "TooManyReplicas",
            "the desired replica count is more than the maximum replica count"};
  }
  return {desired, "DesiredWithinRange", "the desired count is within the acceptable range"};
}

// stabilizeRecommendation (no behavior): the highest recommendation of the downscale window
// (those not before now - window), the current proposal included.
int StabilizeLegacy(int desired, const History& h, absl::Duration window, absl::Time now) {
  int best = desired;
  for (const auto& r : h.recommendations) {
    if (r.time >= now - window) best = std::max(best, r.replicas);
  }
  return best;
}

// stabilizeRecommendationWithBehaviors: the scale-up window bounds the result from above by the
// lowest recent recommendation, the scale-down window from below by the highest; the current
// count is moved only as far as those bounds allow. Windows take samples strictly after cutoff.
int StabilizeWithBehaviors(int current, int desired, const ScalingRules& up,
                           const ScalingRules& down, const History& h, absl::Time now) {
  int up_rec = desired, down_rec = desired;
  const absl::Time up_cutoff = now - absl::Seconds(*up.stabilization_window_seconds);
  const absl::Time down_cutoff = now - absl::Seconds(*down.stabilization_window_seconds);
  for (const auto& r : h.recommendations) {
    if (r.time > up_cutoff) up_rec = std::min(up_rec, r.replicas);
    if (r.time > down_cutoff) down_rec = std::max(down_rec, r.replicas);
  }
  int rec = current;
  if (rec < up_rec) rec = up_rec;
  if (rec > down_rec) rec = down_rec;
  return rec;
}

Tolerances MakeTolerances(const HpaSpec& spec) {
  Tolerances t{spec.tolerance, spec.tolerance};
  if (spec.behavior) {
    if (spec.behavior->scale_down && spec.behavior->scale_down->tolerance) {
      t.scale_down = *spec.behavior->scale_down->tolerance;
    }
    if (spec.behavior->scale_up && spec.behavior->scale_up->tolerance) {
      t.scale_up = *spec.behavior->scale_up->tolerance;
    }
  }
  return t;
}

}  // namespace

int64_t ToMilli(double value) {
  const double milli = value * 1000.0;
  // Saturate: a value past the int64 range (or NaN) must not be converted (undefined behaviour).
  if (std::isnan(milli)) return 0;
  if (milli >= 0x1p63) return std::numeric_limits<int64_t>::max();
  if (milli <= -0x1p63) return std::numeric_limits<int64_t>::min();
  const double nearest = std::round(milli);
  if (std::fabs(milli - nearest) < 1e-6) return static_cast<int64_t>(nearest);
  return static_cast<int64_t>(std::ceil(milli));
}

Decision RecommendHpa(const Snapshot& snapshot, const HpaSpec& spec, const History& history,
                      absl::Time now) {
  Decision d;
  const int current = snapshot.current_replicas;
  d.replicas = current;
  // reconcileAutoscaler: a target scaled to zero by hand, with minReplicas > 0, is left alone.
  if (current == 0 && spec.min_replicas != 0) {
    d.reason = "ScalingDisabled";
    d.message = "scaling is disabled since the replica count of the target is zero";
    return d;
  }
  // reconcileAutoscaler: outside [min, max], go straight to the bound (no metrics, no history).
  if (current > spec.max_replicas) {
    d.replicas = spec.max_replicas;
    d.reason = "TooManyReplicas";
    d.message = "Current number of replicas above Spec.MaxReplicas";
    return d;
  }
  if (current < spec.min_replicas) {
    d.replicas = spec.min_replicas;
    d.reason = "TooFewReplicas";
    d.message = "Current number of replicas below Spec.MinReplicas";
    return d;
  }
  // SetDefaults_HorizontalPodAutoscaler: no metrics means cpu at 80% utilization.
  std::vector<MetricSpec> metrics = spec.metrics;
  if (metrics.empty()) {
    metrics.push_back({MetricSourceType::kResource, "cpu", "", TargetType::kUtilization, 80, 0});
  }
  CalcContext ctx{&snapshot,
                  current,
                  MakeTolerances(spec),
                  spec.cpu_initialization_period,
                  spec.initial_readiness_delay,
                  now};
  // computeReplicasForMetrics: the largest valid proposal wins; all invalid, or some invalid
  // while the valid ones would scale down, and the HPA does not scale.
  int desired = 0, invalid = 0;
  std::string winner;
  for (const MetricSpec& m : metrics) {
    MetricProposal p = hpa_internal::ComputeReplicasForMetric(ctx, m);
    if (p.replicas < 0) {
      ++invalid;
    } else if (desired == 0 || p.replicas > desired) {
      desired = p.replicas;
      winner = p.metric;
    }
    d.proposals.push_back(std::move(p));
  }
  if (invalid == static_cast<int>(metrics.size()) || (invalid > 0 && desired < current)) {
    d.reason = "FailedGetMetrics";
    d.message = StrCat("invalid metrics (", invalid, " invalid out of ", metrics.size(),
                       "), keeping the current replica count");
    return d;
  }
  d.recommendation = desired;
  std::string rescale = desired > current   ? StrCat(winner, " above target")
                        : desired < current ? std::string("All metrics below target")
                                            : std::string("metrics within tolerance of target");
  if (!spec.behavior) {
    // normalizeDesiredReplicas: stabilise, then the legacy rules.
    const int stabilized = StabilizeLegacy(desired, history, spec.downscale_stabilization, now);
    Limited l = ApplyLegacyRules(current, stabilized, spec.min_replicas, spec.max_replicas);
    d.replicas = l.replicas;
    if (l.reason != "DesiredWithinRange") {
      d.reason = l.reason;
      d.message = l.message;
    } else if (stabilized != desired) {
      d.reason = "ScaleDownStabilized";
      d.message =
          "recent recommendations were higher than current one, applying the highest "
          "recent recommendation";
    } else {
      d.reason = "DesiredWithinRange";
      d.message = rescale;
    }
    return d;
  }
  // normalizeDesiredReplicasWithBehaviors: stabilise per direction, then the policy rates.
  const ScalingRules up = DefaultScaleUp(spec.behavior->scale_up);
  const ScalingRules down =
      DefaultScaleDown(spec.behavior->scale_down, spec.downscale_stabilization);
  const int stabilized = StabilizeWithBehaviors(current, desired, up, down, history, now);
  Limited l = ApplyBehaviorRate(current, stabilized, spec.min_replicas, spec.max_replicas, up, down,
                                history, now);
  d.replicas = l.replicas;
  if (l.reason != "DesiredWithinRange") {
    d.reason = l.reason;
    d.message = l.message;
  } else if (stabilized != desired) {
    d.reason = stabilized < desired ? "ScaleUpStabilized" : "ScaleDownStabilized";
    d.message = stabilized < desired ? "recent recommendations were lower than current one, "
                                       "applying the lowest recent recommendation"
                                     : "recent recommendations were higher than current one, "
                                       "applying the highest recent recommendation";
  } else {
    d.reason = "DesiredWithinRange";
    d.message = rescale;
  }
  return d;
}

}  // namespace galley::autoscale
