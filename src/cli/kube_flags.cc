#include "cli/kube_flags.h"

#include <cstdlib>

#include "cli/flags.h"

namespace galley::cli {

void KubeFlags::Add(CLI::App* cmd) {
  Flag(cmd, "kubeconfig", kubeconfig, "kubeconfig file (else $KUBECONFIG, else in-cluster)");
  Flag(cmd, "context", context, "kubeconfig context (default: its current-context)");
  cmd->add_flag("--in-cluster", in_cluster, "use the pod's service account")
      ->envname("GALLEY_IN_CLUSTER");
}

void LeaseTimingFlags::Add(CLI::App* cmd) {
  DurationFlag(cmd, "lease-duration-ms", lease_duration, "leader election: lease duration")
      ->check(CLI::PositiveNumber);
  DurationFlag(cmd, "renew-deadline-ms", renew_deadline, "leader election: renew deadline")
      ->check(CLI::PositiveNumber);
  DurationFlag(cmd, "retry-period-ms", retry_period, "leader election: retry period")
      ->check(CLI::PositiveNumber);
}

absl::Status LeaseTimingFlags::Validate() const {
  // The elector's own rules (leaderelection.go's NewLeaderElector), said with the flags' names.
  if (lease_duration <= renew_deadline) {
    return absl::InvalidArgumentError(
        "--lease-duration-ms must be greater than --renew-deadline-ms");
  }
  if (renew_deadline <= retry_period * 1.2) {
    return absl::InvalidArgumentError(
        "--renew-deadline-ms must be greater than 1.2 x --retry-period-ms");
  }
  return absl::OkStatus();
}

absl::StatusOr<kube::KubeConfig> KubeFlags::Load() const {
  std::string path = kubeconfig;
  if (path.empty() && !in_cluster) {
    if (const char* env = std::getenv("KUBECONFIG"); env != nullptr) path = env;
  }
  if (!path.empty()) return kube::LoadKubeConfig(path, context);
  return kube::InClusterConfig();
}

}  // namespace galley::cli
