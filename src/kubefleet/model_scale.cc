#include "kubefleet/model_scale.h"

#include "common/log.h"

namespace galley::kubefleet {
namespace {

namespace json = boost::json;

int IntAt(const json::value& v, std::string_view a, std::string_view b) {
  if (!v.is_object()) return 0;
  const json::value* x = v.as_object().if_contains(a);
  if (x == nullptr || !x->is_object()) return 0;
  x = x->as_object().if_contains(b);
  return x != nullptr && x->is_int64() ? static_cast<int>(x->as_int64()) : 0;
}

kube::CallOptions Short() {
  kube::CallOptions call;
  call.timeout = std::chrono::seconds(5);
  return call;
}

}  // namespace

std::vector<fleet::ReplicaEndpoint> ModelReplicas::Replicas() const {
  std::vector<fleet::ReplicaEndpoint> out;
  for (fleet::ReplicaEndpoint& r : all_.Replicas()) {
    if (r.id.rfind(prefix_, 0) != 0) continue;
    if (std::find(r.models.begin(), r.models.end(), model_) == r.models.end()) continue;
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<ScaleSubresource>> ScaleSubresource::Open(kube::Client* client,
                                                                         std::string ns,
                                                                         std::string name) {
  auto scale = client->GetScale(kInferenceModelType, ns, name, Short());
  if (!scale.ok()) return scale.status();
  std::unique_ptr<ScaleSubresource> s(new ScaleSubresource(client, std::move(ns), std::move(name)));
  absl::MutexLock lock(&s->mu_);
  s->desired_ = IntAt(*scale, "spec", "replicas");
  s->running_ = IntAt(*scale, "status", "replicas");
  return s;
}

absl::Status ScaleSubresource::SetReplicas(int replicas) {
  if (replicas < 0) return absl::InvalidArgumentError("negative replica count");
  auto scale = client_->UpdateScale(kInferenceModelType, ns_, name_, replicas, {}, Short());
  if (!scale.ok()) return scale.status();
  absl::MutexLock lock(&mu_);
  desired_ = IntAt(*scale, "spec", "replicas");
  running_ = IntAt(*scale, "status", "replicas");
  return absl::OkStatus();
}

void ScaleSubresource::Refresh() const {
  auto scale = client_->GetScale(kInferenceModelType, ns_, name_, Short());
  if (!scale.ok()) {
    log::Warn("scale_read_failed",
              {{"model", ns_ + "/" + name_}, {"error", std::string(scale.status().message())}});
    return;  // the last values stand
  }
  absl::MutexLock lock(&mu_);
  desired_ = IntAt(*scale, "spec", "replicas");
  running_ = IntAt(*scale, "status", "replicas");
}

int ScaleSubresource::desired_replicas() const {
  Refresh();
  absl::MutexLock lock(&mu_);
  return desired_;
}

int ScaleSubresource::running_replicas() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

}  // namespace galley::kubefleet
