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
  int64_t lease_duration_ms = 15'000;
  int64_t renew_deadline_ms = 10'000;
  int64_t retry_period_ms = 2'000;

  void Add(CLI::App* cmd);
  std::chrono::milliseconds lease_duration() const {
    return std::chrono::milliseconds(lease_duration_ms);
  }
  std::chrono::milliseconds renew_deadline() const {
    return std::chrono::milliseconds(renew_deadline_ms);
  }
  std::chrono::milliseconds retry_period() const {
    return std::chrono::milliseconds(retry_period_ms);
  }
};

}  // namespace galley::cli
