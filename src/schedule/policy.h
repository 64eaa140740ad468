// Every built-in plugin, registered explicitly (kube-scheduler's NewInTreeRegistry), and the named
// policies (profiles) `galley schedule` offers.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "schedule/framework.h"

namespace galley::schedule {

// All built-in plugins by name. Fails only if two built-ins share a name (a programming error).
absl::StatusOr<Registry> NewInTreeRegistry();

// Policy names: galley (the default), fgd, bestfit, gpupacking, gpuclustering, dotprod, random,
// kube (LeastAllocated + the kube-style preference scores).
std::vector<std::string> PolicyNames();
inline constexpr std::string_view kDefaultPolicy = "galley";

// The profile behind a policy name; NotFound for an unknown name.
absl::StatusOr<ProfileConfig> PolicyProfile(std::string_view policy);

// Builds a scheduler for a policy. `workload` is needed by fgd and galley.
// `percentage_of_nodes_to_score`: see ProfileConfig (100 = all nodes; 0 = kube's adaptive).
absl::StatusOr<std::unique_ptr<Scheduler>> NewPolicyScheduler(
    std::string_view policy, std::shared_ptr<const WorkloadDistribution> workload,
    int percentage_of_nodes_to_score = 100);

}  // namespace galley::schedule
