// The gateway's replicas on Kubernetes: a fleet::ReplicaSource that watches EndpointSlices
// (discovery.k8s.io/v1) and turns each endpoint into a replica. Which model a slice serves comes
// from its label galley.dev/model (the operator puts it on a model's Service, and the
// EndpointSlice controller copies a Service's labels to its slices); only labelled slices are
// watched, so one gateway fronts every InferenceModel it can see and routes by model name.
//
// An endpoint is a replica when it has an address and the slice has the port named "http". Its
// readiness follows the EndpointSlice API (KEP-1672): `ready` (unset counts as ready) and not
// `terminating`. A terminating endpoint stays in the list but not ready, so it gets no new
// request while its requests in flight finish; once its slice drops it, the replica is gone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json/value.hpp"
#include "common/clock.h"
#include "fleet/replica_source.h"
#include "kube/client.h"

namespace galley::kube {
class Informer;
}

namespace galley::kubefleet {

inline constexpr char kModelLabel[] = "galley.dev/model";
inline constexpr char kHttpPortName[] = "http";

// The replicas of one EndpointSlice (pure: tested on its own).
std::vector<fleet::ReplicaEndpoint> ReplicasOfSlice(const boost::json::value& slice);

class EndpointSliceReplicas final : public fleet::ReplicaSource {
 public:
  // Watches the labelled EndpointSlices of `namespace_name` ("" = every namespace). `client`
  // must outlive the source. Starts the informer; Unavailable if it has not listed within
  // `sync_timeout`.
  static absl::StatusOr<std::unique_ptr<EndpointSliceReplicas>> Start(
      kube::Client* client, const std::string& namespace_name, Duration sync_timeout);
  ~EndpointSliceReplicas() override;

  std::vector<fleet::ReplicaEndpoint> Replicas() const override;

 private:
  explicit EndpointSliceReplicas(std::unique_ptr<kube::Informer> informer);
  std::unique_ptr<kube::Informer> informer_;
};

}  // namespace galley::kubefleet
