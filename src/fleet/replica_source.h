// The ReplicaSource seam: where the gateway learns which model replicas exist. Implementations:
// a static list (--replicas), the local supervisor of `galley up`, and Kubernetes EndpointSlices
// (kubefleet/endpoint_replicas.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace galley::fleet {

struct ReplicaEndpoint {
  std::string id;    // stable for the replica's life, e.g. "replica-0" or "127.0.0.1:9001"
  std::string host;  // IP address to connect to
  uint16_t port = 0;
  // Whether the source itself knows the replica to be ready (the supervisor saw it become
  // ready; a static list says true). The gateway also runs its own active health checks.
  bool ready = true;
  // The models it serves (the gateway sends it requests for these only); empty: every model.
  std::vector<std::string> models = {};
};

class ReplicaSource {
 public:
  virtual ~ReplicaSource() = default;
  // The current replicas. Thread-safe; cheap enough to call on every health-check round.
  virtual std::vector<ReplicaEndpoint> Replicas() const = 0;
};

// A fixed list, from --replicas HOST:PORT,HOST:PORT,...
class StaticReplicaSource final : public ReplicaSource {
 public:
  explicit StaticReplicaSource(std::vector<ReplicaEndpoint> replicas)
      : replicas_(std::move(replicas)) {}
  std::vector<ReplicaEndpoint> Replicas() const override { return replicas_; }

 private:
  const std::vector<ReplicaEndpoint> replicas_;
};

}  // namespace galley::fleet
