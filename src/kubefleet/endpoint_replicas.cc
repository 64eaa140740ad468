#include "kubefleet/endpoint_replicas.h"

#include <algorithm>

#include "common/strings.h"
#include "kube/informer.h"
#include "kube/resource.h"

namespace galley::kubefleet {
namespace {

namespace json = boost::json;

const kube::ResourceType kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices", true,
                                         "EndpointSlice"};

const json::value* At(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (std::string_view key : path) {
    if (cur == nullptr || !cur->is_object()) return nullptr;
    cur = cur->as_object().if_contains(key);
  }
  return cur;
}

std::string Str(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* x = At(v, path);
  return x != nullptr && x->is_string() ? std::string(x->as_string()) : std::string();
}

// A condition of the EndpointSlice API: unset means `unset_means`.
bool Condition(const json::value& endpoint, std::string_view name, bool unset_means) {
  const json::value* x = At(endpoint, {"conditions", name});
  return x != nullptr && x->is_bool() ? x->as_bool() : unset_means;
}

}  // namespace

std::vector<fleet::ReplicaEndpoint> ReplicasOfSlice(const json::value& slice) {
  std::vector<fleet::ReplicaEndpoint> out;
  const std::string model = Str(slice, {"metadata", "labels", kModelLabel});
  const std::string type = Str(slice, {"addressType"});
  if (model.empty() || (type != "IPv4" && type != "IPv6")) return out;
  int64_t port = 0;
  if (const json::value* ports = At(slice, {"ports"}); ports != nullptr && ports->is_array()) {
    for (const json::value& p : ports->as_array()) {
      const json::value* number = At(p, {"port"});
      if (Str(p, {"name"}) == kHttpPortName && number != nullptr && number->is_int64()) {
        port = number->as_int64();
      }
    }
  }
  if (port <= 0 || port > 65535) return out;
  const json::value* endpoints = At(slice, {"endpoints"});
  if (endpoints == nullptr || !endpoints->is_array()) return out;
  const std::string ns = Str(slice, {"metadata", "namespace"});
  for (const json::value& e : endpoints->as_array()) {
    const json::value* addresses = At(e, {"addresses"});
    if (addresses == nullptr || !addresses->is_array() || addresses->as_array().empty() ||
        !addresses->as_array()[0].is_string()) {
      continue;
    }
    fleet::ReplicaEndpoint r;
    r.host = std::string(addresses->as_array()[0].as_string());
    r.port = static_cast<uint16_t>(port);
    // Named after the pod when the slice says which (stable across slice rewrites), else after
    // the address.
    const std::string pod = Str(e, {"targetRef", "name"});
    r.id = pod.empty() ? StrCat(ns, "/", r.host, ":", port) : StrCat(ns, "/", pod);
    r.ready = Condition(e, "ready", true) && !Condition(e, "terminating", false);
    r.models = {model};
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<EndpointSliceReplicas>> EndpointSliceReplicas::Start(
    kube::Client* client, const std::string& namespace_name, Duration sync_timeout) {
  kube::InformerOptions o;
  o.namespace_name = namespace_name;
  o.label_selector = kModelLabel;  // only slices that say which model they serve
  auto informer = std::make_unique<kube::Informer>(client, kEndpointSlices, o);
  if (absl::Status st = informer->Start(); !st.ok()) return st;
  if (!informer->WaitForSync(sync_timeout)) {
    return absl::UnavailableError(
        "EndpointSlices were not listed in time (is the API server reachable, and may "
        "this account list endpointslices.discovery.k8s.io?)");
  }
  return std::unique_ptr<EndpointSliceReplicas>(new EndpointSliceReplicas(std::move(informer)));
}

EndpointSliceReplicas::EndpointSliceReplicas(std::unique_ptr<kube::Informer> informer)
    : informer_(std::move(informer)) {}

EndpointSliceReplicas::~EndpointSliceReplicas() { informer_->Stop(); }

std::vector<fleet::ReplicaEndpoint> EndpointSliceReplicas::Replicas() const {
  std::vector<fleet::ReplicaEndpoint> out;
  for (const json::value& slice : informer_->List()) {
    for (fleet::ReplicaEndpoint& r : ReplicasOfSlice(slice)) {
      // One pod may appear in two slices while the controller moves it: keep the first.
      if (std::none_of(out.begin(), out.end(), [&](const auto& o) { return o.id == r.id; })) {
        out.push_back(std::move(r));
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

}  // namespace galley::kubefleet
