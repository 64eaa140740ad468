#include "schedule/scores.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "schedule/filters.h"
#include "schedule/kube_match.h"

namespace galley::schedule {

void DefaultNormalizeScore(double max_priority, bool reverse, std::span<double> scores) {
  double max_count = 0;
  for (double s : scores) max_count = std::max(max_count, s);
  if (max_count == 0) {
    if (reverse) std::fill(scores.begin(), scores.end(), max_priority);
    return;
  }
  for (double& s : scores) {
    double v = std::floor(max_priority * s / max_count);
    s = reverse ? max_priority - v : v;
  }
}

std::vector<int> BestFitGpus(const Pod& pod, const Node& node) {
  std::vector<int> out;
  if (pod.SharesGpu()) {
    int best = -1;
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      if (!GpuFits(pod, node.gpus[i])) continue;
      if (best < 0 || node.gpus[i].FreeMilli() < node.gpus[static_cast<size_t>(best)].FreeMilli()) {
        best = static_cast<int>(i);
      }
    }
    if (best >= 0) out.push_back(best);
    return out;
  }
  for (size_t i = 0; i < node.gpus.size() && static_cast<int>(out.size()) < pod.gpu_count; ++i) {
    if (GpuFits(pod, node.gpus[i])) out.push_back(static_cast<int>(i));
  }
  return out;
}

namespace {

// kube: (capacity - requested) * 100 / capacity, or requested * 100 / capacity; 0 beyond capacity.
int64_t ResourceScore(int64_t requested, int64_t capacity, bool most) {
  if (capacity == 0 || requested > capacity) return 0;
  return most ? requested * 100 / capacity : (capacity - requested) * 100 / capacity;
}

class AllocatedScore final : public Plugin {
 public:
  explicit AllocatedScore(bool most) : most_(most) {}
  std::string_view Name() const override { return most_ ? kMostAllocated : kLeastAllocated; }
  bool IsScore() const override { return true; }
  double Score(const Pod& pod, const Node& node, const CycleState&) const override {
    const int64_t cpu = ResourceScore(node.cpu_used_milli + pod.cpu_milli, node.cpu_milli, most_);
    const int64_t mem =
        ResourceScore(node.memory_used_mib + pod.memory_mib, node.memory_mib, most_);
    return static_cast<double>((cpu + mem) / 2);
  }

 private:
  bool most_;
};

class NodeAffinityScore final : public Plugin {
 public:
  std::string_view Name() const override { return kNodeAffinityScore; }
  bool IsScore() const override { return true; }
  double Score(const Pod& pod, const Node& node, const CycleState&) const override {
    int64_t sum = 0;
    for (const PreferredSchedulingTerm& t : pod.preferred_node_affinity) {
      if (NodeSelectorTermMatches(t.preference, node)) sum += t.weight;
    }
    return static_cast<double>(sum);
  }
  void NormalizeScores(std::span<double> scores) const override {
    DefaultNormalizeScore(100, false, scores);
  }
};

class TaintTolerationScore final : public Plugin {
 public:
  std::string_view Name() const override { return kTaintTolerationScore; }
  bool IsScore() const override { return true; }
  double Score(const Pod& pod, const Node& node, const CycleState&) const override {
    // kube counts only tolerations whose effect is empty or PreferNoSchedule.
    std::vector<Toleration> soft;
    for (const Toleration& t : pod.tolerations) {
      if (!t.effect.has_value() || *t.effect == TaintEffect::kPreferNoSchedule) soft.push_back(t);
    }
    int count = 0;
    for (const Taint& taint : node.taints) {
      if (taint.effect == TaintEffect::kPreferNoSchedule && !TaintToleratedBy(taint, soft)) ++count;
    }
    return count;
  }
  void NormalizeScores(std::span<double> scores) const override {
    DefaultNormalizeScore(100, true, scores);
  }
};

class PodAntiAffinityScore final : public Plugin {
 public:
  std::string_view Name() const override { return kPodAntiAffinityScore; }
  bool IsScore() const override { return true; }
  double Score(const Pod& pod, const Node& node, const CycleState&) const override {
    // NOTE: scans the pods in the node's own domain only when the topology key is the hostname;
    // for wider domains it counts matching pods on this node. Exact for hostname topology.
    double sum = 0;
    for (const WeightedPodAffinityTerm& t : pod.preferred_anti_affinity) {
      if (!node.LabelValue(t.term.topology_key).has_value()) continue;
      for (const PlacedPod& p : node.pods) {
        if (LabelSelectorMatches(t.term.selector, p.labels)) sum -= t.weight;
      }
    }
    return sum;
  }
  void NormalizeScores(std::span<double> scores) const override {
    if (scores.empty()) return;
    const auto [lo, hi] = std::minmax_element(scores.begin(), scores.end());
    const double low = *lo, range = *hi - *lo;
    for (double& s : scores) s = range == 0 ? 100 : std::floor(100 * (s - low) / range);
  }
};

// Galley's own GPU packing: share pods to the tightest partly used GPU; whole-GPU pods to nodes
// with the fewest fully free GPUs left afterwards. Scaled to 0..100.
class GpuPackingScore final : public Plugin {
 public:
  std::string_view Name() const override { return kGpuPackingScore; }
  bool IsScore() const override { return true; }
  double Score(const Pod& pod, const Node& node, const CycleState&) const override {
    if (!pod.WantsGpu() || node.gpus.empty()) return 0;
    const std::vector<int> gpus = BestFitGpus(pod, node);
    int64_t free_after = node.FreeGpuMilli();
    for (int i : gpus) free_after -= pod.ShareOn(node.gpus[static_cast<size_t>(i)]);
    const int64_t capacity = static_cast<int64_t>(node.gpus.size()) * kMilliPerGpu;
    return 100.0 * static_cast<double>(capacity - free_after) / static_cast<double>(capacity);
  }
};

class BestFitGpu final : public Plugin {
 public:
  std::string_view Name() const override { return kBestFitGpu; }
  bool IsGpuSelector() const override { return true; }
  std::vector<int> SelectGpus(const Pod& pod, const Node& node, Rng&) const override {
    return BestFitGpus(pod, node);
  }
};

class RandomGpu final : public Plugin {
 public:
  std::string_view Name() const override { return kRandomGpu; }
  bool IsGpuSelector() const override { return true; }
  std::vector<int> SelectGpus(const Pod& pod, const Node& node, Rng& rng) const override {
    if (!pod.SharesGpu()) return BestFitGpus(pod, node);
    int chosen = -1;
    uint64_t seen = 0;
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      if (GpuFits(pod, node.gpus[i]) && rng.Below(++seen) == 0) chosen = static_cast<int>(i);
    }
    return chosen < 0 ? std::vector<int>{} : std::vector<int>{chosen};
  }
};

}  // namespace

std::unique_ptr<Plugin> NewLeastAllocated() { return std::make_unique<AllocatedScore>(false); }
std::unique_ptr<Plugin> NewMostAllocated() { return std::make_unique<AllocatedScore>(true); }
std::unique_ptr<Plugin> NewNodeAffinityScore() { return std::make_unique<NodeAffinityScore>(); }
std::unique_ptr<Plugin> NewTaintTolerationScore() {
  return std::make_unique<TaintTolerationScore>();
}
std::unique_ptr<Plugin> NewPodAntiAffinityScore() {
  return std::make_unique<PodAntiAffinityScore>();
}
std::unique_ptr<Plugin> NewGpuPackingScore() { return std::make_unique<GpuPackingScore>(); }
std::unique_ptr<Plugin> NewBestFitGpu() { return std::make_unique<BestFitGpu>(); }
std::unique_ptr<Plugin> NewRandomGpu() { return std::make_unique<RandomGpu>(); }

}  // namespace galley::schedule
