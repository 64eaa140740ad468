#include "sim/autoscale_policies.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>

#include "autoscale/inference_policy.h"
#include "common/strings.h"
#include "sim/autoscale_sim.h"

namespace galley::sim {
namespace {

using autoscale::HpaSpec;
using autoscale::InferencePolicy;
using autoscale::MetricSourceType;
using autoscale::MetricSpec;
using autoscale::TargetType;

}  // namespace

PolicySetup MakePolicy(PolicyKind kind, int max_replicas, bool queue, double capacity_rps) {
  PolicySetup p;
  p.kind = kind;
  switch (kind) {
    case PolicyKind::kHpaCpu: {
      // autoscaling/v2 with the API's default metric (cpu at 80% utilization, defaults.go) and
      // kube-controller-manager's defaults (15 s sync, tolerance 0.1, 5 min downscale
      // stabilisation, default behavior policies).
      HpaSpec h;
      h.min_replicas = 1;
      h.max_replicas = max_replicas;
      h.metrics = {
          MetricSpec{MetricSourceType::kResource, "cpu", "", TargetType::kUtilization, 80, 0}};
      p.name = "hpa-cpu";
      p.spec.policy = h;
      p.sync_period_s = 15;
      p.settings = "Resource cpu Utilization 80%, request 1 core; sync 15 s; HPA defaults";
      break;
    }
    case PolicyKind::kHpaQueue: {
      // A Pods metric from the custom metrics API (e.g. prometheus-adapter) with an AverageValue
      // target. No upstream default exists; 10 queued requests per pod is fixed a priori in
      // docs/autoscale-sim.md ("Policies"), not fitted to the trace.
      HpaSpec h;
      h.min_replicas = 1;
      h.max_replicas = max_replicas;
      h.metrics = {
          MetricSpec{MetricSourceType::kPods, kQueueMetric, "", TargetType::kAverageValue, 0, 10}};
      p.name = "hpa-queue";
      p.spec.policy = h;
      p.sync_period_s = 15;
      p.settings = "Pods galley_queue_length AverageValue 10; sync 15 s; HPA defaults";
      break;
    }
    case PolicyKind::kKpa: {
      // Knative's KPA as shipped (config-autoscaler defaults): container-concurrency-target-
      // default 100 at target utilization 70% = 70 per replica, 60 s stable / 6 s panic windows,
      // panic at 200%, scale-down-delay 0; capacity = ready pods only (model_load_time 0 makes
      // the recommender count no starting replica); min-scale 1 to compare with the others.
      InferencePolicy k;
      k.min_replicas = 1;
      k.max_replicas = max_replicas;
      k.target_concurrency = 70;
      k.scale_down_delay = absl::ZeroDuration();
      k.burst_gap_max = absl::ZeroDuration();  // Galley's own rule, not Knative's
      k.model_load_time = absl::ZeroDuration();
      p.name = "kpa";
      p.spec.policy = k;
      p.sync_period_s = 2;
      p.settings =
          "concurrency target 70 (100 x 70%), windows 60 s / 6 s, panic 200%, "
          "no scale-down delay, ready pods only; tick 2 s";
      break;
    }
    case PolicyKind::kKeda: {
      // A KEDA ScaledObject on a backlog metric (e.g. the Prometheus scaler on the requests
      // waiting fleet-wide): KEDA creates an HPA with an External AverageValue target, so the
      // HPA sets ceil(backlog / target) (replica_calculator.go GetExternalPerPodMetricReplicas)
      // with the HPA's defaults, sync 15 s; KEDA's own loop (KedaSettings defaults: polling 30 s,
      // cooldown 300 s, activation 0, minReplicaCount 0) scales to and from zero. The target,
      // 2 per replica, is Galley's concurrency target (inference_policy.h: Little's law at 70%
      // utilisation), fixed before any run; KEDA has no default for it.
      HpaSpec h;
      h.min_replicas = 1;
      h.max_replicas = max_replicas;
      h.metrics = {MetricSpec{MetricSourceType::kExternal, kBacklogMetric, "",
                              TargetType::kAverageValue, 0, 2}};
      p.name = "keda";
      p.spec.policy = h;
      p.sync_period_s = 15;
      p.keda = KedaSettings{};
      p.settings = StrCat("External galley_backlog (", queue ? "lag + pending" : "waiting",
                          ") AverageValue 2; pollingInterval 30 s, cooldownPeriod 300 s, "
                          "activation 0, minReplicaCount 0; HPA sync 15 s, HPA defaults");
      break;
    }
    case PolicyKind::kKedaPending: {
      // The same ScaledObject on the pending count alone (KEDA's Redis Streams scaler's default
      // metric, pendingEntriesCount, target 5 there; 2 here as for keda, so the two differ only
      // in what they count).
      p = MakePolicy(PolicyKind::kKeda, max_replicas, queue, capacity_rps);
      p.kind = PolicyKind::kKedaPending;
      p.name = "keda-pending";
      p.settings =
          "External pending entries (delivered, not acknowledged) AverageValue 2; "
          "pollingInterval 30 s, cooldownPeriod 300 s, activation 0, minReplicaCount 0; "
          "HPA sync 15 s, HPA defaults";
      break;
    }
    case PolicyKind::kSchedule:
      p.name = "schedule";  // baselines.h fills in the schedule
      p.spec.policy = InferencePolicy{};
      break;
    case PolicyKind::kGalley:
    case PolicyKind::kGalleyConcurrency: {
      InferencePolicy g;  // every default (autoscale/inference_policy.h)
      g.max_replicas = max_replicas;
      // NOTE: on a queue the replicas' request counters do not see the messages still in the
      // broker, so Galley's policy sizes by concurrency there (the lag is waiting demand).
      const bool by_rate = kind == PolicyKind::kGalley && capacity_rps > 0 && !queue;
      if (by_rate) g.replica_capacity_rps = capacity_rps;
      if (queue) {  // as `galley up --scale-to-zero`: messages wait in the broker meanwhile
        g.min_replicas = 0;
        g.scale_to_zero = true;
      }
      p.name = kind == PolicyKind::kGalley ? "galley" : "galley-concurrency";
      p.spec.policy = g;
      p.sync_period_s = 2;
      const std::string prefix =
          queue ? StrCat("scale to zero (grace ", absl::ToDoubleSeconds(g.scale_to_zero_grace),
                         " s), queue lag as waiting demand; ")
                : "";
      const std::string sizing =
          by_rate ? StrCat("request rate at ", g.target_utilization * 100, "% of ", capacity_rps,
                           " req/s per replica (full batches)")
                  : StrCat("concurrency target ", g.target_concurrency);
      const std::string hold =
          by_rate
              ? StrCat("while bursts recur at most ", absl::ToDoubleSeconds(g.burst_gap_max),
                       " s apart, never below the fleet that would have served ",
                       g.burst_cover_share * 100, "% of the last ",
                       absl::ToDoubleSeconds(g.burst_memory), " s")
              : StrCat("held while bursts recur at most ", absl::ToDoubleSeconds(g.burst_gap_max),
                       " s apart, up to ", absl::ToDoubleSeconds(g.burst_memory), " s");
      p.settings = StrCat(prefix, "InferencePolicy defaults: ", sizing,
                          ", windows 60 s / 6 s, panic 200%, scale-down delay ",
                          absl::ToDoubleSeconds(g.scale_down_delay), " s (", hold, "), model load ",
                          absl::ToDoubleSeconds(g.model_load_time), " s; tick 2 s");
      break;
    }
  }
  return p;
}

absl::StatusOr<std::vector<PolicyKind>> ParsePolicies(std::string_view list, bool queue) {
  static constexpr std::pair<std::string_view, PolicyKind> kNames[] = {
      {"hpa-cpu", PolicyKind::kHpaCpu},
      {"hpa-queue", PolicyKind::kHpaQueue},
      {"kpa", PolicyKind::kKpa},
      {"keda", PolicyKind::kKeda},
      {"keda-pending", PolicyKind::kKedaPending},
      {"galley", PolicyKind::kGalley},
      {"galley-concurrency", PolicyKind::kGalleyConcurrency}};
  if (list == "all" && queue) {
    return std::vector<PolicyKind>{PolicyKind::kHpaCpu, PolicyKind::kKeda, PolicyKind::kKedaPending,
                                   PolicyKind::kGalley};
  }
  if (list == "all") {
    return std::vector<PolicyKind>{
        PolicyKind::kHpaCpu, PolicyKind::kHpaQueue,          PolicyKind::kKpa,
        PolicyKind::kKeda,   PolicyKind::kGalleyConcurrency, PolicyKind::kGalley};
  }
  std::vector<PolicyKind> out;
  for (std::string_view name : Split(list, ',')) {
    auto it = std::find_if(std::begin(kNames), std::end(kNames),
                           [&](const auto& e) { return e.first == name; });
    if (it == std::end(kNames)) {
      return absl::InvalidArgumentError(StrCat("unknown policy '", name,
                                               "' (want all, or a comma-separated list of hpa-cpu, "
                                               "hpa-queue, kpa, keda, keda-pending, galley, "
                                               "galley-concurrency)"));
    }
    out.push_back(it->second);
  }
  return out;
}

}  // namespace galley::sim
