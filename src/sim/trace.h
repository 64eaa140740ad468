// Reading and writing cluster traces in the Alibaba `openb` CSV schema
// (alibaba/clusterdata, cluster-trace-gpu-v2023):
//   nodes: sn,cpu_milli,memory_mib,gpu,model
//   pods:  name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,...  (extra columns ignored)
// Parsing is pure (text in, values out); only ReadFile touches the file system.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "schedule/cluster.h"

namespace galley::sim {

// GPU memory by model, in MiB (0 when the trace's model name is not a public product, e.g. G2).
int64_t GpuMemoryMib(std::string_view model);

// `origin` names the input in error messages ("nodes.csv:12: ..."). InvalidArgument on a missing
// column, a malformed or negative number, a share outside 0..1000, a multi-GPU pod asking for a
// partial share, or an empty file.
absl::StatusOr<std::vector<schedule::Node>> ParseNodesCsv(std::string_view text,
                                                          std::string_view origin);
absl::StatusOr<std::vector<schedule::Pod>> ParsePodsCsv(std::string_view text,
                                                        std::string_view origin);

std::string WriteNodesCsv(const std::vector<schedule::Node>& nodes);
std::string WritePodsCsv(const std::vector<schedule::Pod>& pods);

// Whole file; NotFound / PermissionDenied etc. with the path in the message.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace galley::sim
