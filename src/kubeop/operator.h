// `galley operator run`: the InferenceModel controller. Level-triggered: every pass over a
// model recomputes its children (desired.h) and applies them with server-side apply under the
// field manager "galley-operator", then recomputes its status from the Deployment and the pods
// and applies that to the status subresource. Children are watched through informers, so a
// deleted or edited child brings its model back into the queue and is repaired on the next pass.
// Work is keyed per model (namespace/name), deduplicated, retried with per-key exponential
// back-off on API errors; every model is resynced periodically. Only the leader (a Lease)
// reconciles. Lifecycle: Start() -> Stop().
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/lifecycle.h"
#include "kube/client.h"
#include "metrics/registry.h"

namespace galley::kubeop {

struct OperatorOptions {
  std::string namespace_name;  // "" = every namespace
  std::string lease_namespace = "default";
  std::string lease_name = "galley-operator";
  std::string identity;  // unique per instance
  std::chrono::milliseconds resync{30'000};
  std::chrono::milliseconds min_backoff{200};
  std::chrono::milliseconds max_backoff{30'000};
  Duration lease_duration = std::chrono::seconds(15);
  Duration renew_deadline = std::chrono::seconds(10);
  Duration retry_period = std::chrono::seconds(2);
};

// A Component (common/lifecycle.h): Stop() lets the reconcile in progress finish and releases
// the lease.
class Operator final : public Component {
 public:
  // `client` and `registry` must outlive the operator.
  Operator(kube::Client& client, OperatorOptions options, metrics::Registry& registry);
  ~Operator();
  Operator(const Operator&) = delete;
  Operator& operator=(const Operator&) = delete;

  // Starts the informers and the leader election. Unavailable if the informers cannot start.
  absl::Status Start() override;
  void Stop() override;
  std::string_view component_name() const override { return "operator"; }
  // Whether the informers have synced (for /readyz).
  bool Synced() const;
  bool Leading() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Applies the CustomResourceDefinition in `yaml` (server-side apply) and waits until the API
// server reports it Established, at most `timeout`.
absl::Status InstallCrd(kube::Client& client, const std::string& yaml,
                        std::chrono::milliseconds timeout);

}  // namespace galley::kubeop
