// Resource types, list/watch options and the REST paths built from them, following the API
// conventions of the Kubernetes API ("API Concepts", kubernetes.io/docs/reference/using-api/
// api-concepts/): /api/v1/... for the core group, /apis/GROUP/VERSION/... for the others.
// Pure functions; no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "boost/json/value.hpp"

namespace galley::kube {

// A REST resource: group ("" for core), version and plural resource name.
struct ResourceType {
  std::string group;
  std::string version;
  std::string plural;
  bool namespaced = true;
  std::string kind;  // for building objects (e.g. "ConfigMap"); informational
};

namespace resources {
inline const ResourceType kPods{"", "v1", "pods", true, "Pod"};
inline const ResourceType kNodes{"", "v1", "nodes", false, "Node"};
inline const ResourceType kConfigMaps{"", "v1", "configmaps", true, "ConfigMap"};
inline const ResourceType kServices{"", "v1", "services", true, "Service"};
inline const ResourceType kNamespaces{"", "v1", "namespaces", false, "Namespace"};
inline const ResourceType kEvents{"", "v1", "events", true, "Event"};
inline const ResourceType kDeployments{"apps", "v1", "deployments", true, "Deployment"};
inline const ResourceType kReplicaSets{"apps", "v1", "replicasets", true, "ReplicaSet"};
inline const ResourceType kStatefulSets{"apps", "v1", "statefulsets", true, "StatefulSet"};
inline const ResourceType kLeases{"coordination.k8s.io", "v1", "leases", true, "Lease"};
inline const ResourceType kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets", true,
                                                "PodDisruptionBudget"};
inline const ResourceType kCustomResourceDefinitions{
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", false, "CustomResourceDefinition"};
}  // namespace resources

// The apiVersion string of `type`: "v1" or "apps/v1".
std::string ApiVersion(const ResourceType& type);

// Query options of list and watch (metav1.ListOptions). Unset fields are not sent.
struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::optional<std::string> resource_version;  // "" and "0" mean different things; see docs
  std::string resource_version_match;           // "NotOlderThan" / "Exact"
  int64_t limit = 0;                            // 0: no paging
  std::string continue_token;
  int64_t timeout_seconds = 0;         // 0: not sent
  bool allow_watch_bookmarks = false;  // watch only
};

// The path of a collection or object: PathFor(kConfigMaps, "ns", "name", "") gives
// "/api/v1/namespaces/ns/configmaps/name"; empty `name` gives the collection; a non-empty
// `subresource` ("scale", "binding", "status") is appended after the name. For a cluster-scoped
// type `ns` is ignored; for a namespaced type an empty `ns` means all namespaces (list/watch).
// Every segment is percent-encoded.
std::string PathFor(const ResourceType& type, std::string_view ns, std::string_view name = {},
                    std::string_view subresource = {});

// "?labelSelector=...&watch=true..." for the set fields (empty string when none).
std::string QueryFor(const ListOptions& options, bool watch);

// Percent-encodes everything outside RFC 3986's unreserved set.
std::string PercentEncode(std::string_view text);

// Object accessors (metadata.name and so on); "" when absent or not a string.
std::string_view NameOf(const boost::json::value& object);
std::string_view NamespaceOf(const boost::json::value& object);
std::string_view ResourceVersionOf(const boost::json::value& object);
std::string_view UidOf(const boost::json::value& object);
// The cache key "namespace/name", or "name" for cluster-scoped objects (client-go's
// cache.MetaNamespaceKeyFunc).
std::string KeyOf(const boost::json::value& object);

}  // namespace galley::kube
