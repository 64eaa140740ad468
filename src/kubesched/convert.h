// Kubernetes objects to the scheduling core's values (schedule/cluster.h), and the annotations
// through which Galley's scheduler reads fractional GPU requests and records the GPUs it gave.
// Pure: JSON in, values out.
//
// A node's GPUs: allocatable `nvidia.com/gpu` (the NVIDIA device plugin's extended resource), the
// model from the label `nvidia.com/gpu.product` and the memory per GPU in MiB from
// `nvidia.com/gpu.memory` (the labels NVIDIA GPU feature discovery sets). The node pool is the
// label `galley.dev/node-pool`.
//
// A pod's GPU request, in this order:
//   - annotation `gpu.galley.dev/milli: "250"`: a share of one GPU in thousandths (1..1000); the
//     pod must then not also request `nvidia.com/gpu` (the device plugin hands out whole devices);
//   - annotation `gpu.galley.dev/memory-mib: "8192"`: GPU memory on one GPU (with or without
//   milli);
//   - else `nvidia.com/gpu` in the containers' requests (or limits, which extended resources must
//     equal): that many whole GPUs.
// `gpu.galley.dev/models: "NVIDIA-A100-SXM4-80GB,Tesla-V100-SXM2-16GB"` lists the GPU models the
// pod accepts (any when absent). CPU and memory requests are the sum over containers, or the
// largest init container's when that is larger (kube-scheduler's computePodResourceRequest), plus
// overhead.
//
// When Galley binds a pod it records the GPUs it gave in `gpu.galley.dev/assigned: "0,3"` (indices
// into the node's GPUs) on the Binding, which the API server copies onto the pod; a restarted
// scheduler rebuilds every node's GPU accounting from the bound pods' annotations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json/fwd.hpp"
#include "schedule/cluster.h"

namespace galley::kubesched {

inline constexpr std::string_view kGpuResource = "nvidia.com/gpu";
inline constexpr std::string_view kGpuProductLabel = "nvidia.com/gpu.product";
inline constexpr std::string_view kGpuMemoryLabel = "nvidia.com/gpu.memory";
inline constexpr std::string_view kMilliAnnotation = "gpu.galley.dev/milli";
inline constexpr std::string_view kMemoryAnnotation = "gpu.galley.dev/memory-mib";
inline constexpr std::string_view kModelsAnnotation = "gpu.galley.dev/models";
inline constexpr std::string_view kAssignedAnnotation = "gpu.galley.dev/assigned";

// A resource.Quantity ("500m", "2", "1.5Gi", "1e3", "128974848") in thousandths of its unit,
// rounded up (Quantity.MilliValue). InvalidArgument for text that is not a quantity.
absl::StatusOr<int64_t> ParseQuantityMilli(std::string_view text);
// The same quantity in whole units, rounded up (Quantity.Value).
absl::StatusOr<int64_t> ParseQuantityValue(std::string_view text);

// A v1 Node. Allocatable memory is rounded down to MiB. InvalidArgument naming the field for a
// malformed object.
absl::StatusOr<schedule::Node> NodeFromJson(const boost::json::value& node);

// Whether the node can take new pods at all: not spec.unschedulable. (Readiness and taints are
// the filters' business: a NotReady node carries the node.kubernetes.io/not-ready taint.)
bool NodeSchedulable(const boost::json::value& node);

// A v1 Pod as the core sees it (name "namespace/name"). InvalidArgument naming the field for a
// malformed object or annotation.
absl::StatusOr<schedule::Pod> PodFromJson(const boost::json::value& pod);

// What a pod holds on its node, for the accounting of pods already bound.
struct BoundPod {
  std::string node;
  std::vector<int> gpu_indices;  // from kAssignedAnnotation; empty when none recorded
};
// The node a pod is bound to (spec.nodeName) and its recorded GPUs; nullopt when the pod is not
// bound or has finished (phase Succeeded or Failed: it holds nothing any more).
std::optional<BoundPod> BoundPodFromJson(const boost::json::value& pod);

// "0,3" <-> {0, 3}. InvalidArgument for anything but comma-separated non-negative integers.
absl::StatusOr<std::vector<int>> ParseGpuIndices(std::string_view text);
std::string FormatGpuIndices(const std::vector<int>& indices);

}  // namespace galley::kubesched
