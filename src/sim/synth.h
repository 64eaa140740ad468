// Seeded synthetic workloads and clusters for the scheduler benchmarks: variants of a trace's pod
// mix (more shared GPUs, more multi-GPU pods, more GPU-model constraints, more CPU-only pods), and
// larger clusters drawn from a trace's node types. Pure and deterministic for a seed.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "schedule/cluster.h"

namespace galley::sim {

enum class Variant {
  kShare,     // `percent` of GPU pods ask for a share of one GPU
  kMultiGpu,  // `percent` of GPU pods ask for two or more GPUs
  kGpuSpec,   // `percent` of GPU pods accept only one GPU model (weighted by the cluster's GPUs)
  kCpu,       // `percent` of all pods ask for no GPU
};

absl::StatusOr<Variant> ParseVariant(std::string_view name);  // share, multigpu, gpuspec, cpu

// As many pods as `pods`, resampled from it so the variant's category makes up `percent` (0..100)
// of its base population; the other pods keep the trace's proportions. `nodes` supplies the GPU
// models for kGpuSpec. InvalidArgument when the trace has no pod of a needed category.
absl::StatusOr<std::vector<schedule::Pod>> MakeVariant(const std::vector<schedule::Pod>& pods,
                                                       const std::vector<schedule::Node>& nodes,
                                                       Variant variant, double percent,
                                                       uint64_t seed);

// `count` nodes drawn with replacement from `like`'s node types, named synth-node-NNNNN.
std::vector<schedule::Node> MakeCluster(const std::vector<schedule::Node>& like, int count,
                                        uint64_t seed);

}  // namespace galley::sim
