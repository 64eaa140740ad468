#include "kube/client.h"

#include <ctime>
#include <thread>

#include "boost/json/parse.hpp"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "kube/transport.h"

namespace galley::kube {
namespace {

namespace json = boost::json;

std::string_view ContentTypeFor(PatchType type) {
  switch (type) {
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kJson:
      return "application/json-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
  }
  return "application/merge-patch+json";
}

std::string_view ObjectNamespaceOr(const ResourceType& type, std::string_view ns,
                                   const json::value& object) {
  if (!type.namespaced) return {};
  if (!ns.empty()) return ns;
  return NamespaceOf(object);
}

}  // namespace

class Client::Impl {
 public:
  Impl(KubeConfig config, ClientOptions options, std::unique_ptr<internal::Transport> transport)
      : config_(std::move(config)),
        options_(std::move(options)),
        transport_(std::move(transport)),
        bucket_(options_.rate_limit, std::chrono::steady_clock::now()) {}

  const KubeConfig& config() const { return config_; }

  void Throttle() {
    const Duration wait = bucket_.Reserve(std::chrono::steady_clock::now());
    if (wait > Duration::zero()) std::this_thread::sleep_for(wait);
  }

  absl::StatusOr<json::value> Request(std::string_view method, std::string_view target,
                                      std::string_view body, std::string_view content_type,
                                      const CallOptions& call) {
    Throttle();
    const TimePoint deadline =
        std::chrono::steady_clock::now() + call.timeout.value_or(options_.timeout);
    ASSIGN_OR_RETURN(internal::HttpResult result,
                     transport_->Send(method, target, body, content_type, deadline));
    if (result.status < 200 || result.status > 299) {
      return ApiErrorFromResponse(result.status, result.body);
    }
    if (StripWhitespace(result.body).empty()) return json::value(nullptr);
    boost::system::error_code ec;
    json::value v = json::parse(result.body, ec);
    if (ec) {
      return absl::InternalError(
          StrCat("kubernetes API: response to ", method, " ", target, " is not JSON"));
    }
    return v;
  }

  absl::Status Watch(const ResourceType& type, std::string_view ns, const ListOptions& options,
                     const WatchCallback& on_event, std::stop_token stop, Duration idle_timeout) {
    Throttle();
    const std::string target = PathFor(type, ns) + QueryFor(options, /*watch=*/true);
    LineSplitter lines;
    std::string line;
    return transport_->Stream(
        target, idle_timeout,
        [&](std::string_view bytes) -> absl::StatusOr<bool> {
          RETURN_IF_ERROR(lines.Feed(bytes));
          while (lines.Next(&line)) {
            if (StripWhitespace(line).empty()) continue;
            ASSIGN_OR_RETURN(WatchEvent event, ParseWatchEvent(line));
            if (!on_event(std::move(event))) return false;
          }
          return true;
        },
        stop);
  }

 private:
  const KubeConfig config_;
  const ClientOptions options_;
  std::unique_ptr<internal::Transport> transport_;
  TokenBucket bucket_;
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Create(KubeConfig config, ClientOptions options) {
  if (options.rate_limit.qps > 0 && options.rate_limit.burst < 1) {
    return absl::InvalidArgumentError("kubernetes client: rate limit burst must be >= 1");
  }
  ASSIGN_OR_RETURN(auto transport, internal::Transport::Create(config, options));
  return std::unique_ptr<Client>(new Client(
      std::make_unique<Impl>(std::move(config), std::move(options), std::move(transport))));
}

absl::StatusOr<std::unique_ptr<Client>> Client::FromKubeConfig(const std::string& path,
                                                               std::string_view context,
                                                               ClientOptions options) {
  ASSIGN_OR_RETURN(KubeConfig config, LoadKubeConfig(path, context));
  return Create(std::move(config), std::move(options));
}

const KubeConfig& Client::config() const { return impl_->config(); }

absl::StatusOr<json::value> Client::Request(std::string_view method,
                                            std::string_view path_and_query, std::string_view body,
                                            std::string_view content_type,
                                            const CallOptions& call) {
  if (!StartsWith(path_and_query, "/")) {
    return absl::InvalidArgumentError("kubernetes request path must start with '/'");
  }
  return impl_->Request(method, path_and_query, body, content_type, call);
}

absl::StatusOr<json::value> Client::Get(const ResourceType& type, std::string_view ns,
                                        std::string_view name, const CallOptions& call) {
  if (name.empty()) return absl::InvalidArgumentError("Get: empty name");
  return impl_->Request("GET", PathFor(type, ns, name), {}, {}, call);
}

absl::StatusOr<json::value> Client::List(const ResourceType& type, std::string_view ns,
                                         const ListOptions& options, const CallOptions& call) {
  return impl_->Request("GET", PathFor(type, ns) + QueryFor(options, false), {}, {}, call);
}

absl::StatusOr<json::value> Client::ListAll(const ResourceType& type, std::string_view ns,
                                            ListOptions options, const CallOptions& call) {
  if (options.limit <= 0) options.limit = 500;
  json::value all;
  json::array items;
  while (true) {
    ASSIGN_OR_RETURN(json::value page, List(type, ns, options, call));
    if (!page.is_object()) return absl::InternalError("kubernetes API: list is not an object");
    if (auto* page_items = page.get_object().if_contains("items");
        page_items != nullptr && page_items->is_array()) {
      for (auto& item : page_items->get_array()) items.push_back(std::move(item));
    }
    std::string next;
    if (const auto* meta = page.get_object().if_contains("metadata");
        meta != nullptr && meta->is_object()) {
      if (const auto* c = meta->get_object().if_contains("continue"); c && c->is_string()) {
        next = std::string(c->get_string());
      }
    }
    if (all.is_null()) all = std::move(page);
    if (next.empty()) break;
    options.continue_token = next;
    options.resource_version.reset();  // the continue token pins the snapshot
  }
  all.get_object()["items"] = std::move(items);
  if (auto* meta = all.get_object().if_contains("metadata"); meta && meta->is_object()) {
    meta->get_object().erase("continue");
  }
  return all;
}

absl::StatusOr<json::value> Client::Create(const ResourceType& type, std::string_view ns,
                                           const json::value& object, const CallOptions& call) {
  if (!object.is_object()) return absl::InvalidArgumentError("Create: object is not a JSON object");
  return impl_->Request("POST", PathFor(type, ObjectNamespaceOr(type, ns, object)),
                        JsonSerialize(object), "application/json", call);
}

absl::StatusOr<json::value> Client::Update(const ResourceType& type, std::string_view ns,
                                           const json::value& object, const CallOptions& call) {
  const std::string_view name = NameOf(object);
  if (name.empty()) return absl::InvalidArgumentError("Update: object has no metadata.name");
  return impl_->Request("PUT", PathFor(type, ObjectNamespaceOr(type, ns, object), name),
                        JsonSerialize(object), "application/json", call);
}

absl::StatusOr<json::value> Client::Patch(const ResourceType& type, std::string_view ns,
                                          std::string_view name, PatchType patch_type,
                                          const json::value& patch, std::string_view subresource,
                                          const CallOptions& call) {
  if (name.empty()) return absl::InvalidArgumentError("Patch: empty name");
  if (patch_type == PatchType::kJson && !patch.is_array()) {
    return absl::InvalidArgumentError("Patch: a JSON patch is an array of operations");
  }
  if (patch_type != PatchType::kJson && !patch.is_object()) {
    return absl::InvalidArgumentError("Patch: a merge patch is a JSON object");
  }
  return impl_->Request("PATCH", PathFor(type, ns, name, subresource), JsonSerialize(patch),
                        ContentTypeFor(patch_type), call);
}

absl::StatusOr<json::value> Client::Apply(const ResourceType& type, std::string_view ns,
                                          const json::value& object, std::string_view field_manager,
                                          bool force, std::string_view subresource,
                                          const CallOptions& call) {
  const std::string_view name = NameOf(object);
  if (name.empty()) return absl::InvalidArgumentError("Apply: the object has no metadata.name");
  if (field_manager.empty()) return absl::InvalidArgumentError("Apply: empty field manager");
  const std::string target =
      StrCat(PathFor(type, ObjectNamespaceOr(type, ns, object), name, subresource),
             "?fieldManager=", PercentEncode(field_manager), force ? "&force=true" : "");
  return impl_->Request("PATCH", target, JsonSerialize(object), "application/apply-patch+yaml",
                        call);
}

absl::StatusOr<json::value> Client::Delete(const ResourceType& type, std::string_view ns,
                                           std::string_view name, const DeleteOptions& options,
                                           const CallOptions& call) {
  if (name.empty()) return absl::InvalidArgumentError("Delete: empty name");
  json::object body{{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (!options.propagation_policy.empty()) {
    body["propagationPolicy"] = options.propagation_policy;
  }
  if (!options.precondition_uid.empty() || !options.precondition_resource_version.empty()) {
    json::object pre;
    if (!options.precondition_uid.empty()) pre["uid"] = options.precondition_uid;
    if (!options.precondition_resource_version.empty()) {
      pre["resourceVersion"] = options.precondition_resource_version;
    }
    body["preconditions"] = std::move(pre);
  }
  return impl_->Request("DELETE", PathFor(type, ns, name), JsonSerialize(body), "application/json",
                        call);
}

absl::StatusOr<json::value> Client::GetSubresource(const ResourceType& type, std::string_view ns,
                                                   std::string_view name,
                                                   std::string_view subresource,
                                                   const CallOptions& call) {
  if (name.empty() || subresource.empty()) {
    return absl::InvalidArgumentError("GetSubresource: empty name or subresource");
  }
  return impl_->Request("GET", PathFor(type, ns, name, subresource), {}, {}, call);
}

absl::StatusOr<json::value> Client::UpdateSubresource(const ResourceType& type, std::string_view ns,
                                                      std::string_view name,
                                                      std::string_view subresource,
                                                      const json::value& object,
                                                      const CallOptions& call) {
  if (name.empty() || subresource.empty()) {
    return absl::InvalidArgumentError("UpdateSubresource: empty name or subresource");
  }
  return impl_->Request("PUT", PathFor(type, ns, name, subresource), JsonSerialize(object),
                        "application/json", call);
}

absl::StatusOr<json::value> Client::GetScale(const ResourceType& type, std::string_view ns,
                                             std::string_view name, const CallOptions& call) {
  return GetSubresource(type, ns, name, "scale", call);
}

absl::StatusOr<json::value> Client::UpdateScale(const ResourceType& type, std::string_view ns,
                                                std::string_view name, int32_t replicas,
                                                std::string_view resource_version,
                                                const CallOptions& call) {
  if (replicas < 0) return absl::InvalidArgumentError("UpdateScale: negative replicas");
  // autoscaling/v1 Scale (k8s.io/api/autoscaling/v1/types.go).
  json::object meta{{"name", name}};
  if (type.namespaced) meta["namespace"] = ns;
  if (!resource_version.empty()) meta["resourceVersion"] = resource_version;
  const json::value scale = {{"apiVersion", "autoscaling/v1"},
                             {"kind", "Scale"},
                             {"metadata", std::move(meta)},
                             {"spec", {{"replicas", replicas}}}};
  return UpdateSubresource(type, ns, name, "scale", scale, call);
}

absl::Status Client::Bind(std::string_view ns, std::string_view pod_name,
                          std::string_view node_name, std::string_view pod_uid,
                          const std::map<std::string, std::string>& annotations,
                          const CallOptions& call) {
  if (pod_name.empty() || node_name.empty()) {
    return absl::InvalidArgumentError("Bind: empty pod or node name");
  }
  // v1 Binding, as kube-scheduler's DefaultBinder posts it (pkg/scheduler/framework/plugins/
  // defaultbinder): metadata names the pod (and its UID), target the node.
  json::object meta{{"name", pod_name}, {"namespace", ns}};
  if (!pod_uid.empty()) meta["uid"] = pod_uid;
  if (!annotations.empty()) {
    json::object a;
    for (const auto& [k, v] : annotations) a[k] = v;
    meta["annotations"] = std::move(a);
  }
  const json::value binding = {
      {"apiVersion", "v1"},
      {"kind", "Binding"},
      {"metadata", std::move(meta)},
      {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node_name}}}};
  return impl_
      ->Request("POST", PathFor(resources::kPods, ns, pod_name, "binding"), JsonSerialize(binding),
                "application/json", call)
      .status();
}

absl::StatusOr<json::value> Client::CreateEvent(const EventSpec& spec, const CallOptions& call) {
  if (!spec.involved.is_object() || NameOf(spec.involved).empty()) {
    return absl::InvalidArgumentError("CreateEvent: the involved object needs metadata.name");
  }
  if (spec.reason.empty()) return absl::InvalidArgumentError("CreateEvent: empty reason");
  const auto& inv = spec.involved.get_object();
  auto str = [&](std::string_view key) -> std::string_view {
    const auto* v = inv.if_contains(key);
    return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
  };
  json::object ref{
      {"apiVersion", str("apiVersion")}, {"kind", str("kind")}, {"name", NameOf(spec.involved)}};
  const std::string_view involved_ns = NamespaceOf(spec.involved);
  if (!involved_ns.empty()) ref["namespace"] = involved_ns;
  if (!UidOf(spec.involved).empty()) ref["uid"] = UidOf(spec.involved);
  if (!ResourceVersionOf(spec.involved).empty()) {
    ref["resourceVersion"] = ResourceVersionOf(spec.involved);
  }
  const std::string ns = involved_ns.empty() ? "default" : std::string(involved_ns);
  const auto now = std::chrono::system_clock::now();
  // The event name scheme of client-go's recorder (tools/record/event.go): name.<hex nanos>.
  char suffix[32];
  std::snprintf(
      suffix, sizeof(suffix), "%llx",
      static_cast<unsigned long long>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count()));
  const std::string stamp = FormatTime(now);
  json::object event{
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"name", StrCat(NameOf(spec.involved), ".", suffix)}, {"namespace", ns}}},
      {"involvedObject", std::move(ref)},
      {"reason", spec.reason},
      {"message", spec.message},
      {"type", spec.type},
      {"source", {{"component", spec.component}}},
      {"reportingComponent", spec.component},
      {"reportingInstance", spec.component},
      {"firstTimestamp", stamp},
      {"lastTimestamp", stamp},
      {"eventTime", nullptr},
      {"count", 1}};
  if (!spec.action.empty()) event["action"] = spec.action;
  return Create(resources::kEvents, ns, json::value(std::move(event)), call);
}

absl::Status Client::Watch(const ResourceType& type, std::string_view ns,
                           const ListOptions& options, const WatchCallback& on_event,
                           std::stop_token stop, Duration idle_timeout) {
  return impl_->Watch(type, ns, options, on_event, stop, idle_timeout);
}

std::string FormatMicroTime(std::chrono::system_clock::time_point t) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  long frac = static_cast<long>(micros % 1000000);
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  const std::string micro = FormatMicroTime(std::chrono::floor<std::chrono::seconds>(t));
  return micro.substr(0, 19) + "Z";
}

absl::StatusOr<std::chrono::system_clock::time_point> ParseTime(std::string_view text) {
  int y, mo, d, h, mi, s, n = 0;
  if (text.size() < 20 ||
      std::sscanf(std::string(text.substr(0, 19)).c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d,
                  &h, &mi, &s, &n) != 6 ||
      n != 19) {
    return absl::InvalidArgumentError(StrCat("not an RFC 3339 time: '", text, "'"));
  }
  std::string_view rest = text.substr(19);
  int64_t micros = 0;
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits < 6) micros = micros * 10 + (rest.front() - '0');
      ++digits;
      rest.remove_prefix(1);
    }
    if (digits == 0) return absl::InvalidArgumentError(StrCat("bad fraction in '", text, "'"));
    for (int i = digits; i < 6; ++i) micros *= 10;
  }
  int offset_s = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &oh, &om) != 2) {
      return absl::InvalidArgumentError(StrCat("bad offset in '", text, "'"));
    }
    offset_s = (oh * 3600 + om * 60) * (rest[0] == '-' ? -1 : 1);
  } else {
    return absl::InvalidArgumentError(StrCat("bad time zone in '", text, "'"));
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  const std::time_t secs = timegm(&tm) - offset_s;
  return std::chrono::system_clock::time_point(std::chrono::seconds(secs)) +
         std::chrono::microseconds(micros);
}

}  // namespace galley::kube
