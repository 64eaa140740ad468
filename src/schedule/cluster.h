// The scheduler's view of a cluster: nodes (CPU, memory, GPUs with model, memory and the share
// already taken; labels, taints, node pool) and pods (requests including whole GPUs, a share of one
// GPU in thousandths, or GPU memory; accepted GPU models; tolerations; node selector; node
// affinity; pod anti-affinity). Plain values: the scheduling core reads a snapshot and returns a
// decision.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace galley::schedule {

// One whole GPU, in thousandths.
inline constexpr int32_t kMilliPerGpu = 1000;
// The label through which a node's pool is visible to node selectors and affinity terms.
inline constexpr std::string_view kNodePoolLabel = "galley.dev/node-pool";

using Labels = std::map<std::string, std::string, std::less<>>;

enum class TaintEffect { kNoSchedule, kPreferNoSchedule, kNoExecute };
std::string_view TaintEffectName(TaintEffect effect);

struct Taint {
  std::string key;
  std::string value;
  TaintEffect effect = TaintEffect::kNoSchedule;
};

enum class TolerationOperator { kEqual, kExists };

// As in Kubernetes: an empty key with kExists tolerates every taint; no effect means every effect.
struct Toleration {
  std::string key;
  TolerationOperator op = TolerationOperator::kEqual;
  std::string value;
  std::optional<TaintEffect> effect;
};

// Kubernetes node-selector and label-selector operators. Gt and Lt compare integers and are only
// meaningful in node selectors.
enum class SelectorOperator { kIn, kNotIn, kExists, kDoesNotExist, kGt, kLt };

struct SelectorRequirement {
  std::string key;
  SelectorOperator op = SelectorOperator::kIn;
  std::vector<std::string> values;
};

// Requirements are ANDed; an empty term matches nothing (as in kube's NodeSelectorTerm).
struct NodeSelectorTerm {
  std::vector<SelectorRequirement> match_expressions;
};

struct PreferredSchedulingTerm {
  int32_t weight = 1;  // 1..100
  NodeSelectorTerm preference;
};

// match_labels and match_expressions are ANDed; an empty selector matches every pod.
struct LabelSelector {
  Labels match_labels;
  std::vector<SelectorRequirement> match_expressions;
};

struct PodAffinityTerm {
  LabelSelector selector;
  std::string topology_key;  // e.g. "kubernetes.io/hostname" or kNodePoolLabel
};

struct WeightedPodAffinityTerm {
  int32_t weight = 1;  // 1..100
  PodAffinityTerm term;
};

struct Gpu {
  std::string model;
  int64_t memory_mib = 0;
  int32_t used_milli = 0;  // share already taken, 0..1000
  int64_t used_memory_mib = 0;

  int32_t FreeMilli() const { return kMilliPerGpu - used_milli; }
  int64_t FreeMemoryMib() const { return memory_mib - used_memory_mib; }
};

// A pod already bound to a node: what anti-affinity terms look at.
struct PlacedPod {
  std::string name;
  Labels labels;
  int32_t gpu_count = 0;
  int32_t gpu_milli = 0;
};

struct Node {
  std::string name;
  std::string pool;
  Labels labels;  // the pool is also visible as kNodePoolLabel; see LabelValue
  std::vector<Taint> taints;
  int64_t cpu_milli = 0;  // allocatable
  int64_t memory_mib = 0;
  int64_t cpu_used_milli = 0;
  int64_t memory_used_mib = 0;
  std::vector<Gpu> gpus;
  std::vector<PlacedPod> pods;
  // Changes whenever the node's free resources change, as kube-scheduler's NodeInfo.Generation:
  // Bind() sets a fresh value from NextNodeGeneration(); so must anyone else who changes a node in
  // place. 0 means "unknown": plugins that cache per-node values (fgd.h) do not cache such nodes.
  uint64_t generation = 0;

  int64_t FreeCpuMilli() const { return cpu_milli - cpu_used_milli; }
  int64_t FreeMemoryMib() const { return memory_mib - memory_used_mib; }
  int64_t FreeGpuMilli() const;
  int32_t FullyFreeGpus() const;
  // The label's value; kNodePoolLabel yields the pool; "kubernetes.io/hostname" yields the name
  // unless set explicitly.
  std::optional<std::string_view> LabelValue(std::string_view key) const;
};

struct Pod {
  std::string name;
  Labels labels;
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  // GPUs: gpu_count GPUs, each with gpu_milli thousandths (1000 = whole; below 1000 requires
  // gpu_count == 1) and/or gpu_memory_mib of its memory. gpu_count == 0: no GPU.
  int32_t gpu_count = 0;
  int32_t gpu_milli = 0;
  int64_t gpu_memory_mib = 0;
  std::vector<std::string> gpu_models;  // accepted models; empty = any
  std::vector<Toleration> tolerations;
  Labels node_selector;
  std::vector<NodeSelectorTerm> required_node_affinity;  // ORed; empty = no constraint
  std::vector<PreferredSchedulingTerm> preferred_node_affinity;
  std::vector<PodAffinityTerm> required_anti_affinity;
  std::vector<WeightedPodAffinityTerm> preferred_anti_affinity;

  bool WantsGpu() const { return gpu_count > 0; }
  bool SharesGpu() const { return gpu_count == 1 && gpu_milli > 0 && gpu_milli < kMilliPerGpu; }
  // Thousandths of GPU the pod takes on `gpu`: its share, or the share its memory request needs
  // there, whichever is larger (a request with neither takes the whole GPU).
  int32_t ShareOn(const Gpu& gpu) const;
  // GPU thousandths the pod asks for in all (gpu_count * gpu_milli; memory-only requests count
  // as whole GPUs).
  int64_t TotalGpuMilli() const;
  bool AcceptsModel(std::string_view model) const;
};

struct ClusterSnapshot {
  std::vector<Node> nodes;
};

// Where a pod goes: the node and the indices of the GPUs on it (empty for CPU-only pods).
struct Placement {
  int node_index = -1;
  std::string node_name;
  std::vector<int> gpu_indices;
};

// A process-wide increasing counter (never 0), so two different node states never share a value.
uint64_t NextNodeGeneration();

// Takes the pod's resources on the node and gives it a fresh generation. Precondition: the
// placement passed the filters.
void Bind(const Pod& pod, const std::vector<int>& gpu_indices, Node& node);

}  // namespace galley::schedule
