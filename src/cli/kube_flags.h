// The flags every command that talks to a Kubernetes API server shares, and loading the
// configuration they name: --kubeconfig (else $KUBECONFIG, else the pod's service account with
// --in-cluster or when no file is named) and --context.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "kube/config.h"

namespace galley::cli {

struct KubeFlags {
  std::string kubeconfig;
  std::string context;
  bool in_cluster = false;

  void Add(CLI::App* cmd);
  absl::StatusOr<kube::KubeConfig> Load() const;
};

// --lease-duration-ms, --renew-deadline-ms, --retry-period-ms: the leader election's timings,
// client-go's defaults (kube/leader_election.h), for every command that holds a Lease.
struct LeaseTimingFlags {
  std::chrono::milliseconds lease_duration{15'000};
  std::chrono::milliseconds renew_deadline{10'000};
  std::chrono::milliseconds retry_period{2'000};

  void Add(CLI::App* cmd);
  // client-go's rules: lease duration > renew deadline > 1.2 x retry period.
  absl::Status Validate() const;
};

}  // namespace galley::cli
