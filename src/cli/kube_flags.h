// The flags every command that talks to a Kubernetes API server shares, and loading the
// configuration they name: --kubeconfig (else $KUBECONFIG, else the pod's service account with
// --in-cluster or when no file is named) and --context.
#pragma once

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

}  // namespace galley::cli
