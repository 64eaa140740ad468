#include "kubeop/desired.h"

#include <algorithm>

#include "boost/json/array.hpp"
#include "boost/json/object.hpp"
#include "common/strings.h"

namespace galley::kubeop {
namespace {

namespace json = boost::json;

// The value at `path` under `v`, or nullptr.
const json::value* At(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (std::string_view key : path) {
    if (!cur->is_object()) return nullptr;
    cur = cur->as_object().if_contains(key);
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

std::string Str(const json::value& v, std::initializer_list<std::string_view> path,
                std::string fallback = "") {
  const json::value* x = At(v, path);
  return x != nullptr && x->is_string() ? std::string(x->as_string()) : fallback;
}

int64_t Int(const json::value& v, std::initializer_list<std::string_view> path, int64_t fallback) {
  const json::value* x = At(v, path);
  if (x == nullptr) return fallback;
  if (x->is_int64()) return x->as_int64();
  if (x->is_uint64()) return static_cast<int64_t>(x->as_uint64());
  if (x->is_double()) return static_cast<int64_t>(x->as_double());
  return fallback;
}

json::object Labels(const json::value& model) {
  return {{"app.kubernetes.io/name", "galley"},
          {"app.kubernetes.io/component", "model-server"},
          {"app.kubernetes.io/instance", Str(model, {"metadata", "name"})},
          {"app.kubernetes.io/managed-by", kFieldManager},
          {kModelLabel, Str(model, {"metadata", "name"})}};
}

json::object Metadata(const json::value& model, std::string_view api_version,
                      std::string_view kind) {
  json::object owner{{"apiVersion", "galley.dev/v1alpha1"},
                     {"kind", "InferenceModel"},
                     {"name", Str(model, {"metadata", "name"})},
                     {"uid", Str(model, {"metadata", "uid"})},
                     {"controller", true},
                     {"blockOwnerDeletion", true}};
  return {{"apiVersion", api_version},
          {"kind", kind},
          {"metadata", json::object{{"name", Str(model, {"metadata", "name"})},
                                    {"namespace", Str(model, {"metadata", "namespace"})},
                                    {"labels", Labels(model)},
                                    {"ownerReferences", json::array{owner}}}}};
}

json::object HttpProbe(std::string_view path, int period, int failures) {
  return {{"httpGet", json::object{{"path", path}, {"port", "http"}}},
          {"periodSeconds", period},
          {"timeoutSeconds", 2},
          {"failureThreshold", failures}};
}

}  // namespace

std::string Selector(const json::value& model) {
  return StrCat(kModelLabel, "=", Str(model, {"metadata", "name"}));
}

absl::StatusOr<Children> DesiredChildren(const json::value& model) {
  const json::value empty = json::object{};
  const json::value& spec = At(model, {"spec"}) != nullptr ? *At(model, {"spec"}) : empty;
  const std::string name = Str(model, {"metadata", "name"});
  const std::string model_name = Str(spec, {"model", "name"}, name);
  const std::string source = Str(spec, {"model", "source"}, "builtin:");
  const std::string format = Str(spec, {"model", "format"}, "onnx");
  const int64_t drain_s = Int(spec, {"drainDelaySeconds"}, 5);
  const int64_t grace_s = Int(spec, {"gracePeriodSeconds"}, 30);
  const int64_t failover_s = Int(spec, {"failoverTolerationSeconds"}, 30);

  // What the server loads. Only models that ship inside the image are served without a fetch.
  std::vector<std::string> args = {"serve",
                                   "--listen",
                                   StrCat("0.0.0.0:", kHttpPort),
                                   "--grpc-port",
                                   StrCat(kGrpcPort),
                                   "--model",
                                   model_name,
                                   "--drain-delay-ms",
                                   StrCat(drain_s * 1000),
                                   "--grace-period-ms",
                                   StrCat(grace_s * 1000),
                                   "--max-batch-size",
                                   StrCat(Int(spec, {"batching", "maxBatchSize"}, 32)),
                                   "--default-timeout-ms",
                                   StrCat(Int(spec, {"requestTimeoutSeconds"}, 30) * 1000)};
  // The volumes and mounts of the server, and the init container that fetches a model that is
  // not in the image.
  json::array volumes{json::object{{"name", "tmp"}, {"emptyDir", json::object{}}}};
  json::array server_mounts{json::object{{"name", "tmp"}, {"mountPath", "/tmp"}}};
  json::array init_containers;
  if (source == "builtin:") {
    if (format == "vader") {
      args.insert(args.end(), {"--model-repository", ""});
    } else {
      args.insert(args.end(), {"--model-repository", "/models"});
    }
  } else {
    const bool pvc = source.starts_with("pvc://");
    if (!pvc && !source.starts_with("file:///") && !source.starts_with("http://") &&
        !source.starts_with("https://")) {
      return absl::InvalidArgumentError(StrCat("model.source '", source,
                                               "' is not builtin:, file:///PATH, pvc://CLAIM/PATH, "
                                               "http:// or https://"));
    }
    if (format == "vader") {
      return absl::InvalidArgumentError(
          "model.format vader is built in: its source must be builtin:");
    }
    args.insert(args.end(), {"--model-repository", kFetchedModels});
    json::array fetch_args{"model",
                           "fetch",
                           "--source",
                           source,
                           "--name",
                           model_name,
                           "--version",
                           Str(spec, {"model", "version"}, "1"),
                           "--dest",
                           kFetchedModels,
                           "--cache",
                           "/cache",
                           "--max-batch-size",
                           Int(spec, {"batching", "maxBatchSize"}, 32),
                           "--max-queue-delay-us",
                           Int(spec, {"batching", "maxQueueDelayMicroseconds"}, 2000)};
    for (json::value& a : fetch_args) {
      if (a.is_int64()) a = json::string(StrCat(a.as_int64()));
    }
    if (std::string sha = Str(spec, {"model", "sha256"}); !sha.empty()) {
      fetch_args.insert(fetch_args.end(), {"--sha256", json::string(sha)});
    }
    json::array fetch_mounts{json::object{{"name", "model"}, {"mountPath", kFetchedModels}},
                             json::object{{"name", "model-cache"}, {"mountPath", "/cache"}}};
    volumes.push_back(json::object{{"name", "model"}, {"emptyDir", json::object{}}});
    // The node's cache, shared by every replica placed on it (by SHA-256).
    volumes.push_back(json::object{
        {"name", "model-cache"},
        {"hostPath", json::object{{"path", kNodeModelCache}, {"type", "DirectoryOrCreate"}}}});
    if (pvc) {
      const std::string_view rest = std::string_view(source).substr(6);
      const std::string claim(rest.substr(0, rest.find('/')));
      if (claim.empty())
        return absl::InvalidArgumentError(StrCat("model.source '", source, "' names no claim"));
      volumes.push_back(json::object{
          {"name", "model-source"},
          {"persistentVolumeClaim", json::object{{"claimName", claim}, {"readOnly", true}}}});
      fetch_mounts.push_back(
          json::object{{"name", "model-source"}, {"mountPath", "/mnt/pvc"}, {"readOnly", true}});
      fetch_args.insert(fetch_args.end(), {"--pvc-root", "/mnt/pvc"});
    }
    init_containers.push_back(json::object{
        {"name", "fetch-model"},
        {"image", Str(spec, {"image"}, "galley:dev")},
        {"args", std::move(fetch_args)},
        {"volumeMounts", std::move(fetch_mounts)},
        // The reason of a failed fetch goes to the status (lastModelLoadFailure).
        {"terminationMessagePolicy", "FallbackToLogsOnError"},
        {"resources",
         json::object{{"requests", json::object{{"cpu", "100m"}, {"memory", "64Mi"}}}}},
        {"securityContext", json::object{{"runAsNonRoot", true},
                                         {"readOnlyRootFilesystem", true},
                                         {"allowPrivilegeEscalation", false}}}});
    server_mounts.push_back(
        json::object{{"name", "model"}, {"mountPath", kFetchedModels}, {"readOnly", true}});
  }

  json::object requests{{"cpu", Str(spec, {"resources", "cpu"}, "1")},
                        {"memory", Str(spec, {"resources", "memory"}, "1Gi")}};
  json::object limits{{"memory", Str(spec, {"resources", "memory"}, "1Gi")}};
  if (const int64_t gpus = Int(spec, {"resources", "gpus"}, 0); gpus > 0) {
    limits["nvidia.com/gpu"] = StrCat(gpus);
  }
  json::array arg_array;
  for (const std::string& a : args) arg_array.emplace_back(a);
  json::object container{
      {"name", "galley"},
      {"image", Str(spec, {"image"}, "galley:dev")},
      {"args", std::move(arg_array)},
      {"ports", json::array{json::object{{"name", "http"}, {"containerPort", kHttpPort}},
                            json::object{{"name", "grpc"}, {"containerPort", kGrpcPort}}}},
      {"resources", json::object{{"requests", requests}, {"limits", limits}}},
      // A slow model load is not a failure: the startup probe allows ten minutes.
      {"startupProbe", HttpProbe("/v2/health/live", 5, 120)},
      {"readinessProbe", HttpProbe("/v2/health/ready", 5, 2)},
      {"livenessProbe", HttpProbe("/v2/health/live", 10, 3)},
      {"securityContext", json::object{{"runAsNonRoot", true},
                                       {"readOnlyRootFilesystem", true},
                                       {"allowPrivilegeEscalation", false}}}};

  // The user's tolerations, then the failover ones: a replica on an unreachable or not-ready
  // node is evicted after failoverTolerationSeconds instead of Kubernetes' 300.
  json::array tolerations;
  if (const json::value* t = At(spec, {"tolerations"}); t != nullptr && t->is_array()) {
    for (const json::value& x : t->as_array()) tolerations.push_back(x);
  }
  for (const char* key : {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"}) {
    tolerations.push_back(json::object{{"key", key},
                                       {"operator", "Exists"},
                                       {"effect", "NoExecute"},
                                       {"tolerationSeconds", failover_s}});
  }
  json::object pod_spec{{"schedulerName", Str(spec, {"schedulerName"}, "galley")},
                        {"terminationGracePeriodSeconds", grace_s + drain_s},
                        {"tolerations", std::move(tolerations)},
                        {"containers", json::array{std::move(container)}},
                        {"volumes", std::move(volumes)}};
  pod_spec["containers"].as_array()[0].as_object()["volumeMounts"] = std::move(server_mounts);
  if (!init_containers.empty()) pod_spec["initContainers"] = std::move(init_containers);
  if (const json::value* ns = At(spec, {"nodeSelector"}); ns != nullptr)
    pod_spec["nodeSelector"] = *ns;
  if (const json::value* a = At(spec, {"affinity"}); a != nullptr) pod_spec["affinity"] = *a;
  if (std::string pc = Str(spec, {"priorityClassName"}); !pc.empty())
    pod_spec["priorityClassName"] = pc;

  json::object pod_annotations;
  if (const int64_t milli = Int(spec, {"resources", "gpuMilli"}, 0); milli > 0) {
    pod_annotations["gpu.galley.dev/milli"] = StrCat(milli);
  }
  if (const int64_t mem = Int(spec, {"resources", "gpuMemoryMiB"}, 0); mem > 0) {
    pod_annotations["gpu.galley.dev/memory-mib"] = StrCat(mem);
  }
  json::object selector{{"matchLabels", json::object{{kModelLabel, name}}}};

  Children c;
  json::object deployment = Metadata(model, "apps/v1", "Deployment");
  deployment["spec"] = json::object{
      {"replicas", Int(spec, {"replicas"}, 1)},
      {"selector", selector},
      {"strategy",
       json::object{{"type", "RollingUpdate"},
                    {"rollingUpdate", json::object{{"maxUnavailable", 0}, {"maxSurge", 1}}}}},
      {"template", json::object{{"metadata", json::object{{"labels", Labels(model)},
                                                          {"annotations", pod_annotations}}},
                                {"spec", std::move(pod_spec)}}}};
  c.deployment = std::move(deployment);

  json::object service = Metadata(model, "v1", "Service");
  // The model's name as clients use it: the EndpointSlice controller copies a Service's labels
  // to its slices, and the gateway routes by it (kubefleet/endpoint_replicas.h).
  service["metadata"].as_object()["labels"].as_object()["galley.dev/model"] = model_name;
  service["spec"] = json::object{
      {"selector", json::object{{kModelLabel, name}}},
      {"ports",
       json::array{json::object{{"name", "http"}, {"port", kHttpPort}, {"targetPort", "http"}},
                   json::object{{"name", "grpc"}, {"port", kGrpcPort}, {"targetPort", "grpc"}}}}};
  c.service = std::move(service);

  json::object pdb = Metadata(model, "policy/v1", "PodDisruptionBudget");
  const json::value* mu = At(spec, {"disruptionBudget", "maxUnavailable"});
  pdb["spec"] = json::object{{"maxUnavailable", mu != nullptr ? *mu : json::value(1)},
                             {"selector", selector}};
  c.pdb = std::move(pdb);
  return c;
}

namespace {

struct Condition {
  std::string type, status, reason, message;
};

json::array Conditions(const json::value& model, const std::vector<Condition>& wanted,
                       int64_t generation, const std::string& now) {
  json::array out;
  for (const Condition& c : wanted) {
    std::string since = now;
    if (const json::value* old = At(model, {"status", "conditions"}); old && old->is_array()) {
      for (const json::value& o : old->as_array()) {
        if (Str(o, {"type"}) == c.type && Str(o, {"status"}) == c.status) {
          since = Str(o, {"lastTransitionTime"}, now);
        }
      }
    }
    out.push_back(json::object{{"type", c.type},
                               {"status", c.status},
                               {"reason", c.reason},
                               {"message", c.message},
                               {"observedGeneration", generation},
                               {"lastTransitionTime", since}});
  }
  return out;
}

bool PodReady(const json::value& pod) {
  const json::value* conds = At(pod, {"status", "conditions"});
  if (conds == nullptr || !conds->is_array()) return false;
  for (const json::value& c : conds->as_array()) {
    if (Str(c, {"type"}) == "Ready") return Str(c, {"status"}) == "True";
  }
  return false;
}

// Why a pod cannot run, if it says: "Unschedulable: <message>" or a container's waiting reason
// such as CrashLoopBackOff with its last termination message.
std::pair<std::string, std::string> PodTrouble(const json::value& pod) {
  if (const json::value* conds = At(pod, {"status", "conditions"}); conds && conds->is_array()) {
    for (const json::value& c : conds->as_array()) {
      if (Str(c, {"type"}) == "PodScheduled" && Str(c, {"status"}) == "False" &&
          Str(c, {"reason"}) == "Unschedulable") {
        return {"Unschedulable", Str(c, {"message"})};
      }
    }
  }
  // The init container that fetches the model: failed, or crash-looping on its failures.
  if (const json::value* cs = At(pod, {"status", "initContainerStatuses"}); cs && cs->is_array()) {
    for (const json::value& c : cs->as_array()) {
      const std::string waiting = Str(c, {"state", "waiting", "reason"});
      const int64_t exit_code = Int(c, {"state", "terminated", "exitCode"}, 0);
      if (waiting == "CrashLoopBackOff" || exit_code != 0) {
        std::string msg = Str(c, {"state", "terminated", "message"});
        if (msg.empty()) msg = Str(c, {"lastState", "terminated", "message"});
        return {"ModelFetchFailed", msg};
      }
    }
  }
  if (const json::value* cs = At(pod, {"status", "containerStatuses"}); cs && cs->is_array()) {
    for (const json::value& c : cs->as_array()) {
      const std::string waiting = Str(c, {"state", "waiting", "reason"});
      if (waiting == "CrashLoopBackOff" || waiting == "ErrImagePull" ||
          waiting == "ImagePullBackOff" || waiting == "CreateContainerConfigError") {
        std::string msg = Str(c, {"lastState", "terminated", "message"});
        if (msg.empty()) msg = Str(c, {"state", "waiting", "message"});
        return {waiting == "CrashLoopBackOff" ? "ModelLoadFailed" : waiting, msg};
      }
    }
  }
  return {};
}

}  // namespace

json::value ComputeStatus(const json::value& model, const std::optional<json::value>& deployment,
                          const std::vector<json::value>& pods,
                          const std::vector<std::string>& lost_nodes, const std::string& spec_error,
                          const std::string& now) {
  const int64_t generation = Int(model, {"metadata", "generation"}, 0);
  const int64_t desired = Int(model, {"spec", "replicas"}, 1);
  const std::string name = Str(model, {"metadata", "name"});
  const std::string ns = Str(model, {"metadata", "namespace"});
  int64_t ready = 0, running = 0;
  json::array placements;
  std::string trouble_reason, trouble_message;
  int64_t on_lost_nodes = 0;
  for (const json::value& p : pods) {
    if (At(p, {"metadata", "deletionTimestamp"}) != nullptr) continue;
    ++running;
    if (PodReady(p)) ++ready;
    const std::string node = Str(p, {"spec", "nodeName"});
    if (!node.empty()) {
      placements.push_back(
          json::object{{"pod", Str(p, {"metadata", "name"})},
                       {"node", node},
                       {"gpus", Str(p, {"metadata", "annotations", "gpu.galley.dev/assigned"})}});
      if (std::find(lost_nodes.begin(), lost_nodes.end(), node) != lost_nodes.end())
        ++on_lost_nodes;
    }
    if (trouble_reason.empty()) std::tie(trouble_reason, trouble_message) = PodTrouble(p);
  }
  const bool deployment_current =
      deployment && Int(*deployment, {"status", "observedGeneration"}, -1) >=
                        Int(*deployment, {"metadata", "generation"}, 0);
  const int64_t updated = deployment ? Int(*deployment, {"status", "updatedReplicas"}, 0) : 0;

  std::vector<Condition> conds;
  if (!spec_error.empty()) {
    conds = {{"Ready", "False", "InvalidSpec", spec_error},
             {"Available", "False", "InvalidSpec", spec_error},
             {"Progressing", "False", "InvalidSpec", spec_error},
             {"ModelLoaded", "Unknown", "InvalidSpec", spec_error},
             {"Degraded", "True", "InvalidSpec", spec_error}};
  } else {
    const bool all_ready = ready >= desired && deployment_current;
    std::string degraded_reason, degraded_message;
    if (on_lost_nodes > 0) {
      degraded_reason = "NodeLost";
      degraded_message = StrCat(on_lost_nodes, " replica(s) on nodes that stopped reporting");
    } else if (!trouble_reason.empty()) {
      degraded_reason = trouble_reason;
      degraded_message = trouble_message;
    }
    conds.push_back({"Ready", all_ready ? "True" : "False",
                     all_ready ? "AllReplicasReady"
                               : (degraded_reason.empty() ? "ReplicasNotReady" : degraded_reason),
                     StrCat(ready, " of ", desired, " replicas ready")});
    conds.push_back({"Available", ready > 0 || desired == 0 ? "True" : "False",
                     ready > 0      ? "MinimumReplicasAvailable"
                     : desired == 0 ? "ScaledToZero"
                                    : "NoReplicaReady",
                     StrCat(ready, " replicas answer")});
    const bool progressing = !deployment_current || updated < desired || running != desired;
    conds.push_back(
        {"Progressing", progressing ? "True" : "False", progressing ? "RollingOut" : "Complete",
         progressing ? StrCat(updated, " of ", desired, " replicas updated") : "rollout complete"});
    const bool load_failed =
        trouble_reason == "ModelLoadFailed" || trouble_reason == "ModelFetchFailed";
    conds.push_back({"ModelLoaded", ready > 0 ? "True" : (load_failed ? "False" : "Unknown"),
                     ready > 0 ? "Loaded" : (load_failed ? trouble_reason : "Waiting"),
                     ready > 0 ? "a replica loaded the model and answers" : trouble_message});
    conds.push_back({"Degraded", degraded_reason.empty() ? "False" : "True",
                     degraded_reason.empty() ? "AsExpected" : degraded_reason, degraded_message});
  }
  json::object status{{"observedGeneration", generation},
                      {"replicas", running},
                      {"readyReplicas", ready},
                      {"selector", Selector(model)},
                      {"url", StrCat("http://", name, ".", ns, ".svc:", kHttpPort)},
                      {"placements", std::move(placements)},
                      {"conditions", Conditions(model, conds, generation, now)}};
  if (ready > 0) status["activeModelVersion"] = Str(model, {"spec", "model", "version"}, "1");
  if (trouble_reason == "ModelLoadFailed" || trouble_reason == "ModelFetchFailed") {
    status["lastModelLoadFailure"] = trouble_message;
  }
  return status;
}

}  // namespace galley::kubeop
