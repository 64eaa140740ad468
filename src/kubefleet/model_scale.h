// An InferenceModel's replicas, and its scale, as the autoscaler's seams on Kubernetes:
// `ModelReplicas` is the fleet::ReplicaSource of one model (its endpoints among those an
// EndpointSliceReplicas watches: the namespace and the model name clients use), and
// `ScaleSubresource` is the fleet::ScaleTarget that writes the model's `scale` subresource
// (galley.dev/v1alpha1 inferencemodels/scale), which the operator then carries to its Deployment,
// as the HPA writes a workload's `scale`.
#pragma once

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "fleet/replica_source.h"
#include "fleet/scale_target.h"
#include "kube/client.h"
#include "kubefleet/endpoint_replicas.h"

namespace galley::kubefleet {

inline const kube::ResourceType kInferenceModelType{"galley.dev", "v1alpha1", "inferencemodels",
                                                    true, "InferenceModel"};

class ModelReplicas final : public fleet::ReplicaSource {
 public:
  // `all` must outlive this object.
  ModelReplicas(const fleet::ReplicaSource& all, std::string namespace_name, std::string model)
      : all_(all), prefix_(namespace_name + "/"), model_(std::move(model)) {}
  std::vector<fleet::ReplicaEndpoint> Replicas() const override;

 private:
  const fleet::ReplicaSource& all_;
  const std::string prefix_;
  const std::string model_;
};

class ScaleSubresource final : public fleet::ScaleTarget {
 public:
  // `client` must outlive this object. Reads the scale once; Unavailable / NotFound if it
  // cannot.
  static absl::StatusOr<std::unique_ptr<ScaleSubresource>> Open(kube::Client* client,
                                                                std::string namespace_name,
                                                                std::string name);
  // PUT .../scale with spec.replicas (the write of one decision: no retry that could repeat it).
  absl::Status SetReplicas(int replicas) override;
  // spec.replicas and status.replicas, read again (once per controller tick).
  int desired_replicas() const override;
  int running_replicas() const override;

 private:
  ScaleSubresource(kube::Client* client, std::string ns, std::string name)
      : client_(client), ns_(std::move(ns)), name_(std::move(name)) {}
  void Refresh() const;

  kube::Client* const client_;
  const std::string ns_, name_;
  mutable absl::Mutex mu_;
  mutable int desired_ ABSL_GUARDED_BY(mu_) = 0;
  mutable int running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace galley::kubefleet
