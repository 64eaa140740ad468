#include "autoscale/hpa_calculator.h"

#include <cmath>
#include <map>
#include <set>

#include "autoscale/hpa.h"
#include "common/strings.h"

namespace galley::autoscale::hpa_internal {
namespace {

using MilliMap = std::map<std::string, int64_t>;  // pod name -> milli-value (PodMetricsInfo)

MetricProposal Invalid(const MetricSpec& m, std::string note) {
  return MetricProposal{MetricKey(m), -1, 0, 0, std::move(note)};
}

// groupPods (replica_calculator.go) sorts every pod into exactly one bucket.
struct PodGroups {
  int ready_count = 0;
  std::set<std::string> unready;  // pending pods, and (cpu only) pods not yet ready
  std::set<std::string> missing;  // running pods with no sample
  std::set<std::string> ignored;  // deleted or failed pods
};

PodGroups GroupPods(const CalcContext& ctx, const MilliMap& metrics, const std::string& resource) {
  PodGroups g;
  for (const PodState& pod : ctx.snapshot->pods) {
    // Rule: pods being deleted (deletionTimestamp set) and failed pods are ignored entirely.
    if (pod.deleted || pod.phase == PodPhase::kFailed) {
      g.ignored.insert(pod.name);
      continue;
    }
    // Rule: pending pods are set aside as unready (counted as 0 on a scale-up, see below).
    if (pod.phase == PodPhase::kPending) {
      g.unready.insert(pod.name);
      continue;
    }
    // Rule: running pods without a sample are "missing" (100% / 0 later, by direction).
    if (metrics.find(pod.name) == metrics.end()) {
      g.missing.insert(pod.name);
      continue;
    }
    // Rule (cpu only): a pod's sample is unready when the pod has no Ready condition or no start
    // time; within the CPU initialisation period after start, when it is not ready or the sample
    // window began before the last readiness transition; after it, only when it is not ready and
    // has never been ready (its last transition fell within the initial readiness delay).
    if (resource == "cpu") {
      bool unready = false;
      if (!pod.ready.has_value() || !pod.start_time.has_value()) {
        unready = true;
      } else {
        const absl::Time transition = pod.ready_transition_time.value_or(*pod.start_time);
        if (*pod.start_time + ctx.cpu_initialization_period > ctx.now) {
          const MetricSample& s = pod.metrics.at(resource);
          const absl::Time ts = s.timestamp.value_or(ctx.now);
          unready = !*pod.ready || ts < transition + s.window;
        } else {
          unready = !*pod.ready && *pod.start_time + ctx.initial_readiness_delay > transition;
        }
      }
      if (unready) {
        g.unready.insert(pod.name);
        continue;
      }
    }
    ++g.ready_count;
  }
  return g;
}

MilliMap CollectSamples(const Snapshot& snapshot, const std::string& name) {
  MilliMap out;
  for (const PodState& pod : snapshot.pods) {
    auto it = pod.metrics.find(name);
    if (it != pod.metrics.end()) out[pod.name] = ToMilli(it->second.value);
  }
  return out;
}

void Remove(MilliMap& metrics, const std::set<std::string>& pods) {
  for (const auto& p : pods) metrics.erase(p);
}

// metrics/utilization.go GetResourceUtilizationRatio: utilization is an integer percentage,
// sum(usage)*100/sum(requests) over pods that have both, truncated; the ratio is against the
// integer target percentage.
struct UtilizationRatio {
  bool ok = false;
  double ratio = 0;
  int64_t utilization = 0;
};
UtilizationRatio ResourceUtilizationRatio(const MilliMap& metrics, const MilliMap& requests,
                                          int64_t target) {
  int64_t metrics_total = 0, requests_total = 0;
  for (const auto& [pod, value] : metrics) {
    auto it = requests.find(pod);
    if (it == requests.end()) continue;
    metrics_total = SatAdd(metrics_total, value);
    requests_total = SatAdd(requests_total, it->second);
  }
  if (requests_total == 0) return {};
  const int64_t utilization = SatMul(metrics_total, 100) / requests_total;
  return {true, static_cast<double>(utilization) / static_cast<double>(target), utilization};
}

// metrics/utilization.go GetMetricUsageRatio: the integer (milli) mean over the samples.
std::pair<double, int64_t> MetricUsageRatio(const MilliMap& metrics, int64_t target) {
  int64_t total = 0;
  for (const auto& [pod, value] : metrics) total = SatAdd(total, value);
  const int64_t usage = total / static_cast<int64_t>(metrics.size());
  return {static_cast<double>(usage) / static_cast<double>(target), usage};
}

bool DirectionFlipped(double before, double after) {
  return (before < 1.0 && after > 1.0) || (before > 1.0 && after < 1.0);
}

// GetResourceReplicas: Resource metric with a Utilization target.
MetricProposal ResourceUtilizationReplicas(const CalcContext& ctx, const MetricSpec& m) {
  const int64_t target = static_cast<int64_t>(m.average_utilization);
  MilliMap metrics = CollectSamples(*ctx.snapshot, m.name);
  if (ctx.snapshot->pods.empty()) return Invalid(m, "no pods returned by selector");
  const PodGroups g = GroupPods(ctx, metrics, m.name);
  Remove(metrics, g.ignored);
  Remove(metrics, g.unready);
  // Rule (calculatePodRequests): every pod must declare a request for the resource.
  MilliMap requests;
  for (const PodState& pod : ctx.snapshot->pods) {
    auto it = pod.requests.find(m.name);
    if (it == pod.requests.end()) return Invalid(m, StrCat("missing request for ", m.name));
    requests[pod.name] = ToMilli(it->second);
  }
  if (metrics.empty()) return Invalid(m, "did not receive metrics for any ready pods");
  const UtilizationRatio r = ResourceUtilizationRatio(metrics, requests, target);
  if (!r.ok) return Invalid(m, "no metrics returned matched known pods");
  MetricProposal p{MetricKey(m), ctx.current_replicas, static_cast<double>(r.utilization),
                   static_cast<double>(target), ""};
  // Rule: unready pods only matter when scaling up ("scaleUpWithUnready").
  const bool scale_up_with_unready = !g.unready.empty() && r.ratio > 1.0;
  if (!scale_up_with_unready && g.missing.empty()) {
    // Rule: within tolerance, keep the current count; else ceil(ratio * readyPods).
    if (ctx.tolerances.IsWithin(r.ratio)) {
      p.note = "within tolerance";
      return p;
    }
    p.replicas = ClampReplicas(std::ceil(r.ratio * g.ready_count));
    return p;
  }
  // Rule: on a scale-down, missing pods count as using max(100%, target) of their request; on a
  // scale-up, as using 0.
  if (r.ratio < 1.0) {
    const int64_t fallback = std::max<int64_t>(100, target);
    for (const auto& pod : g.missing) metrics[pod] = SatMul(requests[pod], fallback) / 100;
  } else if (r.ratio > 1.0) {
    for (const auto& pod : g.missing) metrics[pod] = 0;
  }
  // Rule: on a scale-up, unready (and pending) pods count as using 0.
  if (scale_up_with_unready) {
    for (const auto& pod : g.unready) metrics[pod] = 0;
  }
  // Rule: recompute; keep the current count if the new ratio is within tolerance or would
  // reverse the direction of the scale.
  const UtilizationRatio r2 = ResourceUtilizationRatio(metrics, requests, target);
  if (ctx.tolerances.IsWithin(r2.ratio) || DirectionFlipped(r.ratio, r2.ratio)) {
    p.note = "within tolerance after accounting for missing and unready pods";
    return p;
  }
  const int proposed = ClampReplicas(std::ceil(r2.ratio * static_cast<double>(metrics.size())));
  // Rule: keep the current count if the larger pod set would reverse the direction.
  if ((r2.ratio < 1.0 && proposed > ctx.current_replicas) ||
      (r2.ratio > 1.0 && proposed < ctx.current_replicas)) {
    p.note = "adjusted pod count would reverse the direction";
    return p;
  }
  p.replicas = proposed;
  return p;
}

// calcPlainMetricReplicas: Pods metrics, and Resource metrics with an AverageValue target.
MetricProposal PlainMetricReplicas(const CalcContext& ctx, const MetricSpec& m,
                                   const std::string& resource) {
  const int64_t target = ToMilli(m.value);
  MilliMap metrics = CollectSamples(*ctx.snapshot, m.name);
  if (ctx.snapshot->pods.empty()) return Invalid(m, "no pods returned by selector");
  const PodGroups g = GroupPods(ctx, metrics, resource);
  Remove(metrics, g.ignored);
  Remove(metrics, g.unready);
  if (metrics.empty()) return Invalid(m, "did not receive metrics for any ready pods");
  const auto [ratio, usage] = MetricUsageRatio(metrics, target);
  MetricProposal p{MetricKey(m), ctx.current_replicas, usage / 1000.0, target / 1000.0, ""};
  const bool scale_up_with_unready = !g.unready.empty() && ratio > 1.0;
  if (!scale_up_with_unready && g.missing.empty()) {
    if (ctx.tolerances.IsWithin(ratio)) {
      p.note = "within tolerance";
      return p;
    }
    p.replicas = ClampReplicas(std::ceil(ratio * g.ready_count));
    return p;
  }
  // Rule: missing pods count as the target on a scale-down, else as 0 (note: `else`, so a ratio
  // of exactly 1.0 also takes 0, as in the source).
  for (const auto& pod : g.missing) metrics[pod] = ratio < 1.0 ? target : 0;
  if (scale_up_with_unready) {
    for (const auto& pod : g.unready) metrics[pod] = 0;
  }
  const double ratio2 = MetricUsageRatio(metrics, target).first;
  if (ctx.tolerances.IsWithin(ratio2) || DirectionFlipped(ratio, ratio2)) {
    p.note = "within tolerance after accounting for missing and unready pods";
    return p;
  }
  p.replicas = ClampReplicas(std::ceil(ratio2 * static_cast<double>(metrics.size())));
  return p;
}

// getReadyPodsCount: running pods whose Ready condition is true.
int ReadyPodsCount(const Snapshot& s) {
  int n = 0;
  for (const PodState& pod : s.pods) {
    if (pod.phase == PodPhase::kRunning && pod.ready.value_or(false)) ++n;
  }
  return n;
}

// getUsageRatioReplicaCount: Object and External metrics with a Value target.
MetricProposal UsageRatioReplicas(const CalcContext& ctx, const MetricSpec& m, int64_t usage) {
  const int64_t target = ToMilli(m.value);
  const double ratio = static_cast<double>(usage) / static_cast<double>(target);
  MetricProposal p{MetricKey(m), ctx.current_replicas, usage / 1000.0, target / 1000.0, ""};
  if (ctx.current_replicas == 0) {
    // Rule: from zero replicas (HPAScaleToZero), ceil(ratio) with no tolerance.
    p.replicas = ClampReplicas(std::ceil(ratio));
    return p;
  }
  if (ctx.tolerances.IsWithin(ratio)) {
    p.note = "within tolerance";
    return p;
  }
  if (ctx.snapshot->pods.empty()) return Invalid(m, "no pods returned by selector");
  // Rule: ceil(ratio * readyPods), ready meaning Running with Ready=True.
  p.replicas = ClampReplicas(std::ceil(ratio * ReadyPodsCount(*ctx.snapshot)));
  return p;
}

// GetObjectPerPodMetricReplicas / GetExternalPerPodMetricReplicas: AverageValue targets on a
// single total; the ratio is against target * currentReplicas, the proposal ceil(total / target).
MetricProposal PerPodReplicas(const CalcContext& ctx, const MetricSpec& m, int64_t usage) {
  const int64_t target = ToMilli(m.value);
  const int current = ctx.current_replicas;
  MetricProposal p{MetricKey(m), current, 0, target / 1000.0, ""};
  if (current > 0) {
    p.current = std::ceil(static_cast<double>(usage) / current) / 1000.0;
  }
  const double ratio = static_cast<double>(usage) / (static_cast<double>(target) * current);
  if (!ctx.tolerances.IsWithin(ratio)) {
    p.replicas = ClampReplicas(std::ceil(static_cast<double>(usage) / static_cast<double>(target)));
  } else {
    p.note = "within tolerance";
  }
  return p;
}

}  // namespace

std::string MetricKey(const MetricSpec& m) {
  switch (m.type) {
    case MetricSourceType::kResource:
      return StrCat("resource/", m.name);
    case MetricSourceType::kContainerResource:
      return StrCat("containerResource/", m.name);
    case MetricSourceType::kPods:
      return StrCat("pods/", m.name);
    case MetricSourceType::kObject:
      return StrCat("object/", m.object, "/", m.name);
    case MetricSourceType::kExternal:
      return StrCat("external/", m.name);
  }
  return m.name;
}

MetricProposal ComputeReplicasForMetric(const CalcContext& ctx, const MetricSpec& m) {
  const bool positive =
      m.target_type == TargetType::kUtilization ? m.average_utilization > 0 : m.value > 0;
  if (!positive) return Invalid(m, "target must be positive");
  switch (m.type) {
    // NOTE: the snapshot carries pod-level samples only, so a ContainerResource metric is
    // computed like a Resource metric on the pod's samples for that resource.
    case MetricSourceType::kResource:
    case MetricSourceType::kContainerResource:
      if (m.target_type == TargetType::kUtilization) return ResourceUtilizationReplicas(ctx, m);
      if (m.target_type == TargetType::kAverageValue) return PlainMetricReplicas(ctx, m, m.name);
      return Invalid(m, "resource metrics take a Utilization or AverageValue target");
    case MetricSourceType::kPods:
      if (m.target_type != TargetType::kAverageValue) {
        return Invalid(m, "pods metrics take an AverageValue target");
      }
      return PlainMetricReplicas(ctx, m, "");
    case MetricSourceType::kObject: {
      auto it = ctx.snapshot->object_metrics.find(StrCat(m.object, "/", m.name));
      if (it == ctx.snapshot->object_metrics.end()) return Invalid(m, "no value for object metric");
      if (m.target_type == TargetType::kValue)
        return UsageRatioReplicas(ctx, m, ToMilli(it->second));
      if (m.target_type == TargetType::kAverageValue)
        return PerPodReplicas(ctx, m, ToMilli(it->second));
      return Invalid(m, "object metrics take a Value or AverageValue target");
    }
    case MetricSourceType::kExternal: {
      auto it = ctx.snapshot->external_metrics.find(m.name);
      if (it == ctx.snapshot->external_metrics.end())
        return Invalid(m, "no value for external metric");
      // Rule: the values of every matching series are summed; an overflowing sum caps at the
      // int64 edge (upstream: "usage overflow caps at MaxInt64").
      int64_t total = 0;
      for (double v : it->second) total = SatAdd(total, ToMilli(v));
      if (m.target_type == TargetType::kValue) return UsageRatioReplicas(ctx, m, total);
      if (m.target_type == TargetType::kAverageValue) return PerPodReplicas(ctx, m, total);
      return Invalid(m, "external metrics take a Value or AverageValue target");
    }
  }
  return Invalid(m, "unknown metric type");
}

}  // namespace galley::autoscale::hpa_internal
