// The scheduling framework, in the manner of kube-scheduler: a profile of filter plugins, weighted
// score plugins and one GPU selector; Schedule() runs them over a snapshot and returns either a
// placement (node + GPUs) or, when no node fits, the reason each node was rejected. Pure: no I/O,
// clock, threads or locks; randomness (ties, the Random policy) comes from the caller's Rng.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "schedule/cluster.h"

namespace galley::schedule {

// Seeded, explicit randomness. Deterministic for a given seed on a given standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  // Uniform in [0, n); n > 0.
  uint64_t Below(uint64_t n) { return engine_() % n; }
  double Unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 engine_;
};

// Per-decision scratch data that plugins compute once (PreFilter/PreScore) and read per node.
class StateData {
 public:
  virtual ~StateData() = default;
};

class CycleState {
 public:
  void Write(std::string key, std::unique_ptr<StateData> data) {
    data_[std::move(key)] = std::move(data);
  }
  const StateData* Read(std::string_view key) const {
    auto it = data_.find(key);
    return it == data_.end() ? nullptr : it->second.get();
  }

 private:
  std::map<std::string, std::unique_ptr<StateData>, std::less<>> data_;
};

// A plugin implements one or more extension points. Plugins are immutable once built, except
// where a plugin documents an internal memo (still single-threaded; one Scheduler per thread).
class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual std::string_view Name() const = 0;

  // Filter extension point.
  virtual bool IsFilter() const { return false; }
  virtual void PreFilter(const Pod& pod, const ClusterSnapshot& snapshot, CycleState& state) const {
  }
  // nullopt: the node passes. Otherwise the reason, worded as kube-scheduler words it
  // ("Insufficient cpu", "node(s) had untolerated taint {k: v}", ...).
  virtual std::optional<std::string> Filter(const Pod& pod, const Node& node,
                                            const CycleState& state) const {
    return std::nullopt;
  }
  // The fast path the scheduler uses: whether the node passes, without wording a reason (no
  // allocation). Must agree with Filter(); the reasons are only worded when no node fits.
  virtual bool Passes(const Pod& pod, const Node& node, const CycleState& state) const {
    return !Filter(pod, node, state).has_value();
  }
  // false when the filter cannot reject any node for this pod (kube-scheduler's PreFilter Skip,
  // e.g. a pod without node affinity); the scheduler then leaves it out of this decision.
  virtual bool AppliesTo(const Pod& pod) const { return true; }

  // Score extension point: higher is better. Kube-style plugins return 0..100.
  virtual bool IsScore() const { return false; }
  virtual void PreScore(const Pod& pod, const ClusterSnapshot& snapshot,
                        std::span<const int> feasible, CycleState& state, Rng& rng) const {}
  virtual double Score(const Pod& pod, const Node& node, const CycleState& state) const {
    return 0;
  }
  // Scores every feasible node into out[k] (same order as `feasible`). The default calls Score();
  // plugins that cache per node (by index and Node::generation) override it.
  virtual void ScoreNodes(const Pod& pod, const ClusterSnapshot& snapshot,
                          std::span<const int> feasible, const CycleState& state,
                          std::span<double> out) const {
    for (size_t k = 0; k < feasible.size(); ++k) {
      out[k] = Score(pod, snapshot.nodes[static_cast<size_t>(feasible[k])], state);
    }
  }
  // Optional NormalizeScore over the feasible nodes' scores (in the order of `feasible`).
  virtual void NormalizeScores(std::span<double> scores) const {}

  // GPU selection (the profile's selector picks which GPUs of the chosen node the pod gets).
  virtual bool IsGpuSelector() const { return false; }
  // Precondition: the node passed the filters. Returns gpu_count indices.
  virtual std::vector<int> SelectGpus(const Pod& pod, const Node& node, Rng& rng) const {
    return {};
  }
};

// What a factory may use: the workload's GPU-request distribution (for fragmentation-aware
// plugins) comes from the caller, since it describes the workload rather than the cluster.
struct WorkloadDistribution;
// What the plugins of one Scheduler share across its decisions (one thread, as the Scheduler).
struct SchedulerShared {
  // Galley's class weights for the cluster's current state: its score plugin sets them, its GPU
  // selector reads them, so that both judge a placement by the same measure.
  std::shared_ptr<const WorkloadDistribution> weighted_workload;
};
struct PluginContext {
  std::shared_ptr<const WorkloadDistribution> workload;
  std::shared_ptr<SchedulerShared> shared;  // Scheduler::Create gives each scheduler its own
};

using PluginFactory = std::function<absl::StatusOr<std::unique_ptr<Plugin>>(const PluginContext&)>;

// Maps plugin names to factories; rejects duplicates (kube's frameworkruntime.Registry).
class Registry {
 public:
  absl::Status Register(std::string name, PluginFactory factory);
  absl::StatusOr<std::unique_ptr<Plugin>> Build(std::string_view name,
                                                const PluginContext& ctx) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, PluginFactory, std::less<>> factories_;
};

// Which plugins a profile enables, by name.
struct ProfileConfig {
  std::vector<std::string> filters;
  std::vector<std::pair<std::string, double>> scores;  // name, weight
  std::string gpu_selector;
  // Ties among the best nodes: uniformly at random (kube-scheduler's selectHost), or the first in
  // snapshot order (the FGD paper's simulator, whose replay shuffles node order once per seed).
  bool random_ties = true;
  // kube-scheduler's percentageOfNodesToScore: stop filtering once this share of the nodes has
  // been found feasible, starting each decision where the last one stopped. 100 (the default)
  // checks every node; 0 is kube's adaptive default (50 - nodes/125 percent, at least 5%); either
  // way at least 100 feasible nodes are looked for (see NumFeasibleNodesToFind).
  int percentage_of_nodes_to_score = 100;
};

// kube-scheduler's numFeasibleNodesToFind: how many feasible nodes a decision looks for among
// `num_nodes` with the given percentage (0 = adaptive, >= 100 = all).
int NumFeasibleNodesToFind(int percentage, int num_nodes);

// The typed outcome when no node fits.
struct Unschedulable {
  int total_nodes = 0;
  // How many nodes each plugin rejected for each reason, as kube-scheduler's Diagnosis counts
  // them for its message (no per-node records: a pod that fits nowhere on 5,000 nodes would
  // otherwise copy 5,000 names and reasons), in order of first appearance.
  struct ReasonCount {
    std::string plugin;
    std::string reason;
    int nodes = 0;
  };
  std::vector<ReasonCount> reasons;
  int RejectedNodes() const;
  // "0/N nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {a: b}."
  std::string Message() const;
};

using ScheduleResult = std::variant<Placement, Unschedulable>;

class Scheduler {
 public:
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const Registry& registry,
                                                           const ProfileConfig& config,
                                                           const PluginContext& ctx);

  // Chooses a node and GPUs for `pod`. Pure apart from drawing from `rng` (ties are broken as the
  // profile says) and, below 100 percent of nodes to score, the rotating start index.
  // NOTE: reuses scratch buffers and plugin memos between calls: one Scheduler per thread.
  ScheduleResult Schedule(const Pod& pod, const ClusterSnapshot& snapshot, Rng& rng) const;

 private:
  Scheduler() = default;
  Unschedulable Diagnose(const Pod& pod, const ClusterSnapshot& snapshot,
                         const CycleState& state) const;

  std::vector<std::unique_ptr<Plugin>> filters_;
  std::vector<std::pair<std::unique_ptr<Plugin>, double>> scores_;
  std::unique_ptr<Plugin> selector_;
  bool random_ties_ = true;
  int percentage_of_nodes_to_score_ = 100;
  // Scratch (kube's nextStartNodeIndex and per-cycle buffers), reused to avoid allocations.
  mutable size_t next_start_node_index_ = 0;
  mutable std::vector<const Plugin*> active_filters_;
  mutable std::vector<int> feasible_;
  mutable std::vector<double> total_, scores_scratch_;
};

}  // namespace galley::schedule
