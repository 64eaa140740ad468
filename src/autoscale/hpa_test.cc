// Table-driven tests of the HPA mode. Cases follow the examples of the Kubernetes documentation
// (horizontal-pod-autoscale.md: "Algorithm details", "Scaling policies", "Stabilization window")
// and cases of pkg/controller/podautoscaler/replica_calculator_test.go and horizontal_test.go,
// restated as snapshots at a fixed `now`.
#include "autoscale/hpa.h"

#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "autoscale/hpa_calculator.h"
#include "gtest/gtest.h"

namespace galley::autoscale {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

// A running, long-ready pod using `cpu` cores of a 1-core request (and optionally a pods metric).
PodState Pod(std::string name, double cpu, double request = 1.0) {
  PodState p;
  p.name = std::move(name);
  p.phase = PodPhase::kRunning;
  p.ready = true;
  p.start_time = kNow - absl::Minutes(10);
  p.ready_transition_time = kNow - absl::Minutes(9);
  p.requests["cpu"] = request;
  if (cpu >= 0) p.metrics["cpu"].value = cpu;
  return p;
}
PodState Unready(PodState p) {  // just started, not ready yet (inside the CPU init period)
  p.ready = false;
  p.start_time = kNow - absl::Minutes(1);
  p.ready_transition_time = kNow - absl::Minutes(1);
  return p;
}
PodState WithPhase(PodState p, PodPhase phase) {
  p.phase = phase;
  p.ready = false;
  return p;
}
PodState Deleted(PodState p) {
  p.deleted = true;
  return p;
}
PodState WithMetric(PodState p, const std::string& name, double v) {
  p.metrics[name].value = v;
  return p;
}

MetricSpec Cpu(int percent) {
  return {MetricSourceType::kResource, "cpu", "", TargetType::kUtilization, double(percent), 0};
}
MetricSpec PodsMetric(const std::string& name, double avg) {
  return {MetricSourceType::kPods, name, "", TargetType::kAverageValue, 0, avg};
}
MetricSpec ObjectMetric(const std::string& name, TargetType t, double v) {
  return {MetricSourceType::kObject, name, "Ingress/main", t, 0, v};
}
MetricSpec ExternalMetric(const std::string& name, TargetType t, double v) {
  return {MetricSourceType::kExternal, name, "", t, 0, v};
}

HpaSpec Spec(int min, int max, std::vector<MetricSpec> metrics) {
  HpaSpec s;
  s.min_replicas = min;
  s.max_replicas = max;
  s.metrics = std::move(metrics);
  return s;
}

Snapshot Snap(int current, std::vector<PodState> pods) {
  Snapshot s;
  s.current_replicas = current;
  s.pods = std::move(pods);
  return s;
}

struct Case {
  std::string name;
  HpaSpec spec;
  Snapshot snapshot;
  History history;
  int want;
  std::string want_reason;  // empty: not checked
};

std::vector<PodState> Cpus(std::vector<double> cpus) {
  std::vector<PodState> pods;
  for (size_t i = 0; i < cpus.size(); ++i) pods.push_back(Pod("p" + std::to_string(i), cpus[i]));
  return pods;
}

History Recs(std::vector<std::pair<int, int>> ago_replicas) {
  History h;
  for (auto [ago, n] : ago_replicas) h.recommendations.push_back({kNow - absl::Seconds(ago), n});
  return h;
}

Behavior DownPolicies(std::vector<ScalingPolicy> policies, SelectPolicy select, int window) {
  Behavior b;
  ScalingRules down;
  down.policies = std::move(policies);
  down.select_policy = select;
  down.stabilization_window_seconds = window;
  b.scale_down = down;
  return b;
}

HpaSpec WithBehavior(HpaSpec s, Behavior b) {
  s.behavior = std::move(b);
  return s;
}

std::vector<Case> Cases() {
  std::vector<Case> c;
  // --- replica calculator (replica_calculator_test.go) ---
  // TestReplicaCalcScaleUp: 50% average against 30% -> ceil(3 * 50/30) = 5.
  c.push_back({"ScaleUp", Spec(1, 10, {Cpu(30)}), Snap(3, Cpus({0.3, 0.5, 0.7})), {}, 5});
  // TestReplicaCalcScaleUpUnreadyLessScale: the unready pod counts as 0 on a scale-up: 40% -> 4.
  c.push_back({"ScaleUpUnreadyLessScale",
               Spec(1, 10, {Cpu(30)}),
               Snap(3, {Unready(Pod("a", 0.3)), Pod("b", 0.5), Pod("c", 0.7)}),
               {},
               4});
  // TestReplicaCalcScaleUpUnreadyNoScale: counting unready pods as 0 reverses the direction.
  c.push_back({"ScaleUpUnreadyNoScale",
               Spec(1, 10, {Cpu(30)}),
               Snap(3, {Pod("a", 0.4), Unready(Pod("b", 0.5)), Unready(Pod("c", 0.7))}),
               {},
               3});
  // TestReplicaCalcScaleUpIgnoresFailedPods: failed pods are neither ready nor missing.
  c.push_back({"IgnoresFailedPods",
               Spec(1, 10, {Cpu(30)}),
               Snap(2, {Pod("a", 0.5), Pod("b", 0.7), WithPhase(Pod("c", -1), PodPhase::kFailed),
                        WithPhase(Pod("d", -1), PodPhase::kFailed)}),
               {},
               4});
  // TestReplicaCalcScaleUpIgnoresDeletionPods: pods being deleted are ignored too.
  c.push_back(
      {"IgnoresDeletedPods",
       Spec(1, 10, {Cpu(30)}),
       Snap(2, {Pod("a", 0.5), Pod("b", 0.7), Deleted(Pod("c", -1)), Deleted(Pod("d", -1))}),
       {},
       4});
  // TestReplicaCalcScaleDown: 28% against 50% -> ceil(5 * 0.56) = 3.
  c.push_back(
      {"ScaleDown", Spec(1, 10, {Cpu(50)}), Snap(5, Cpus({0.1, 0.3, 0.5, 0.25, 0.25})), {}, 3});
  // TestReplicaCalcScaleDownExcludeUnreadyPods: on a scale-down unready pods are left out.
  c.push_back({"ScaleDownExcludeUnready",
               Spec(1, 10, {Cpu(50)}),
               Snap(5, {Pod("a", 0.1), Pod("b", 0.3), Pod("c", 0.5), Unready(Pod("d", 0.25)),
                        Unready(Pod("e", 0.25))}),
               {},
               2});
  // TestReplicaCalcTolerance: 102% of target is within 10%: no change.
  {
    Snapshot s = Snap(3, {Pod("a", 1.01, 0.9), Pod("b", 1.03, 1.0), Pod("c", 1.02, 1.1)});
    c.push_back({"Tolerance", Spec(1, 10, {Cpu(100)}), s, {}, 3});
  }
  // TestReplicaCalcScaleUpCM: pods metric averaging 20 against 15 -> 4.
  {
    Snapshot s = Snap(3, {WithMetric(Pod("a", -1), "qps", 20), WithMetric(Pod("b", -1), "qps", 10),
                          WithMetric(Pod("c", -1), "qps", 30)});
    c.push_back({"PodsMetricScaleUp", Spec(1, 10, {PodsMetric("qps", 15)}), s, {}, 4});
  }
  // TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale: readiness is only consulted for cpu.
  {
    Snapshot s = Snap(3, {WithMetric(Pod("a", -1), "qps", 50), WithMetric(Pod("b", -1), "qps", 10),
                          WithMetric(Unready(Pod("c", -1)), "qps", 30)});
    c.push_back({"PodsMetricIgnoresReadiness", Spec(1, 10, {PodsMetric("qps", 15)}), s, {}, 6});
  }
  // TestReplicaCalcScaleDownCM: 12 against 20 -> ceil(5 * 0.6) = 3.
  {
    std::vector<PodState> pods;
    for (int i = 0; i < 5; ++i)
      pods.push_back(WithMetric(Pod("p" + std::to_string(i), -1), "qps", 12));
    c.push_back(
        {"PodsMetricScaleDown", Spec(1, 10, {PodsMetric("qps", 20)}), Snap(5, pods), {}, 3});
  }
  // TestReplicaCalcScaleUpCMObject: object value 20 against 15, 3 ready pods -> 4.
  {
    Snapshot s = Snap(3, Cpus({0.1, 0.1, 0.1}));
    s.object_metrics["Ingress/main/qps"] = 20;
    c.push_back(
        {"ObjectValue", Spec(1, 10, {ObjectMetric("qps", TargetType::kValue, 15)}), s, {}, 4});
  }
  // TestReplicaCalcScaleUpCMPerPodObject: 20 against 5 per pod -> ceil(20/5) = 4.
  {
    Snapshot s = Snap(3, Cpus({0.1, 0.1, 0.1}));
    s.object_metrics["Ingress/main/qps"] = 20;
    c.push_back({"ObjectAverageValue",
                 Spec(1, 10, {ObjectMetric("qps", TargetType::kAverageValue, 5)}),
                 s,
                 {},
                 4});
  }
  // TestReplicaCalcScaleUpCMExternal: 8.6 against 4.4 with 1 ready pod -> 2.
  {
    Snapshot s = Snap(1, Cpus({0.1}));
    s.external_metrics["queue"] = {8.6};
    c.push_back({"ExternalValue",
                 Spec(1, 10, {ExternalMetric("queue", TargetType::kValue, 4.4)}),
                 s,
                 {},
                 2});
  }
  // TestReplicaCalcScaleUpPerPodCMExternal: series summed, 8.6 against 2.15 per pod -> 4.
  {
    Snapshot s = Snap(3, Cpus({0.1, 0.1, 0.1}));
    s.external_metrics["queue"] = {4.3, 4.3};
    c.push_back({"ExternalAverageValue",
                 Spec(1, 10, {ExternalMetric("queue", TargetType::kAverageValue, 2.15)}),
                 s,
                 {},
                 4});
  }
  // Missing metrics on a scale-down count as 100% of the request: 4 pods, 2 measured at 10%,
  // 2 missing -> 220/400 = 55% against 50% is within tolerance: no change.
  c.push_back({"MissingMetricsScaleDownAssumesFull",
               Spec(1, 10, {Cpu(50)}),
               Snap(4, {Pod("a", 0.1), Pod("b", 0.1), Pod("c", -1), Pod("d", -1)}),
               {},
               4});
  // Missing metrics on a scale-up count as 0: 2 measured at 150% of 50% target, 1 missing ->
  // (1.5+1.5+0)/3 = 100% -> ceil(3 * 2) = 6.
  c.push_back({"MissingMetricsScaleUpAssumesZero",
               Spec(1, 10, {Cpu(50)}),
               Snap(3, {Pod("a", 1.5), Pod("b", 1.5), Pod("c", -1)}),
               {},
               6});
  // Pending pods are unready: counted as 0 on a scale-up (2 of 4 pods at 150% vs 50%):
  // 3000/4000 = 75% -> ceil(4 * 1.5) = 6.
  c.push_back({"PendingPodCountsZeroOnScaleUp",
               Spec(1, 10, {Cpu(50)}),
               Snap(4, {Pod("a", 1.5), Pod("b", 1.5), WithPhase(Pod("c", -1), PodPhase::kPending),
                        WithPhase(Pod("d", -1), PodPhase::kPending)}),
               {},
               6});
  // A pod never ready past the CPU init period but whose readiness flipped within the initial
  // readiness delay is ignored; one that was ready and later became unready is counted.
  {
    PodState never = Pod("never", 0.9);
    never.ready = false;
    never.start_time = kNow - absl::Minutes(10);
    never.ready_transition_time = kNow - absl::Minutes(10) + absl::Seconds(10);
    c.push_back(
        {"NeverReadyIgnored", Spec(1, 10, {Cpu(50)}), Snap(2, {Pod("a", 0.5), never}), {}, 2});
    PodState flapped = never;
    flapped.ready_transition_time = kNow - absl::Minutes(2);
    c.push_back(
        {"OnceReadyCounted", Spec(1, 10, {Cpu(50)}), Snap(2, {Pod("a", 0.5), flapped}), {}, 3});
  }
  // Hot CPU: ready, inside the init period, but the sample window started before readiness.
  {
    PodState hot = Pod("hot", 1.0);
    hot.start_time = kNow - absl::Seconds(40);
    hot.ready_transition_time = kNow - absl::Seconds(5);
    hot.metrics["cpu"].timestamp = kNow;  // window 15 s, began before the transition
    c.push_back({"HotCpuIgnored", Spec(1, 10, {Cpu(50)}), Snap(2, {Pod("a", 0.5), hot}), {}, 2});
  }
  // --- horizontal.go ---
  // Multiple metrics: the largest proposal wins (cpu asks 3, qps asks 6).
  {
    Snapshot s =
        Snap(3, {WithMetric(Pod("a", 0.5), "qps", 30), WithMetric(Pod("b", 0.5), "qps", 30),
                 WithMetric(Pod("c", 0.5), "qps", 30)});
    c.push_back({"MultipleMetricsLargest",
                 Spec(1, 10, {Cpu(50), PodsMetric("qps", 15)}),
                 s,
                 {},
                 6,
                 "DesiredWithinRange"});
  }
  // Some metrics invalid while the valid ones would scale down: no scaling.
  c.push_back({"InvalidMetricBlocksScaleDown",
               Spec(1, 10, {Cpu(50), PodsMetric("absent", 1)}),
               Snap(4, Cpus({0.1, 0.1, 0.1, 0.1})),
               {},
               4,
               "FailedGetMetrics"});
  // Default metric (none given): cpu at 80%. 4 pods at 40% -> 2.
  c.push_back({"DefaultCpu80", Spec(1, 10, {}), Snap(4, Cpus({0.4, 0.4, 0.4, 0.4})), {}, 2});
  // Legacy scale-up cap without behavior: max(2 * 1, 4) = 4 even if 10 are wanted.
  c.push_back(
      {"LegacyScaleUpLimit", Spec(1, 20, {Cpu(10)}), Snap(1, Cpus({1.0})), {}, 4, "ScaleUpLimit"});
  // maxReplicas clamps below the legacy cap.
  c.push_back({"TooManyReplicas",
               Spec(1, 3, {Cpu(10)}),
               Snap(2, Cpus({1.0, 1.0})),
               {},
               3,
               "TooManyReplicas"});
  // minReplicas clamps a scale-down.
  c.push_back({"TooFewReplicas",
               Spec(3, 10, {Cpu(50)}),
               Snap(4, Cpus({0.05, 0.05, 0.05, 0.05})),
               {},
               3,
               "TooFewReplicas"});
  // Current above max / below min: go to the bound without looking at metrics.
  c.push_back({"CurrentAboveMax", Spec(1, 5, {Cpu(50)}), Snap(8, {}), {}, 5, "TooManyReplicas"});
  c.push_back({"CurrentBelowMin", Spec(4, 10, {Cpu(50)}), Snap(2, {}), {}, 4, "TooFewReplicas"});
  // Target scaled to zero by hand: autoscaling disabled.
  c.push_back(
      {"ScaledToZeroDisabled", Spec(1, 10, {Cpu(50)}), Snap(0, {}), {}, 0, "ScalingDisabled"});
  // Legacy downscale stabilisation (5 min): the highest recent recommendation (5) holds.
  c.push_back({"LegacyDownscaleStabilized", Spec(1, 10, {Cpu(50)}),
               Snap(5, Cpus({0.1, 0.3, 0.5, 0.25, 0.25})), Recs({{200, 5}, {100, 4}}), 5,
               "ScaleDownStabilized"});
  // ...but a recommendation older than the window no longer counts.
  c.push_back({"LegacyStabilizationExpired", Spec(1, 10, {Cpu(50)}),
               Snap(5, Cpus({0.1, 0.3, 0.5, 0.25, 0.25})), Recs({{301, 5}, {100, 4}}), 4});
  // --- behavior (docs "Configurable scaling behavior") ---
  // Docs example: scaleDown Pods 4/60s and Percent 10/60s, Max: from 80, 10% (8) is the larger
  // change -> 72 at most this period.
  {
    Snapshot s = Snap(80, {});
    for (int i = 0; i < 80; ++i) s.pods.push_back(Pod("p" + std::to_string(i), 0.05));
    HpaSpec spec =
        WithBehavior(Spec(1, 100, {Cpu(50)}),
                     DownPolicies({{PolicyType::kPods, 4, 60}, {PolicyType::kPercent, 10, 60}},
                                  SelectPolicy::kMax, 0));
    c.push_back({"BehaviorScaleDownMaxPolicy", spec, s, {}, 72, "ScaleDownLimit"});
    spec.behavior->scale_down->select_policy = SelectPolicy::kMin;  // the smaller change: 4
    c.push_back({"BehaviorScaleDownMinPolicy", spec, s, {}, 76, "ScaleDownLimit"});
    spec.behavior->scale_down->select_policy = SelectPolicy::kDisabled;
    c.push_back({"BehaviorScaleDownDisabled", spec, s, {}, 80});
    // Removals earlier in the period count: 8 removed 30 s ago -> period started at 88 -> 79.
    spec.behavior->scale_down->select_policy = SelectPolicy::kMax;
    History h;
    h.scale_events.push_back({kNow - absl::Seconds(30), -8});
    Snapshot s2 = s;
    c.push_back({"BehaviorPeriodCountsEarlierEvents", spec, s2, h, 79, "ScaleDownLimit"});
  }
  // Default behavior scale-up: max(4 pods, 100%) per 15 s -> from 2, at most 6. Events in the
  // last 15 s count against it: 4 added 10 s ago -> the period started at 2 -> limit 6 = current:
  // no further scale-up until the event leaves the period.
  {
    HpaSpec spec = WithBehavior(Spec(1, 50, {Cpu(10)}), Behavior{});
    c.push_back({"BehaviorDefaultScaleUp", spec, Snap(2, Cpus({1.0, 1.0})), {}, 6, "ScaleUpLimit"});
    History h;
    h.scale_events.push_back({kNow - absl::Seconds(10), +4});
    c.push_back({"BehaviorScaleUpEventsInPeriod", spec, Snap(6, Cpus({1, 1, 1, 1, 1, 1})), h, 6});
  }
  // Default behavior scale-down window is 300 s: an earlier higher recommendation holds.
  c.push_back({"BehaviorDefaultDownWindow", WithBehavior(Spec(1, 10, {Cpu(50)}), Behavior{}),
               Snap(5, Cpus({0.1, 0.3, 0.5, 0.25, 0.25})), Recs({{250, 5}}), 5,
               "ScaleDownStabilized"});
  // Scale-up stabilisation window: the lowest recent recommendation bounds the scale-up.
  {
    Behavior b;
    ScalingRules up;
    up.stabilization_window_seconds = 120;
    b.scale_up = up;
    c.push_back({"BehaviorScaleUpStabilized", WithBehavior(Spec(1, 10, {Cpu(30)}), b),
                 Snap(3, Cpus({0.3, 0.5, 0.7})), Recs({{60, 4}}), 4, "ScaleUpStabilized"});
  }
  // Per-direction tolerance (KEP-4951): 105% of target scales up with a 1% scale-up tolerance.
  {
    Behavior b;
    ScalingRules up;
    up.tolerance = 0.01;
    b.scale_up = up;
    std::vector<PodState> pods = Cpus({0.525, 0.525, 0.525, 0.525});
    c.push_back(
        {"PerDirectionToleranceUp", WithBehavior(Spec(1, 10, {Cpu(50)}), b), Snap(4, pods), {}, 5});
    c.push_back({"DefaultToleranceHolds", Spec(1, 10, {Cpu(50)}), Snap(4, pods), {}, 4});
  }
  // Missing metrics with the usage ratio exactly on target (1.0): a Resource metric fills missing
  // pods only when the ratio is below or above 1, so the ratio stays 1.0 and the count is kept;
  // a Pods metric takes its `else` branch (missing pods as 0), which lowers the ratio to 2/3 and
  // scales down to ceil(2/3 * 3) = 2 (replica_calculator.go, GetResourceReplicas and
  // calcPlainMetricReplicas).
  c.push_back({"MissingMetricsResourceExactlyOnTarget",
               Spec(1, 10, {Cpu(50)}),
               Snap(4, {Pod("a", 0.5), Pod("b", 0.5), Pod("c", -1), Pod("d", -1)}),
               {},
               4});
  // Extra pods during a rollout's surge: 4 pods behind a scale of 3, one without a sample. At 20%
  // of a 50% target the missing pod is taken at 100% on this scale-down, the ratio becomes
  // (3 x 20 + 100) / 4 / 50 = 0.8, and ceil(0.8 x 4 pods) = 4 would scale *up* while usage is below
  // target: the count is kept (replica_calculator.go, the last check of GetResourceReplicas).
  c.push_back({"SurgePodsWithMissingMetricsKeepTheCount",
               Spec(1, 10, {Cpu(50)}),
               Snap(3, {Pod("a", 0.2), Pod("b", 0.2), Pod("c", 0.2), Pod("d", -1)}),
               {},
               3});
  {
    Snapshot s = Snap(3, {WithMetric(Pod("a", -1), "qps", 10), WithMetric(Pod("b", -1), "qps", 10),
                          Pod("c", -1)});
    c.push_back(
        {"MissingMetricsPodsExactlyOnTarget", Spec(1, 10, {PodsMetric("qps", 10)}), s, {}, 2});
  }
  // --- int64 / int32 edges ("usage overflow caps at MaxInt64"; replica counts saturate at
  // MaxInt32 and never turn negative). 2^52 is exact in a double and 2^52 * 1000 milli is just
  // below 2^62, so three such series overflow an int64 sum and two do not.
  {
    const double big = std::ldexp(1.0, 52);
    Snapshot s = Snap(3, Cpus({0.1, 0.1, 0.1}));
    s.external_metrics["queue"] = {big, big, big};
    // Value target: the sum saturates, ceil(ratio * 3 ready) saturates at MaxInt32, maxReplicas
    // 50 clamps it (the legacy cap max(2 * 3, 4) = 6 applies first without behavior).
    c.push_back({"ExternalSumOverflowValue",
                 Spec(1, 50, {ExternalMetric("queue", TargetType::kValue, 1)}),
                 s,
                 {},
                 6,
                 "ScaleUpLimit"});
    c.push_back({"ExternalSumOverflowAverageValue",
                 Spec(1, 50, {ExternalMetric("queue", TargetType::kAverageValue, 1)}),
                 s,
                 {},
                 6,
                 "ScaleUpLimit"});
    HpaSpec fast =
        WithBehavior(Spec(1, 50, {ExternalMetric("queue", TargetType::kValue, 1)}), Behavior{});
    fast.behavior->scale_up = ScalingRules{};
    fast.behavior->scale_up->policies = {{PolicyType::kPods, 1000, 15}};
    c.push_back({"ExternalSumOverflowToMax", fast, s, {}, 50, "TooManyReplicas"});
  }
  // Resource utilization: usage far above any request (sum and sum x 100 overflow int64).
  {
    const double big = std::ldexp(1.0, 52);
    c.push_back({"CpuUsageOverflow",
                 Spec(1, 10, {Cpu(50)}),
                 Snap(3, Cpus({big, big, big})),
                 {},
                 6,
                 "ScaleUpLimit"});
    Snapshot s =
        Snap(3, {WithMetric(Pod("a", -1), "qps", big), WithMetric(Pod("b", -1), "qps", big),
                 WithMetric(Pod("c", -1), "qps", big)});
    c.push_back(
        {"PodsMetricSumOverflow", Spec(1, 10, {PodsMetric("qps", 1)}), s, {}, 6, "ScaleUpLimit"});
  }
  // A current count near MaxInt32: the legacy cap 2 x current and the default behavior's
  // 100% / 4 pods limits saturate at MaxInt32 instead of wrapping negative.
  {
    const int near_max = INT_MAX / 2 + 10;
    Snapshot s = Snap(near_max, Cpus({0.1}));
    s.external_metrics["queue"] = {std::ldexp(1.0, 52)};
    HpaSpec legacy = Spec(1, INT_MAX, {ExternalMetric("queue", TargetType::kAverageValue, 1e-3)});
    c.push_back({"LegacyCapSaturates", legacy, s, {}, INT_MAX, "DesiredWithinRange"});
    c.push_back({"BehaviorLimitSaturates",
                 WithBehavior(legacy, Behavior{}),
                 s,
                 {},
                 INT_MAX,
                 "DesiredWithinRange"});
  }
  return c;
}

class HpaTest : public testing::TestWithParam<Case> {};

TEST_P(HpaTest, Recommends) {
  const Case& tc = GetParam();
  const Decision d = RecommendHpa(tc.snapshot, tc.spec, tc.history, kNow);
  EXPECT_EQ(d.replicas, tc.want) << d.reason << ": " << d.message;
  if (!tc.want_reason.empty()) {
    EXPECT_EQ(d.reason, tc.want_reason) << d.message;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, HpaTest, testing::ValuesIn(Cases()),
                         [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(ToMilliTest, RoundsUpLikeQuantity) {
  EXPECT_EQ(ToMilli(0.1), 100);
  EXPECT_EQ(ToMilli(0.0001), 1);
  EXPECT_EQ(ToMilli(2.15), 2150);
}

TEST(ToMilliTest, SaturatesAtTheInt64Edges) {
  EXPECT_EQ(ToMilli(1e300), INT64_MAX);
  EXPECT_EQ(ToMilli(-1e300), INT64_MIN);
  EXPECT_EQ(ToMilli(std::ldexp(1.0, 52)), (int64_t{1} << 52) * 1000);  // exact: no overflow
}

// The calculator's own proposal, before the controller's clamps: the sum of the series caps at
// MaxInt64 (upstream "usage overflow caps at MaxInt64"), the proposal at MaxInt32.
TEST(HpaCalculatorTest, ExternalUsageCapsAtMaxInt64AndReplicasAtMaxInt32) {
  const double big = std::ldexp(1.0, 52);
  for (const TargetType type : {TargetType::kValue, TargetType::kAverageValue}) {
    Snapshot s = Snap(3, Cpus({0.1, 0.1, 0.1}));
    s.external_metrics["queue"] = {big, big, big};
    hpa_internal::CalcContext ctx;
    ctx.snapshot = &s;
    ctx.current_replicas = 3;
    ctx.now = kNow;
    const MetricProposal p =
        hpa_internal::ComputeReplicasForMetric(ctx, ExternalMetric("queue", type, 1));
    EXPECT_EQ(p.replicas, INT32_MAX) << p.note;
    if (type == TargetType::kValue) {
      EXPECT_EQ(p.current, static_cast<double>(INT64_MAX) / 1000);
    }
    // Two series stay below 2^63: summed exactly.
    s.external_metrics["queue"] = {big, big};
    const MetricProposal two =
        hpa_internal::ComputeReplicasForMetric(ctx, ExternalMetric("queue", type, 1));
    EXPECT_EQ(two.replicas, INT32_MAX);
    if (type == TargetType::kValue) {
      EXPECT_EQ(two.current, 2 * big);
    }
  }
}

TEST(HpaCalculatorTest, NegativeUsageNeverWrapsToAHugeCount) {
  Snapshot s = Snap(3, Cpus({0.1, 0.1, 0.1}));
  s.external_metrics["queue"] = {-std::ldexp(1.0, 52), -std::ldexp(1.0, 52), -std::ldexp(1.0, 52)};
  hpa_internal::CalcContext ctx;
  ctx.snapshot = &s;
  ctx.current_replicas = 3;
  ctx.now = kNow;
  const MetricProposal p =
      hpa_internal::ComputeReplicasForMetric(ctx, ExternalMetric("queue", TargetType::kValue, 1));
  EXPECT_GE(p.replicas, 0);
  EXPECT_LE(p.replicas, 3);
}

}  // namespace
}  // namespace galley::autoscale
