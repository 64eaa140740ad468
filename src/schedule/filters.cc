#include "schedule/filters.h"

#include <set>

#include "common/strings.h"
#include "schedule/kube_match.h"

namespace galley::schedule {

bool GpuFits(const Pod& pod, const Gpu& gpu) {
  if (!pod.AcceptsModel(gpu.model)) return false;
  if (gpu.FreeMilli() < pod.ShareOn(gpu)) return false;
  return gpu.FreeMemoryMib() >= pod.gpu_memory_mib;
}

int CountFittingGpus(const Pod& pod, const Node& node) {
  int n = 0;
  for (const Gpu& g : node.gpus) n += GpuFits(pod, g) ? 1 : 0;
  return n;
}

namespace {

class ResourcesFit final : public Plugin {
 public:
  std::string_view Name() const override { return kResourcesFit; }
  bool IsFilter() const override { return true; }
  bool Passes(const Pod& pod, const Node& node, const CycleState&) const override {
    return pod.cpu_milli <= node.FreeCpuMilli() && pod.memory_mib <= node.FreeMemoryMib();
  }
  std::optional<std::string> Filter(const Pod& pod, const Node& node,
                                    const CycleState&) const override {
    if (pod.cpu_milli > node.FreeCpuMilli()) return "Insufficient cpu";
    if (pod.memory_mib > node.FreeMemoryMib()) return "Insufficient memory";
    return std::nullopt;
  }
};

class GpuFit final : public Plugin {
 public:
  std::string_view Name() const override { return kGpuFit; }
  bool IsFilter() const override { return true; }
  bool AppliesTo(const Pod& pod) const override { return pod.WantsGpu(); }
  bool Passes(const Pod& pod, const Node& node, const CycleState&) const override {
    if (pod.gpu_memory_mib > 0 || !pod.gpu_models.empty()) {
      return CountFittingGpus(pod, node) >= pod.gpu_count;
    }
    // The common case, without per-GPU model and memory checks, stopping once enough fit.
    if (static_cast<int>(node.gpus.size()) < pod.gpu_count) return false;
    const int32_t share = pod.gpu_milli > 0 ? pod.gpu_milli : kMilliPerGpu;
    int fitting = 0;
    for (const Gpu& g : node.gpus) {
      if (g.FreeMilli() >= share && ++fitting == pod.gpu_count) return true;
    }
    return false;
  }
  std::optional<std::string> Filter(const Pod& pod, const Node& node,
                                    const CycleState&) const override {
    if (!pod.WantsGpu()) return std::nullopt;
    if (CountFittingGpus(pod, node) >= pod.gpu_count) return std::nullopt;
    if (pod.SharesGpu() || pod.gpu_memory_mib > 0) return "Insufficient GPU share or GPU memory";
    return "Insufficient GPUs";
  }
};

class GpuModel final : public Plugin {
 public:
  std::string_view Name() const override { return kGpuModel; }
  bool IsFilter() const override { return true; }
  bool AppliesTo(const Pod& pod) const override { return pod.WantsGpu(); }
  bool Passes(const Pod& pod, const Node& node, const CycleState&) const override {
    if (pod.gpu_models.empty()) return static_cast<int>(node.gpus.size()) >= pod.gpu_count;
    int accepted = 0;
    for (const Gpu& g : node.gpus) accepted += pod.AcceptsModel(g.model) ? 1 : 0;
    return accepted >= pod.gpu_count;
  }
  std::optional<std::string> Filter(const Pod& pod, const Node& node,
                                    const CycleState&) const override {
    if (!pod.WantsGpu()) return std::nullopt;
    int accepted = 0;
    for (const Gpu& g : node.gpus) accepted += pod.AcceptsModel(g.model) ? 1 : 0;
    if (accepted >= pod.gpu_count) return std::nullopt;
    return "node(s) didn't have the requested GPU model";
  }
};

class TaintTolerationFilter final : public Plugin {
 public:
  std::string_view Name() const override { return kTaintToleration; }
  bool IsFilter() const override { return true; }
  bool Passes(const Pod& pod, const Node& node, const CycleState&) const override {
    return node.taints.empty() || !FirstUntoleratedHardTaint(node, pod.tolerations).has_value();
  }
  std::optional<std::string> Filter(const Pod& pod, const Node& node,
                                    const CycleState&) const override {
    if (auto taint = FirstUntoleratedHardTaint(node, pod.tolerations)) {
      return StrCat("node(s) had untolerated taint {", taint->key, ": ", taint->value, "}");
    }
    return std::nullopt;
  }
};

class NodeAffinityFilter final : public Plugin {
 public:
  std::string_view Name() const override { return kNodeAffinity; }
  bool IsFilter() const override { return true; }
  bool AppliesTo(const Pod& pod) const override {
    return !pod.node_selector.empty() || !pod.required_node_affinity.empty();
  }
  bool Passes(const Pod& pod, const Node& node, const CycleState&) const override {
    return NodeMatchesPodRequirements(pod, node);
  }
  std::optional<std::string> Filter(const Pod& pod, const Node& node,
                                    const CycleState&) const override {
    if (NodeMatchesPodRequirements(pod, node)) return std::nullopt;
    return "node(s) didn't match Pod's node affinity/selector";
  }
};

// Per required term: the topology values (of its key) whose nodes already run a matching pod.
struct AntiAffinityDomains final : StateData {
  std::vector<std::set<std::string, std::less<>>> taken;
};

class PodAntiAffinityFilter final : public Plugin {
 public:
  std::string_view Name() const override { return kPodAntiAffinity; }
  bool IsFilter() const override { return true; }
  bool AppliesTo(const Pod& pod) const override { return !pod.required_anti_affinity.empty(); }
  void PreFilter(const Pod& pod, const ClusterSnapshot& snapshot,
                 CycleState& state) const override {
    if (pod.required_anti_affinity.empty()) return;
    auto domains = std::make_unique<AntiAffinityDomains>();
    for (const PodAffinityTerm& term : pod.required_anti_affinity) {
      auto& taken = domains->taken.emplace_back();
      for (const Node& node : snapshot.nodes) {
        const auto value = node.LabelValue(term.topology_key);
        if (!value.has_value()) continue;
        for (const PlacedPod& p : node.pods) {
          if (LabelSelectorMatches(term.selector, p.labels)) {
            taken.emplace(*value);
            break;
          }
        }
      }
    }
    state.Write(std::string(kPodAntiAffinity), std::move(domains));
  }
  std::optional<std::string> Filter(const Pod& pod, const Node& node,
                                    const CycleState& state) const override {
    const auto* domains = static_cast<const AntiAffinityDomains*>(state.Read(kPodAntiAffinity));
    if (domains == nullptr) return std::nullopt;
    for (size_t i = 0; i < pod.required_anti_affinity.size(); ++i) {
      const auto value = node.LabelValue(pod.required_anti_affinity[i].topology_key);
      // A node without the topology key is in no domain, so the term cannot be violated there.
      if (value.has_value() && domains->taken[i].count(*value) != 0) {
        return "node(s) didn't match pod anti-affinity rules";
      }
    }
    return std::nullopt;
  }
};

}  // namespace

std::unique_ptr<Plugin> NewResourcesFit() { return std::make_unique<ResourcesFit>(); }
std::unique_ptr<Plugin> NewGpuFit() { return std::make_unique<GpuFit>(); }
std::unique_ptr<Plugin> NewGpuModel() { return std::make_unique<GpuModel>(); }
std::unique_ptr<Plugin> NewTaintToleration() { return std::make_unique<TaintTolerationFilter>(); }
std::unique_ptr<Plugin> NewNodeAffinity() { return std::make_unique<NodeAffinityFilter>(); }
std::unique_ptr<Plugin> NewPodAntiAffinity() { return std::make_unique<PodAntiAffinityFilter>(); }

std::vector<std::string> DefaultFilters() {
  return {std::string(kNodeAffinity), std::string(kTaintToleration), std::string(kPodAntiAffinity),
          std::string(kGpuModel),     std::string(kResourcesFit),    std::string(kGpuFit)};
}

}  // namespace galley::schedule
