// The built-in filter plugins: resources fit (CPU, memory), per-GPU fit (shares and GPU memory),
// GPU model, taints and tolerations, node affinity (selector + required terms), pod
// anti-affinity. Each returns kube-scheduler's wording for a rejected node.
#pragma once

#include <memory>

#include "schedule/framework.h"

namespace galley::schedule {

inline constexpr std::string_view kResourcesFit = "ResourcesFit";
inline constexpr std::string_view kGpuFit = "GpuFit";
inline constexpr std::string_view kGpuModel = "GpuModel";
inline constexpr std::string_view kTaintToleration = "TaintToleration";
inline constexpr std::string_view kNodeAffinity = "NodeAffinity";
inline constexpr std::string_view kPodAntiAffinity = "PodAntiAffinity";

// A GPU the pod may use: accepted model, and its share and GPU memory fit.
bool GpuFits(const Pod& pod, const Gpu& gpu);
// How many of the node's GPUs the pod could use.
int CountFittingGpus(const Pod& pod, const Node& node);

std::unique_ptr<Plugin> NewResourcesFit();
std::unique_ptr<Plugin> NewGpuFit();
std::unique_ptr<Plugin> NewGpuModel();
std::unique_ptr<Plugin> NewTaintToleration();
std::unique_ptr<Plugin> NewNodeAffinity();
std::unique_ptr<Plugin> NewPodAntiAffinity();

// The filter set every built-in policy uses, in order.
std::vector<std::string> DefaultFilters();

}  // namespace galley::schedule
