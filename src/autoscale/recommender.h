// The replica recommender: Galley's pure autoscaling core.
//
// Recommend(snapshot, spec, history, now) returns how many replicas to run and why. It reads no
// clock, does no I/O, takes no locks: everything it needs comes in as values, and everything the
// caller must remember for the next tick (the recommendation to record, the panic state) goes
// out in the Decision. Two modes sit behind this one function, chosen by the spec:
//   - HpaSpec: what a Kubernetes autoscaling/v2 HorizontalPodAutoscaler would do (hpa.h);
//   - InferencePolicy: Galley's concurrency-driven, KPA-like policy for model servers
//     (inference_policy.h).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"

namespace galley::autoscale {

// ---------------------------------------------------------------------------------------------
// Snapshot: what the world looks like at `now`.

enum class PodPhase { kPending, kRunning, kSucceeded, kFailed, kUnknown };

// One sample of one metric for one pod, as the metrics API reports it.
struct MetricSample {
  double value = 0;  // base units (cores for cpu, bytes for memory, plain number otherwise)
  // When the sample was taken and over which window (metrics.k8s.io PodMetrics timestamp and
  // window). Only the CPU readiness rule reads them; absent timestamp means `now`.
  std::optional<absl::Time> timestamp;
  absl::Duration window = absl::Seconds(15);  // metrics-server's default --metric-resolution
};

struct PodState {
  std::string name;
  PodPhase phase = PodPhase::kRunning;
  bool deleted = false;  // has a deletionTimestamp
  // The Ready condition: absent when the pod has no Ready condition yet.
  std::optional<bool> ready;
  // When the Ready condition last changed (lastTransitionTime).
  std::optional<absl::Time> ready_transition_time;
  std::optional<absl::Time> start_time;         // status.startTime
  std::map<std::string, double> requests;       // resource name -> pod's total request
  std::map<std::string, MetricSample> metrics;  // metric or resource name -> sample
};

// One aggregate observation for the inference policy: totals over all replicas at one instant.
struct Observation {
  absl::Time time;
  double inflight = 0;  // sum of galley_model_inflight_requests
  double queued = 0;    // sum of galley_queue_length (replicas' and the gateway's)
  std::optional<double> latency_seconds;      // e.g. p99 request latency over the last scrape
  std::optional<double> gpu_memory_fraction;  // mean used/total GPU memory of ready replicas
  // Requests per second the replicas answered, refusals for a full queue included, since the
  // previous observation (galley_requests_total); absent when no replica reported it twice.
  std::optional<double> request_rate;
};

struct Snapshot {
  int current_replicas = 0;  // the scale target's spec.replicas
  std::vector<PodState> pods;
  // Object metrics: "<kind>/<name>/<metric>" -> value (as the custom metrics API returns it).
  std::map<std::string, double> object_metrics;
  // External metrics: metric name -> every series' value (the HPA sums them).
  std::map<std::string, std::vector<double>> external_metrics;
  // Inference policy only: aggregate observations, oldest first, at least the stable window.
  std::vector<Observation> observations;
};

// ---------------------------------------------------------------------------------------------
// HPA spec (autoscaling/v2 field names in the comments).

enum class MetricSourceType { kResource, kContainerResource, kPods, kObject, kExternal };
enum class TargetType { kUtilization, kAverageValue, kValue };

struct MetricSpec {
  MetricSourceType type = MetricSourceType::kResource;
  std::string name;    // resource.name / pods.metric.name / object.metric.name / external...
  std::string object;  // object metrics: "<kind>/<name>" of describedObject
  TargetType target_type = TargetType::kUtilization;
  double average_utilization = 0;  // percent, for kUtilization
  double value = 0;                // base units, for kAverageValue / kValue
};

enum class PolicyType { kPods, kPercent };
enum class SelectPolicy { kMax, kMin, kDisabled };

struct ScalingPolicy {
  PolicyType type = PolicyType::kPods;
  int value = 0;
  int period_seconds = 15;
};

// behavior.scaleUp / behavior.scaleDown (HPAScalingRules).
struct ScalingRules {
  std::optional<int> stabilization_window_seconds;
  std::optional<SelectPolicy> select_policy;
  std::vector<ScalingPolicy> policies;  // empty: the Kubernetes default policies
  std::optional<double> tolerance;      // KEP-4951 per-direction tolerance
};

struct Behavior {
  std::optional<ScalingRules> scale_up;
  std::optional<ScalingRules> scale_down;
};

struct HpaSpec {
  int min_replicas = 1;  // defaulted to 1 by the API server
  int max_replicas = 1;
  std::vector<MetricSpec> metrics;  // empty: cpu at 80% utilization (API defaulting)
  std::optional<Behavior> behavior;
  // kube-controller-manager flags, with their defaults.
  double tolerance = 0.1;  // --horizontal-pod-autoscaler-tolerance
  absl::Duration cpu_initialization_period = absl::Minutes(5);
  absl::Duration initial_readiness_delay = absl::Seconds(30);
  absl::Duration downscale_stabilization = absl::Minutes(5);  // legacy path, no behavior
};

// ---------------------------------------------------------------------------------------------
// Galley's inference policy. Defaults and their sources are documented in inference_policy.h.

struct InferencePolicy {
  int min_replicas = 1;  // the warm pool
  int max_replicas = 10;
  double target_concurrency = 2;  // in-flight + queued requests per replica
  std::optional<double> target_latency_seconds;
  std::optional<double> target_gpu_memory_fraction;
  absl::Duration stable_window = absl::Seconds(60);
  double panic_window_percentage = 10;
  double panic_threshold_percentage = 200;
  double max_scale_up_rate = 1000;
  double max_scale_down_rate = 2;
  absl::Duration scale_down_delay = absl::Minutes(5);
  // Burst-recurrence hold (inference_policy.h): while bursts keep recurring, at most
  // burst_gap_max apart, the highest recommendation since the first of them is held, for at most
  // burst_memory. A zero burst_gap_max turns it off.
  absl::Duration burst_gap_max = absl::Minutes(20);
  absl::Duration burst_memory = absl::Hours(1);
  absl::Duration model_load_time = absl::Seconds(10);
  bool scale_to_zero = false;
  absl::Duration scale_to_zero_grace = absl::Seconds(30);
  double tolerance = 0.1;  // for the latency and GPU-memory proposals
  // Sizing by request rate (inference_policy.h): what one replica serves per second at full
  // batches, from the model's batch curve. When set and the observations carry request rates,
  // demand is the rate and a replica's share is replica_capacity_rps x target_utilization;
  // target_concurrency is then only reported.
  std::optional<double> replica_capacity_rps;
  double target_utilization = 0.8;
  // While bursts recur (rate sizing only): never below the smallest fleet that, at one replica's
  // share (capacity x target_utilization), would have served this share of the requests
  // remembered over burst_memory.
  double burst_cover_share = 0.995;
};

struct Spec {
  std::variant<HpaSpec, InferencePolicy> policy;
};

// ---------------------------------------------------------------------------------------------
// History: what the caller remembered from earlier ticks.

struct TimestampedRecommendation {
  absl::Time time;
  int replicas = 0;
};

struct TimedRate {
  absl::Time time;
  double rate = 0;  // requests per second
};

struct ScaleEvent {
  absl::Time time;
  int change = 0;  // replicas added (> 0) or removed (< 0)
};

struct History {
  std::vector<TimestampedRecommendation> recommendations;
  std::vector<ScaleEvent> scale_events;
  std::optional<absl::Time> panic_since;  // inference policy: when panic mode began
  std::optional<absl::Time> last_active;  // inference policy: last time demand was non-zero
  std::vector<absl::Time> burst_onsets;   // inference policy: when bursts began, oldest first
  std::vector<TimedRate> rates;           // inference policy: request rates, oldest first
};

// ---------------------------------------------------------------------------------------------
// Decision.

struct MetricProposal {
  std::string metric;  // e.g. "resource/cpu", "pods/queue_length", "concurrency"
  int replicas = 0;    // what this metric alone asks for (-1: the metric was invalid)
  double current = 0;  // current value (utilization percent or average/total value)
  double target = 0;
  std::string note;  // why, or why invalid
};

struct Decision {
  int replicas = 0;     // what to set the scale target to
  std::string reason;   // a short machine-readable condition (e.g. "ScaleDownStabilized")
  std::string message;  // one human sentence
  // The unstabilised recommendation, to append to History.recommendations (absent when this
  // tick produced none, e.g. the replica count was outside [min, max] or no metric was valid).
  std::optional<int> recommendation;
  std::vector<MetricProposal> proposals;
  bool panic = false;                          // inference policy
  std::optional<absl::Time> panic_since;       // inference policy: carry into History
  std::optional<absl::Time> last_active;       // inference policy: carry into History
  std::vector<absl::Time> burst_onsets;        // inference policy: carry into History
  absl::Duration hold = absl::ZeroDuration();  // inference policy: the scale-down delay applied
  std::optional<double> rate;  // inference policy: this tick's request rate, for History.rates
};

// Computes the decision. Pure and deterministic; never fails: when no metric is usable the
// decision keeps the current replica count and says why in `reason`.
Decision Recommend(const Snapshot& snapshot, const Spec& spec, const History& history,
                   absl::Time now);

}  // namespace galley::autoscale
