// The built-in kube-style score plugins and GPU selectors:
//   LeastAllocated / MostAllocated  CPU and memory, integer arithmetic as kube-scheduler's
//                                   noderesources plugins compute it (weights 1:1);
//   NodeAffinityScore               sum of matching preferred terms' weights, normalised to 0..100;
//   TaintTolerationScore            PreferNoSchedule taints the pod does not tolerate, reversed;
//   PodAntiAffinityScore            preferred anti-affinity terms violated, reversed min-max;
//   GpuPacking                      prefer GPUs and nodes already in use (keeps whole GPUs whole).
// GPU selectors: BestFitGpu (tightest GPU for a share; lowest-index free GPUs for whole ones) and
// RandomGpu.
#pragma once

#include <memory>

#include "schedule/framework.h"

namespace galley::schedule {

inline constexpr std::string_view kLeastAllocated = "LeastAllocated";
inline constexpr std::string_view kMostAllocated = "MostAllocated";
inline constexpr std::string_view kNodeAffinityScore = "NodeAffinityScore";
inline constexpr std::string_view kTaintTolerationScore = "TaintTolerationScore";
inline constexpr std::string_view kPodAntiAffinityScore = "PodAntiAffinityScore";
inline constexpr std::string_view kGpuPackingScore = "GpuPacking";
inline constexpr std::string_view kBestFitGpu = "BestFitGpu";
inline constexpr std::string_view kRandomGpu = "RandomGpu";

std::unique_ptr<Plugin> NewLeastAllocated();
std::unique_ptr<Plugin> NewMostAllocated();
std::unique_ptr<Plugin> NewNodeAffinityScore();
std::unique_ptr<Plugin> NewTaintTolerationScore();
std::unique_ptr<Plugin> NewPodAntiAffinityScore();
std::unique_ptr<Plugin> NewGpuPackingScore();
std::unique_ptr<Plugin> NewBestFitGpu();
std::unique_ptr<Plugin> NewRandomGpu();

// kube's helper.DefaultNormalizeScore: scale to 0..max by the largest score; reverse flips.
void DefaultNormalizeScore(double max_priority, bool reverse, std::span<double> scores);
// Best-fit GPU choice, shared by several policies: for a share, the fitting GPU with the least
// free share (lowest index on ties); otherwise the first gpu_count fitting GPUs by index.
std::vector<int> BestFitGpus(const Pod& pod, const Node& node);

}  // namespace galley::schedule
