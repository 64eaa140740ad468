// A blocking, thread-safe Kubernetes API client: HTTPS (TLS 1.2+, the server certificate checked
// against the configured CA and the server's host name or IP address), bearer-token or client
// certificate authentication, a small pool of keep-alive connections, client-side rate limiting
// and JSON objects as boost::json::value (no generated types).
//
// Every call may be made from any thread. Each call blocks until the response arrives or its
// timeout passes. Errors: see api_error.h (HttpCode(), absl::IsNotFound(), IsConflict(),
// IsGone(), ...).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/json/value.hpp"
#include "common/clock.h"
#include "kube/api_error.h"
#include "kube/config.h"
#include "kube/rate_limiter.h"
#include "kube/resource.h"
#include "kube/watch_event.h"

namespace galley::kube {

struct ClientOptions {
  RateLimit rate_limit;                                 // QPS 5 / burst 10 as client-go
  Duration timeout = std::chrono::seconds(30);          // per request (not watches)
  Duration connect_timeout = std::chrono::seconds(10);  // TCP connect + TLS handshake
  size_t max_idle_connections = 8;
  size_t max_response_bytes = 256 << 20;
  std::string user_agent = "galley";
};

// Per-call settings.
struct CallOptions {
  std::optional<Duration> timeout;  // overrides ClientOptions::timeout
};

enum class PatchType {
  kMerge,           // application/merge-patch+json (RFC 7386)
  kJson,            // application/json-patch+json (RFC 6902), a JSON array of operations
  kStrategicMerge,  // application/strategic-merge-patch+json (built-in types only)
};

// DeleteOptions (metav1.DeleteOptions); unset fields are not sent.
struct DeleteOptions {
  std::optional<int64_t> grace_period_seconds;
  std::string propagation_policy;  // "Foreground", "Background", "Orphan" or ""
  std::string precondition_uid;
  std::string precondition_resource_version;
};

// A core/v1 Event about `involved` (an object as returned by Get, or at least apiVersion, kind,
// metadata.name/namespace/uid). The event lands in the involved object's namespace ("default"
// for cluster-scoped objects).
struct EventSpec {
  boost::json::value involved;
  std::string type = "Normal";  // "Normal" or "Warning"
  std::string reason;           // UpperCamelCase, e.g. "Scheduled"
  std::string message;
  std::string component = "galley";  // source.component and reportingComponent
  std::string action;                // optional
};

class Client {
 public:
  // Validates `config` (an https server URL, PEM that parses) and prepares the TLS context; does
  // not connect. InvalidArgument for a bad config.
  static absl::StatusOr<std::unique_ptr<Client>> Create(KubeConfig config,
                                                        ClientOptions options = {});
  // Shorthand for Create(LoadKubeConfig(path, context)).
  static absl::StatusOr<std::unique_ptr<Client>> FromKubeConfig(const std::string& path,
                                                                std::string_view context = {},
                                                                ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const KubeConfig& config() const;
  // The context's namespace (for callers that take "" to mean the default).
  const std::string& default_namespace() const { return config().namespace_name; }

  // --- Objects. `ns` is ignored for cluster-scoped types. -----------------------------------
  absl::StatusOr<boost::json::value> Get(const ResourceType& type, std::string_view ns,
                                         std::string_view name, const CallOptions& call = {});
  // The list object ({"metadata": {"resourceVersion": ...}, "items": [...]}). Empty `ns` for a
  // namespaced type lists all namespaces. Follows no continue tokens (see ListAll).
  absl::StatusOr<boost::json::value> List(const ResourceType& type, std::string_view ns,
                                          const ListOptions& options = {},
                                          const CallOptions& call = {});
  // Lists page by page (options.limit per page, 500 when 0) and returns one list object whose
  // items are all pages' items and whose resourceVersion is the first page's.
  absl::StatusOr<boost::json::value> ListAll(const ResourceType& type, std::string_view ns,
                                             ListOptions options = {},
                                             const CallOptions& call = {});
  // POST; returns the created object. AlreadyExists when the name is taken. The namespace comes
  // from `ns` (the object's metadata.namespace, if set, must match or the server refuses it).
  absl::StatusOr<boost::json::value> Create(const ResourceType& type, std::string_view ns,
                                            const boost::json::value& object,
                                            const CallOptions& call = {});
  // PUT of the whole object (name from metadata.name). With metadata.resourceVersion set the
  // server refuses a stale write with Conflict (IsConflict(): Aborted, HTTP 409).
  absl::StatusOr<boost::json::value> Update(const ResourceType& type, std::string_view ns,
                                            const boost::json::value& object,
                                            const CallOptions& call = {});
  // PATCH with `patch` (an object for merge patches, an array of operations for JSON patch).
  absl::StatusOr<boost::json::value> Patch(const ResourceType& type, std::string_view ns,
                                           std::string_view name, PatchType patch_type,
                                           const boost::json::value& patch,
                                           std::string_view subresource = {},
                                           const CallOptions& call = {});
  // Server-side apply (PATCH with application/apply-patch+yaml; JSON is YAML): `object` holds
  // the fields this manager owns (apiVersion, kind, metadata.name and the rest); the server
  // merges it, records `field_manager` as their owner, and with `force` takes over fields other
  // managers set. Returns the object as stored.
  absl::StatusOr<boost::json::value> Apply(const ResourceType& type, std::string_view ns,
                                           const boost::json::value& object,
                                           std::string_view field_manager, bool force = true,
                                           std::string_view subresource = {},
                                           const CallOptions& call = {});
  // DELETE; returns the server's answer (the object being deleted, or a Status).
  absl::StatusOr<boost::json::value> Delete(const ResourceType& type, std::string_view ns,
                                            std::string_view name,
                                            const DeleteOptions& options = {},
                                            const CallOptions& call = {});

  // --- Subresources. ------------------------------------------------------------------------
  absl::StatusOr<boost::json::value> GetSubresource(const ResourceType& type, std::string_view ns,
                                                    std::string_view name,
                                                    std::string_view subresource,
                                                    const CallOptions& call = {});
  absl::StatusOr<boost::json::value> UpdateSubresource(const ResourceType& type,
                                                       std::string_view ns, std::string_view name,
                                                       std::string_view subresource,
                                                       const boost::json::value& object,
                                                       const CallOptions& call = {});
  // The autoscaling/v1 Scale of a scalable object (Deployment, ReplicaSet, StatefulSet, ...).
  absl::StatusOr<boost::json::value> GetScale(const ResourceType& type, std::string_view ns,
                                              std::string_view name, const CallOptions& call = {});
  // Sets spec.replicas through the scale subresource. With a non-empty `resource_version` the
  // write is conditional on it (Conflict when stale). Returns the new Scale.
  absl::StatusOr<boost::json::value> UpdateScale(const ResourceType& type, std::string_view ns,
                                                 std::string_view name, int32_t replicas,
                                                 std::string_view resource_version = {},
                                                 const CallOptions& call = {});
  // Binds a pod to a node: POST pods/NAME/binding with a v1 Binding (what kube-scheduler does).
  // With a non-empty `pod_uid` the binding applies only to that incarnation of the pod. Conflict
  // when the pod is already bound. `annotations` go on the Binding's metadata, which the API
  // server copies onto the pod in the same write (e.g. the GPUs a scheduler gave it).
  absl::Status Bind(std::string_view ns, std::string_view pod_name, std::string_view node_name,
                    std::string_view pod_uid = {},
                    const std::map<std::string, std::string>& annotations = {},
                    const CallOptions& call = {});
  // Creates a core/v1 Event (name "<involved name>.<unique hex>", count 1, first/last timestamp
  // now) and returns it.
  absl::StatusOr<boost::json::value> CreateEvent(const EventSpec& spec,
                                                 const CallOptions& call = {});

  // --- Watch. -------------------------------------------------------------------------------
  // Opens a watch (GET ...?watch=true) on its own connection and calls `on_event` for each
  // event, in order, on the calling thread, until: the server ends the stream (returns OK; e.g.
  // options.timeout_seconds passed), `on_event` returns false (OK), `stop` is requested
  // (Cancelled, promptly, even while blocked reading), no byte arrives for `idle_timeout`
  // (DeadlineExceeded), or an error (the API's error, e.g. IsGone() for a too-old
  // resourceVersion, or Unavailable). ERROR events are handed to `on_event` like the others.
  using WatchCallback = std::function<bool(WatchEvent&&)>;
  absl::Status Watch(const ResourceType& type, std::string_view ns, const ListOptions& options,
                     const WatchCallback& on_event, std::stop_token stop = {},
                     Duration idle_timeout = std::chrono::minutes(15));

  // --- Raw. ---------------------------------------------------------------------------------
  // Any request: `path_and_query` starts with '/'; `body` is sent with `content_type` when
  // non-empty. Returns the decoded JSON body of a 2xx response (null for an empty body).
  absl::StatusOr<boost::json::value> Request(std::string_view method,
                                             std::string_view path_and_query,
                                             std::string_view body = {},
                                             std::string_view content_type = "application/json",
                                             const CallOptions& call = {});

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// RFC 3339 with microseconds in UTC, as metav1.MicroTime serialises
// ("2024-01-02T03:04:05.000006Z").
std::string FormatMicroTime(std::chrono::system_clock::time_point t);
// RFC 3339 seconds, as metav1.Time ("2024-01-02T03:04:05Z").
std::string FormatTime(std::chrono::system_clock::time_point t);
// Parses either form (and numeric offsets); InvalidArgument otherwise.
absl::StatusOr<std::chrono::system_clock::time_point> ParseTime(std::string_view text);

}  // namespace galley::kube
