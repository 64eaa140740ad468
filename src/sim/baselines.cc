#include "sim/baselines.h"

#include <algorithm>
#include <cmath>

#include "common/strings.h"

namespace galley::sim {
namespace {

constexpr double kUtilizations[] = {1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5, 0.4};

BaselineRun Run(PolicySetup setup, const ArrivalFactory& arrivals, ClusterModel cluster,
                const SimOptions& options, double slo_target) {
  cluster.initial_replicas = setup.schedule.empty() ? 0 : setup.schedule.front();
  std::unique_ptr<ArrivalStream> stream = arrivals();
  BaselineRun r;
  r.result = Simulate(*stream, cluster, setup, options);
  r.reached = r.result.WithinSloShare() >= slo_target;
  r.setup = std::move(setup);
  r.runs = 1;
  return r;
}

// Bisection over an index range [lo, hi] of candidates ordered from the cheapest: the first index
// whose run reaches the target, assuming every later one does too. `run(i)` simulates one.
template <typename RunAt>
BaselineRun Bisect(int lo, int hi, RunAt run) {
  int runs = 0;
  BaselineRun best = run(hi);
  ++runs;
  if (best.reached) {
    int a = lo, b = hi;  // b reaches
    while (a < b) {
      const int mid = a + (b - a) / 2;
      BaselineRun m = run(mid);
      ++runs;
      if (m.reached) {
        b = mid;
        best = std::move(m);
      } else {
        a = mid + 1;
      }
    }
  }
  best.runs = runs;
  return best;
}

}  // namespace

BaselineRun RunStatic(int n, const ArrivalFactory& arrivals, const ClusterModel& cluster,
                      const SimOptions& options, double slo_target) {
  PolicySetup p = MakePolicy(PolicyKind::kSchedule, n);
  p.name = StrCat("static-", n);
  p.schedule = {n};
  p.sync_period_s = 60;  // nothing to decide; ticks only log
  p.settings = StrCat(n, " replicas, warm from the start, never changed");
  BaselineRun r = Run(std::move(p), arrivals, cluster, options, slo_target);
  r.replicas = n;
  return r;
}

BaselineRun SearchStatic(const ArrivalFactory& arrivals, const ClusterModel& cluster,
                         const SimOptions& options, double slo_target, int max_replicas) {
  return Bisect(1, std::max(max_replicas, 1),
                [&](int n) { return RunStatic(n, arrivals, cluster, options, slo_target); });
}

std::vector<int64_t> CountPerSecond(ArrivalStream& arrivals) {
  std::vector<int64_t> counts;
  while (const std::optional<double> t = arrivals.Next()) {
    const auto s = static_cast<size_t>(std::max(0.0, std::floor(*t)));
    if (s >= counts.size()) counts.resize(s + 1, 0);
    ++counts[s];
  }
  return counts;
}

std::vector<int> OracleSchedule(const std::vector<int64_t>& per_second, double per_replica_rate,
                                double load_s, double tick_s) {
  std::vector<int> need(per_second.size());
  for (size_t s = 0; s < per_second.size(); ++s) {
    need[s] = static_cast<int>(std::ceil(static_cast<double>(per_second[s]) / per_replica_rate));
  }
  std::vector<int> schedule;
  const auto seconds = static_cast<double>(per_second.size());
  for (double t = 0; t < seconds; t += tick_s) {
    // Seconds [s, s + 1) that overlap [t, t + tick_s + load_s).
    const auto first = static_cast<size_t>(std::floor(t));
    const auto end = static_cast<size_t>(std::min(seconds, std::ceil(t + tick_s + load_s)));
    int most = 0;
    for (size_t s = first; s < end; ++s) most = std::max(most, need[s]);
    schedule.push_back(most);
  }
  if (schedule.empty()) schedule.push_back(0);
  return schedule;
}

BaselineRun RunOracle(double utilization, const std::vector<int64_t>& per_second,
                      const ArrivalFactory& arrivals, const ClusterModel& cluster,
                      const SimOptions& options, double slo_target, double tick_s) {
  PolicySetup p = MakePolicy(PolicyKind::kSchedule, 0);
  p.name = "oracle";
  p.schedule = OracleSchedule(per_second, utilization * cluster.service.MaxThroughput(),
                              cluster.model_load_time_s, tick_s);
  p.sync_period_s = tick_s;
  p.settings = StrCat("clairvoyant: each second's arrivals at ", utilization,
                      " of full-batch throughput per replica, started one load time (",
                      cluster.model_load_time_s, " s) ahead, tick ", tick_s, " s");
  BaselineRun r = Run(std::move(p), arrivals, cluster, options, slo_target);
  r.utilization = utilization;
  return r;
}

BaselineRun SearchOracle(const ArrivalFactory& arrivals, const ClusterModel& cluster,
                         const SimOptions& options, double slo_target, double tick_s) {
  std::unique_ptr<ArrivalStream> stream = arrivals();
  const std::vector<int64_t> per_second = CountPerSecond(*stream);
  // From the cheapest up: the first that reaches the target (usually the first or second).
  BaselineRun best;
  int runs = 0;
  for (const double u : kUtilizations) {
    best = RunOracle(u, per_second, arrivals, cluster, options, slo_target, tick_s);
    ++runs;
    if (best.reached) break;
  }
  best.runs = runs;
  return best;
}

double WorkBoundReplicaSeconds(double served, const ServiceModel& service) {
  return served / service.MaxThroughput();
}

}  // namespace galley::sim
