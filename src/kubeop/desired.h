// The operator's pure core: what an InferenceModel (galley.dev/v1alpha1) should own, and what
// its status says, as JSON objects. No I/O and no clock: the shell passes `now` as an RFC 3339
// string and applies the results with server-side apply.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json/value.hpp"
#include "kube/resource.h"

namespace galley::kubeop {

inline const kube::ResourceType kInferenceModels{"galley.dev", "v1alpha1", "inferencemodels", true,
                                                 "InferenceModel"};
inline constexpr char kFieldManager[] = "galley-operator";
// Every child carries it; pods inherit it from the Deployment's template.
inline constexpr char kModelLabel[] = "galley.dev/inferencemodel";
inline constexpr int kHttpPort = 8080;
inline constexpr int kGrpcPort = 8081;
// A model that is not in the image is fetched by an init container (`galley model fetch`) into
// this emptyDir, which the server reads; the node's cache of fetched models (by SHA-256) is this
// hostPath, which must be writable by the image's user (65532) for the cache to be kept.
inline constexpr char kFetchedModels[] = "/models-fetched";
inline constexpr char kNodeModelCache[] = "/var/cache/galley/models";

struct Children {
  boost::json::value deployment;
  boost::json::value service;
  boost::json::value pdb;
};

// The children of `model` (an InferenceModel as the API server returns it, defaults applied), as
// apply configurations: a Deployment of `galley serve` replicas (probes on the health
// endpoints, a termination grace period covering the server's drain, the failover tolerations),
// a Service with HTTP and gRPC ports, a PodDisruptionBudget; each with a controller owner
// reference to the model. InvalidArgument (the message goes into the Ready condition) for a
// spec the API server accepted but that cannot be served, e.g. an unknown model source.
absl::StatusOr<Children> DesiredChildren(const boost::json::value& model);

// The label selector of the model's pods, as the scale subresource reports it.
std::string Selector(const boost::json::value& model);

// The status of `model` computed from what exists now: its Deployment (if any) and its pods.
// Conditions Ready, Available, Progressing, ModelLoaded and Degraded (reasons such as
// Unschedulable, NodeLost, ModelLoadFailed, InvalidSpec); lastTransitionTime is kept from
// the current status when a condition's status is unchanged. `spec_error` set: the spec cannot
// be served (Ready=False, reason InvalidSpec).
boost::json::value ComputeStatus(const boost::json::value& model,
                                 const std::optional<boost::json::value>& deployment,
                                 const std::vector<boost::json::value>& pods,
                                 const std::vector<std::string>& lost_nodes,
                                 const std::string& spec_error, const std::string& now);

}  // namespace galley::kubeop
