// The ScaleTarget seam: something whose replica count can be set. Implementations: the local
// supervisor of `galley up`, and an InferenceModel's scale subresource (kubefleet/model_scale.h).
#pragma once

#include "absl/status/status.h"

namespace galley::fleet {

class ScaleTarget {
 public:
  virtual ~ScaleTarget() = default;
  // Asks for `replicas` replicas; returns at once (starting and stopping happen in the
  // background). InvalidArgument for a negative count. Thread-safe.
  virtual absl::Status SetReplicas(int replicas) = 0;
  // The replicas asked for, and those currently running (started, whether ready or not).
  virtual int desired_replicas() const = 0;
  virtual int running_replicas() const = 0;
};

}  // namespace galley::fleet
