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
  Flag(cmd, "lease-duration-ms", lease_duration_ms, "leader election: lease duration")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "renew-deadline-ms", renew_deadline_ms, "leader election: renew deadline")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "retry-period-ms", retry_period_ms, "leader election: retry period")
      ->check(CLI::PositiveNumber);
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
