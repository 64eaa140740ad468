// Trace replay with the FGD paper's protocol (Weng et al., USENIX ATC 2023): shuffle the pods with
// a seed, then sample pods with replacement until the arrived GPU request reaches `target_ratio`
// (1.3) of the cluster's GPU capacity; place pods one by one (no departures; CPU and memory must
// fit too). Metric: the share of GPU capacity left unallocated when arrivals reach 100% of it.
// Pure: the caller supplies the nodes, pods and seed; the result is a value.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "schedule/cluster.h"
#include "schedule/fragmentation.h"

namespace galley::sim {

struct ReplayConfig {
  std::string policy = "galley";
  double target_ratio = 1.3;
  // kube-scheduler's percentageOfNodesToScore (see schedule::ProfileConfig): 100 = every node
  // (the paper's protocol), 0 = kube's adaptive default.
  int percentage_of_nodes_to_score = 100;
};

// One seed's run. curve_allocated_pct[p] is the mean allocated share of GPU capacity (percent) over
// the arrivals whose arrived request rounds to p percent (p = 0..130; NaN where none did).
struct SeedRun {
  uint64_t seed = 0;
  double unallocated_pct_at_100 = 0;
  std::vector<double> curve_allocated_pct;
  int64_t decisions = 0;  // pods offered to the scheduler
  int64_t placed = 0;
  int64_t failed = 0;
};

// The arrival sequence: pods shuffled, then samples with replacement appended until the next one
// would take the arrived GPU request beyond target_ratio of capacity (or, if the trace alone
// exceeds it, random pods removed until it does not).
std::vector<schedule::Pod> ArrivalSequence(const std::vector<schedule::Pod>& pods,
                                           int64_t gpu_capacity_milli, double target_ratio,
                                           uint64_t seed);

// Runs one seed. The workload distribution (for fgd and galley) is derived from `pods`.
absl::StatusOr<SeedRun> ReplayOnce(const std::vector<schedule::Node>& nodes,
                                   const std::vector<schedule::Pod>& pods,
                                   const ReplayConfig& config, uint64_t seed);

double Median(std::vector<double> values);

}  // namespace galley::sim
