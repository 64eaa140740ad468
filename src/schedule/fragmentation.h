// GPU fragmentation as the FGD paper defines it (Weng et al., "Beware of Fragmentation", USENIX
// ATC '23, section 4): the workload is a distribution over task classes (CPU, GPUs, share per GPU,
// accepted models); a node's fragmentation for one class is the unallocated GPU share the class
// cannot use there: all of it when the class cannot run on the node at all (too few usable GPUs,
// too little CPU, wrong model, or the class asks for no GPU), otherwise the share left on GPUs too
// small for the class. The node's fragmentation is the expectation over the distribution.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "schedule/cluster.h"

namespace galley::schedule {

struct TaskClass {
  int64_t cpu_milli = 0;
  int32_t gpu_count = 0;
  int32_t gpu_milli = 0;            // per GPU; 1000 for whole GPUs, 0 for CPU-only classes
  std::vector<std::string> models;  // accepted models; empty = any
  double weight = 0;                // popularity; weights sum to 1

  bool AcceptsModel(std::string_view model) const;
};

struct WorkloadDistribution {
  std::vector<TaskClass> classes;

  // The paper's "typical pods": classes by (CPU, GPU count, share, models), most popular first,
  // keeping the smallest prefix that covers `coverage` of the pods, weights renormalised.
  // (The public simulator uses coverage 0.95 and counts CPU-only pods.)
  static WorkloadDistribution FromPods(const std::vector<Pod>& pods, double coverage = 0.95);
};

// What the measure looks at on a node: free CPU, each GPU's free share, and the GPU model
// (NOTE: a node's GPUs are taken to share one model, as in every trace we replay).
struct NodeShape {
  int64_t cpu_free_milli = 0;
  std::string_view model;
  std::span<const int32_t> gpu_free_milli;
};

// Which measure of a class's fragmentation on a node.
//   kFgd: the paper's, for every class: the free share of GPUs too small for one of its pods (all
//     of it when one pod does not fit at all).
//   kGalley: the paper's for classes asking for whole GPUs. For a class asking for a fraction of
//     one GPU, the free share it could not use if the node were filled with as many of its pods as
//     both the GPUs' free shares and the node's free CPU allow: free - pods * share. Many such pods
//     share one node, so "does one more fit" overstates what the node can still take: a 1000 free
//     GPU holds two 470 pods and strands 60; eight free 470 slots on a node with CPU for two strand
//     six. (Whole-GPU pods are few per node; counting them the same way measured worse, see
//     bench/RESULTS.md.)
enum class FragMeasure { kFgd, kGalley };

// The share of each GPU the measure takes a pod to ask for: its share, 1000 for whole GPUs (or a
// memory-only request), 0 for a pod without GPUs.
int32_t PerGpuShare(const Pod& pod);

// Expected fragmented GPU thousandths on the node (0 .. total free share).
double NodeFragmentation(const NodeShape& node, const WorkloadDistribution& workload,
                         FragMeasure measure = FragMeasure::kFgd);

// Fragmentation the node would have if `pod` were placed on `gpu_indices` (indices into
// free_milli; empty for a CPU-only pod), minus what it has now.
double FragmentationDelta(const NodeShape& node, const Pod& pod, std::span<const int> gpu_indices,
                          const WorkloadDistribution& workload,
                          FragMeasure measure = FragMeasure::kFgd);

// The free GPU share on `node` a class could use going by GPUs alone (model, share, count; CPU
// and memory aside): the free share of the GPUs that fit one of its pods, when enough of them do.
int64_t UsableShare(const Node& node, const TaskClass& c);

// Galley's class weights for the cluster as it is now: each class's popularity times the ratio of
// the cluster's free GPU share to the share the class could use (UsableShare summed over nodes),
// at most kMaxScarcity; renormalised. A placement that strands 1000 thousandths for a class that
// can use a tenth of the free capacity (one GPU model, eight empty GPUs on one node) costs that
// class ten times what it costs a class that can use all of it, so fragmentation is counted as the
// share of each class's own remaining supply that is lost. A class nothing can serve right now
// weighs 0 (no placement changes its chances). With every class able to use everything, the
// weights are the popularity, i.e. FGD's.
inline constexpr double kMaxScarcity = 100;
WorkloadDistribution ScarcityWeighted(const WorkloadDistribution& workload,
                                      const std::vector<Node>& nodes);

}  // namespace galley::schedule
