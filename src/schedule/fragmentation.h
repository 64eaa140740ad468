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
  int32_t gpu_milli = 0;  // per GPU; 1000 for whole GPUs, 0 for CPU-only classes
  std::vector<std::string> models;  // accepted models; empty = any
  double weight = 0;  // popularity; weights sum to 1

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

// Expected fragmented GPU thousandths on the node (0 .. total free share).
double NodeFragmentation(const NodeShape& node, const WorkloadDistribution& workload);

// Fragmentation the node would have if `pod` were placed on `gpu_indices` (indices into
// free_milli; empty for a CPU-only pod), minus what it has now.
double FragmentationDelta(const NodeShape& node, const Pod& pod, std::span<const int> gpu_indices,
                          const WorkloadDistribution& workload);

}  // namespace galley::schedule
