#include "sim/replay.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <variant>

#include "common/status_macros.h"
#include "schedule/framework.h"
#include "schedule/policy.h"

namespace galley::sim {

using schedule::Node;
using schedule::Pod;

std::vector<Pod> ArrivalSequence(const std::vector<Pod>& pods, int64_t gpu_capacity_milli,
                                 double target_ratio, uint64_t seed) {
  schedule::Rng rng(seed);
  std::vector<Pod> seq = pods;
  for (size_t i = seq.size(); i > 1; --i) std::swap(seq[i - 1], seq[rng.Below(i)]);
  const double target = target_ratio * static_cast<double>(gpu_capacity_milli);
  int64_t total = 0;
  for (const Pod& p : seq) total += p.TotalGpuMilli();
  while (static_cast<double>(total) > target && !seq.empty()) {
    const size_t i = rng.Below(seq.size());
    total -= seq[i].TotalGpuMilli();
    seq.erase(seq.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (pods.empty()) return seq;
  for (int64_t k = 0;; ++k) {
    const Pod& p = pods[rng.Below(pods.size())];
    if (static_cast<double>(total + p.TotalGpuMilli()) > target) break;
    total += p.TotalGpuMilli();
    seq.push_back(p);
    seq.back().name += "-sampled-" + std::to_string(k);
  }
  return seq;
}

absl::StatusOr<SeedRun> ReplayOnce(const std::vector<Node>& nodes, const std::vector<Pod>& pods,
                                   const ReplayConfig& config, uint64_t seed) {
  int64_t capacity = 0;
  for (const Node& n : nodes)
    capacity += static_cast<int64_t>(n.gpus.size()) * schedule::kMilliPerGpu;
  if (capacity == 0) return absl::InvalidArgumentError("the cluster has no GPUs");
  auto workload = std::make_shared<const schedule::WorkloadDistribution>(
      schedule::WorkloadDistribution::FromPods(pods));
  ASSIGN_OR_RETURN(
      auto scheduler,
      schedule::NewPolicyScheduler(config.policy, workload, config.percentage_of_nodes_to_score));

  const std::vector<Pod> seq = ArrivalSequence(pods, capacity, config.target_ratio, seed);
  schedule::ClusterSnapshot snapshot{nodes};
  schedule::Rng rng(seed ^ 0x5eedf00dULL);
  // Node order is shuffled per seed (the simulator prefixes node names with a random permutation),
  // which is what "first best node" tie-breaking sees.
  for (size_t i = snapshot.nodes.size(); i > 1; --i) {
    std::swap(snapshot.nodes[i - 1], snapshot.nodes[rng.Below(i)]);
  }
  // Fresh generations, so plugins may cache per node until Bind changes one.
  for (Node& node : snapshot.nodes) node.generation = schedule::NextNodeGeneration();
  const int kMaxPct = 130;
  std::vector<double> sum(kMaxPct + 1, 0), count(kMaxPct + 1, 0);
  SeedRun run;
  run.seed = seed;
  int64_t arrived = 0, used = 0;
  for (const Pod& pod : seq) {
    arrived += pod.TotalGpuMilli();
    ++run.decisions;
    const schedule::ScheduleResult result = scheduler->Schedule(pod, snapshot, rng);
    if (const auto* placement = std::get_if<schedule::Placement>(&result)) {
      Node& node = snapshot.nodes[static_cast<size_t>(placement->node_index)];
      for (int i : placement->gpu_indices) used += pod.ShareOn(node.gpus[static_cast<size_t>(i)]);
      schedule::Bind(pod, placement->gpu_indices, node);
      ++run.placed;
    } else {
      ++run.failed;
    }
    const double arrived_pct = 100.0 * static_cast<double>(arrived) / static_cast<double>(capacity);
    const long p = std::lround(arrived_pct);
    if (p >= 0 && p <= kMaxPct) {
      sum[static_cast<size_t>(p)] +=
          100.0 * static_cast<double>(used) / static_cast<double>(capacity);
      count[static_cast<size_t>(p)] += 1;
    }
  }
  run.curve_allocated_pct.resize(kMaxPct + 1);
  for (int p = 0; p <= kMaxPct; ++p) {
    run.curve_allocated_pct[static_cast<size_t>(p)] =
        count[static_cast<size_t>(p)] > 0
            ? sum[static_cast<size_t>(p)] / count[static_cast<size_t>(p)]
            : std::numeric_limits<double>::quiet_NaN();
  }
  // Like the simulator's analysis: the arrivals at 100%, else the nearest percent around it.
  double at100 = run.curve_allocated_pct[100];
  for (int d = 1; std::isnan(at100) && d <= 30; ++d) {
    if (!std::isnan(run.curve_allocated_pct[100 + d]))
      at100 = run.curve_allocated_pct[100 + d];
    else if (!std::isnan(run.curve_allocated_pct[100 - d]))
      at100 = run.curve_allocated_pct[100 - d];
  }
  if (std::isnan(at100)) {
    return absl::FailedPreconditionError(
        "arrivals never came near 100% of GPU capacity (too few GPU pods for this cluster?)");
  }
  run.unallocated_pct_at_100 = 100.0 - at100;
  return run;
}

double Median(std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace galley::sim
