// The autoscaling simulator: replays arrivals through a discrete-event model of model-server
// replicas and drives the same recommender (autoscale/recommender.h) the controller runs, fed the
// same way (autoscale/controller_core.h), with one policy per run. docs/autoscale-sim.md describes
// the model, its numbers and where they come from.
//
// The model, per replica: a bounded queue (an arrival to a full queue is dropped, as `galley
// serve` answers queue_full); dynamic batching with no queue delay (an idle replica takes up to
// max_batch_size queued requests at once; a batch of n takes batch_base_s + batch_per_item_s * n);
// a cold start (a replica added at t is routable from t + model_load_time_s); removal drains (the
// replica leaves the balancer at once and stops existing when its queue is empty). The router is
// the gateway's balancer (gateway/balancer.h: power of two choices on outstanding requests among
// ready replicas); with no ready replica an arrival is dropped.
//
// With SimOptions::queue the requests are messages on a durable queue instead (docs/queues.md):
// an arrival waits in the broker (unbounded, never dropped) until a ready replica with room
// fetches it; a replica holds at most `prefetch` messages (queued + running) and fetches again as
// batches finish; a replica being removed stops fetching and finishes what it holds. The policies
// see the broker as the real consumers report it: lag (not yet delivered) and pending (delivered,
// not acknowledged).
//
// Pure and deterministic: no clock, no I/O, no threads; the same inputs and seed give the same
// result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "autoscale/recommender.h"
#include "sim/arrivals.h"

namespace galley::sim {

// One replica's service. Defaults: the built-in `sentiment` model served by `galley serve` over
// HTTP with its shipped batching config, fitted in docs/autoscale-sim.md ("Service time").
struct ServiceModel {
  double batch_base_s = 180e-6;      // a: fixed cost of one batch
  double batch_per_item_s = 164e-6;  // b: cost of each request in it
  int max_batch_size = 64;           // models/sentiment/config.json max_batch_size
  int max_queue_size = 1024;         // dynamic_batching.max_queue_size (Galley's default)

  double BatchSeconds(int n) const { return batch_base_s + batch_per_item_s * n; }
  // Requests per second one replica serves when every batch is full.
  double MaxThroughput() const { return max_batch_size / BatchSeconds(max_batch_size); }
};

struct ClusterModel {
  ServiceModel service;
  // Cold start: process start to the first passing readiness probe (docs/autoscale-sim.md).
  double model_load_time_s = 10;
  // The pod's CPU request; a busy replica uses exactly this much (one core: `galley serve` with
  // its one model worker keeps one core at 96-101% under load, bench/RESULTS.md).
  double cpu_request_cores = 1;
  int initial_replicas = 1;  // ready at time 0 (started long before); may be 0
};

// The policies that ask the recommender; the static fleet and the oracle (baselines.h) do not.
// kGalley sizes by request rate when the replica's capacity is given (MakePolicy), else by
// concurrency; kGalleyConcurrency is Galley's policy sized by concurrency, as it was before rate
// sizing (kept for comparison).
enum class PolicyKind {
  kHpaCpu,
  kHpaQueue,
  kKpa,
  kKeda,
  kKedaPending,
  kGalley,
  kGalleyConcurrency,
  kSchedule
};

// KEDA's own loop in front of the HPA it creates (keda.sh/docs "Scaling Deployments": the
// ScaledObject's pollingInterval, cooldownPeriod, activation threshold and minReplicaCount): at
// each poll the scaler is active when its metric is above the activation threshold; an inactive
// target at 0 stays there, an active one at 0 goes to 1 (the HPA, minReplicas 1, takes it from
// there); a target with no activity for cooldownPeriod goes to minReplicaCount.
struct KedaSettings {
  double polling_s = 30;      // pollingInterval default
  double cooldown_s = 300;    // cooldownPeriod default
  double activation = 0;      // activationThreshold default: active when the metric is above 0
  int min_replica_count = 0;  // minReplicaCount default
};

struct PolicySetup {
  PolicyKind kind = PolicyKind::kGalley;
  std::string name;          // short name: hpa-cpu, hpa-queue, kpa, keda, galley, static, oracle
  autoscale::Spec spec;      // what Recommend() gets
  double sync_period_s = 2;  // how often the controller ticks
  std::string settings;      // one line: the settings, for reports
  // kSchedule: the replica count to set at each tick (index = tick number; the last entry holds
  // after the end). Recommend() is not called.
  std::vector<int> schedule;
  std::optional<KedaSettings> keda;  // kKeda: the activation layer
};

// The policy with its documented defaults (see docs/autoscale-sim.md and MakePolicy's comments),
// bounded by [1, max_replicas]. `queue`: for a fleet consuming a queue, where Galley's policy
// scales to zero (messages wait safely in the broker, as `galley up --scale-to-zero`).
// `capacity_rps`: one replica's full-batch throughput (ServiceModel::MaxThroughput); when
// positive, kGalley sizes by request rate against it.
PolicySetup MakePolicy(PolicyKind kind, int max_replicas, bool queue = false,
                       double capacity_rps = 0);

// "all" or a comma-separated list of hpa-cpu, hpa-queue, kpa, keda, keda-pending, galley,
// galley-concurrency. "all" with `queue`: hpa-cpu, keda, keda-pending, galley (the policies that
// read a queue, and CPU); without: hpa-cpu, hpa-queue, kpa, keda, galley-concurrency, galley.
// InvalidArgument naming an unknown name.
absl::StatusOr<std::vector<PolicyKind>> ParsePolicies(std::string_view list, bool queue = false);

struct SimOptions {
  double slo_s = 0.025;  // a request is within the SLO when answered within this (dropped: not)
  uint64_t seed = 1;     // the router's random choices
  // Step scenario: the instant of the step; the result then carries restore_s.
  std::optional<double> step_at_s;
  double restore_window_s = 10;  // sliding window, by arrival second, for restore_s
  double restore_share = 0.99;   // the share within SLO a window must reach
  // Optional per-tick log, one line per controller tick (time, desired, ready, demand, reason).
  bool keep_timeline = false;
  // Requests arrive through a queue (see the top of this file). Ticks then go on after the last
  // arrival until every message is answered or drain_limit_s has passed, and replica-seconds
  // count until then.
  bool queue = false;
  int prefetch = 64;            // messages a replica holds at most (--queue-max-inflight)
  double drain_limit_s = 3600;  // queue: how long after the last arrival the run may go on
};

struct TickRecord {
  double time_s = 0;
  int desired = 0;
  int ready = 0;
  int outstanding = 0;  // queued + running, all replicas
  int64_t missed = 0;   // requests so far answered after the SLO or dropped
  std::string reason;
  std::string message;  // the decision's sentence
};

struct SimResult {
  std::string policy;
  int64_t arrived = 0;
  int64_t completed = 0;
  int64_t dropped = 0;  // queue full or no ready replica
  int64_t within_slo = 0;
  double p50_s = 0;  // over completed requests (histogram, 10 us resolution)
  double p99_s = 0;
  double max_latency_s = 0;
  // Replicas in existence (starting, ready or draining) integrated over [0, last arrival].
  double replica_seconds = 0;
  double horizon_s = 0;  // the last arrival
  int scale_events = 0;  // times the controller changed the desired replica count
  int max_replicas = 0;  // most replicas in existence at once
  // Step scenario: seconds from the step to the end of the last window of restore_window_s
  // (by arrival second) whose share within SLO is below restore_share; 0 when none; nullopt when
  // the last such window reaches the end of the run (never restored).
  std::optional<double> restore_s;
  std::vector<TickRecord> timeline;
  // Queue: how long messages waited in the broker before a replica fetched them (10 us
  // resolution), the most waiting at once, and messages never fetched (stranded: the fleet never
  // woke for them within drain_limit_s; counted in `dropped`).
  double age_p50_s = 0;
  double age_p99_s = 0;
  double age_max_s = 0;
  int64_t max_lag = 0;
  int64_t stranded = 0;

  double WithinSloShare() const {
    return arrived == 0 ? 1.0 : static_cast<double>(within_slo) / static_cast<double>(arrived);
  }
};

// Runs one policy over `arrivals` (consumed) and returns what happened. Ticks start at time 0 and
// repeat every sync period until the last arrival; requests still queued then are served.
SimResult Simulate(ArrivalStream& arrivals, const ClusterModel& cluster, const PolicySetup& policy,
                   const SimOptions& options);

}  // namespace galley::sim
