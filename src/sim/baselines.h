// Baselines for the autoscaling simulator (autoscale_sim.h): what an autoscaler has to beat and
// what it could at best reach, run through the same replica model.
//   - static: a fixed fleet of N replicas, warm from the start (no autoscaler at all); the
//     cheapest N that keeps the SLO target is found by search.
//   - oracle: a clairvoyant schedule. It knows every arrival and the model load time; at each
//     tick it keeps the replicas needed from now until one tick plus one load time ahead, so each
//     replica is started exactly one load time before the second that needs it and stopped at
//     the first tick from which it is not needed again within a load time. "Needed" means: the
//     second's arrivals divided by a per-replica rate u x full-batch throughput; u is searched.
//     docs/autoscale-sim.md ("The oracle") says why it is a reference and not a proven lower
//     bound, and gives the bound that is proven (WorkBoundReplicaSeconds).
// Pure and deterministic: each run replays a fresh stream from the factory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "sim/arrivals.h"
#include "sim/autoscale_sim.h"

namespace galley::sim {

// Makes the scenario's arrivals afresh (same seed, same stream) for each run.
using ArrivalFactory = std::function<std::unique_ptr<ArrivalStream>()>;

struct BaselineRun {
  PolicySetup setup;
  SimResult result;
  bool reached = false;    // the run keeps the SLO target
  int replicas = 0;        // static: N
  double utilization = 0;  // oracle: u
  int runs = 0;            // simulations the search took
};

// A fixed fleet of n replicas, warm at time 0, never changed.
BaselineRun RunStatic(int n, const ArrivalFactory& arrivals, const ClusterModel& cluster,
                      const SimOptions& options, double slo_target);

// The smallest n in [1, max_replicas] whose static fleet keeps `slo_target` of the requests
// within the SLO (bisection: the share is taken to grow with n); the largest when none does.
BaselineRun SearchStatic(const ArrivalFactory& arrivals, const ClusterModel& cluster,
                         const SimOptions& options, double slo_target, int max_replicas);

// Arrivals per whole second, [0, last arrival].
std::vector<int64_t> CountPerSecond(ArrivalStream& arrivals);

// The oracle's replica count at each tick k (time k * tick_s): the most replicas any second
// overlapping [k * tick_s, (k + 1) * tick_s + load_s) needs, a second with c arrivals needing
// ceil(c / per_replica_rate). Index 0 is also the warm fleet at time 0.
std::vector<int> OracleSchedule(const std::vector<int64_t>& per_second, double per_replica_rate,
                                double load_s, double tick_s);

// The oracle at utilization u (per-replica rate u x the model's full-batch throughput), ticking
// every tick_s.
BaselineRun RunOracle(double utilization, const std::vector<int64_t>& per_second,
                      const ArrivalFactory& arrivals, const ClusterModel& cluster,
                      const SimOptions& options, double slo_target, double tick_s);

// The cheapest oracle that keeps the SLO target: the highest u of 1.0, 0.95, ..., 0.4 that does
// (tried from 1.0 down); the lowest when none does.
BaselineRun SearchOracle(const ArrivalFactory& arrivals, const ClusterModel& cluster,
                         const SimOptions& options, double slo_target, double tick_s);

// A proven lower bound on the replica-seconds of any policy that answers `served` requests: each
// answered request occupies its replica for at least (batch_base + max_batch * per_item) /
// max_batch seconds (a full batch is the cheapest per request), batches on one replica do not
// overlap, and a replica costs at least its busy time.
double WorkBoundReplicaSeconds(double served, const ServiceModel& service);

}  // namespace galley::sim
