#include "kubeop/desired.h"

#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "gtest/gtest.h"

namespace galley::kubeop {
namespace {

namespace json = boost::json;

json::value Model(const char* spec) {
  return json::parse(std::string(R"({"apiVersion":"galley.dev/v1alpha1","kind":"InferenceModel",
    "metadata":{"name":"sentiment","namespace":"ml","uid":"u-1","generation":3},
    "spec":)") + spec +
                     "}");
}

const json::value& At(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (std::string_view k : path) cur = &cur->as_object().at(k);
  return *cur;
}

TEST(DesiredChildrenTest, DeploymentServiceAndBudgetAreOwnedAndSelectTheModelsPods) {
  auto c = DesiredChildren(Model(R"({"model":{"name":"sentiment","format":"onnx"},"replicas":2,
      "resources":{"cpu":"2","memory":"2Gi","gpus":1,"gpuMilli":500},
      "drainDelaySeconds":5,"gracePeriodSeconds":30,"failoverTolerationSeconds":20,
      "disruptionBudget":{"maxUnavailable":"25%"},"schedulerName":"galley"})"));
  ASSERT_TRUE(c.ok()) << c.status();
  for (const json::value* child : {&c->deployment, &c->service, &c->pdb}) {
    const json::value& owner = At(*child, {"metadata", "ownerReferences"}).as_array().at(0);
    EXPECT_EQ(owner.at("uid"), "u-1");
    EXPECT_EQ(owner.at("controller"), true);
    EXPECT_EQ(At(*child, {"metadata", "namespace"}), "ml");
    EXPECT_EQ(At(*child, {"metadata", "labels", kModelLabel}), "sentiment");
  }
  const json::value& d = c->deployment;
  EXPECT_EQ(At(d, {"spec", "replicas"}), 2);
  EXPECT_EQ(At(d, {"spec", "selector", "matchLabels", kModelLabel}), "sentiment");
  const json::value& pod = At(d, {"spec", "template", "spec"});
  EXPECT_EQ(pod.at("schedulerName"), "galley");
  EXPECT_EQ(pod.at("terminationGracePeriodSeconds"), 35);  // grace + drain
  const json::array& tol = pod.at("tolerations").as_array();
  ASSERT_EQ(tol.size(), 2u);
  EXPECT_EQ(tol[0].at("key"), "node.kubernetes.io/unreachable");
  EXPECT_EQ(tol[0].at("tolerationSeconds"), 20);
  const json::value& container = pod.at("containers").as_array().at(0);
  EXPECT_EQ(At(container, {"resources", "limits", "nvidia.com/gpu"}), "1");
  EXPECT_EQ(At(container, {"startupProbe", "httpGet", "path"}), "/v2/health/live");
  EXPECT_EQ(At(container, {"readinessProbe", "httpGet", "path"}), "/v2/health/ready");
  EXPECT_EQ(At(d, {"spec", "template", "metadata", "annotations", "gpu.galley.dev/milli"}), "500");
  EXPECT_EQ(At(c->pdb, {"spec", "maxUnavailable"}), "25%");
  EXPECT_EQ(At(c->service, {"spec", "ports"}).as_array().size(), 2u);
  EXPECT_EQ(Selector(Model("{}")), "galley.dev/inferencemodel=sentiment");
}

TEST(DesiredChildrenTest, AModelTheImageCannotServeIsAnInvalidSpec) {
  auto c = DesiredChildren(Model(R"({"model":{"name":"m","source":"s3://bucket/m"}})"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("s3://bucket/m"), std::string::npos) << c.status();
}

TEST(DesiredChildrenTest, AModelFromOutsideTheImageIsFetchedByAnInitContainer) {
  auto c =
      DesiredChildren(Model(R"({"model":{"name":"clf","source":"https://models.example/clf.onnx",
      "version":"4","sha256":"ab"},"batching":{"maxBatchSize":8,"maxQueueDelayMicroseconds":100},
      "image":"registry.example/galley:1"})"));
  ASSERT_TRUE(c.ok()) << c.status();
  const json::value& pod = At(c->deployment, {"spec", "template", "spec"});
  const json::value& init = pod.at("initContainers").as_array().at(0);
  EXPECT_EQ(init.at("image"), "registry.example/galley:1");
  EXPECT_EQ(
      json::serialize(init.at("args")),
      R"(["model","fetch","--source","https://models.example/clf.onnx","--name","clf",)"
      R"("--version","4","--dest","/models-fetched","--cache","/cache","--max-batch-size","8",)"
      R"("--max-queue-delay-us","100","--sha256","ab"])");
  EXPECT_EQ(init.at("terminationMessagePolicy"), "FallbackToLogsOnError");
  const json::value& server = pod.at("containers").as_array().at(0);
  const std::string args = json::serialize(server.at("args"));
  EXPECT_NE(args.find(R"("--model-repository","/models-fetched")"), std::string::npos) << args;
  EXPECT_EQ(
      json::serialize(server.at("volumeMounts")),
      R"([{"name":"tmp","mountPath":"/tmp"},{"name":"model","mountPath":"/models-fetched","readOnly":true}])");
  std::string volumes = json::serialize(pod.at("volumes"));
  EXPECT_NE(
      volumes.find(
          R"({"name":"model-cache","hostPath":{"path":"/var/cache/galley/models","type":"DirectoryOrCreate"}})"),
      std::string::npos)
      << volumes;

  // A claim is mounted read-only where the fetch looks for it.
  c = DesiredChildren(
      Model(R"({"model":{"name":"clf","source":"pvc://models-pvc/clf/model.onnx"}})"));
  ASSERT_TRUE(c.ok()) << c.status();
  const json::value& pvc_pod = At(c->deployment, {"spec", "template", "spec"});
  volumes = json::serialize(pvc_pod.at("volumes"));
  EXPECT_NE(
      volumes.find(
          R"({"name":"model-source","persistentVolumeClaim":{"claimName":"models-pvc","readOnly":true}})"),
      std::string::npos)
      << volumes;
  const std::string init_args =
      json::serialize(pvc_pod.at("initContainers").as_array().at(0).at("args"));
  EXPECT_NE(init_args.find(R"("--pvc-root","/mnt/pvc")"), std::string::npos) << init_args;

  // VADER is compiled in: it has no source to fetch.
  c = DesiredChildren(Model(R"({"model":{"name":"v","format":"vader","source":"file:///m/v"}})"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("builtin:"), std::string::npos);
}

json::value Pod(const char* name, bool ready, const char* node, const char* extra_status = "") {
  return json::parse(
      std::string(R"({"metadata":{"name":")") + name +
      R"(","labels":{"galley.dev/inferencemodel":"sentiment"}},"spec":{"nodeName":")" + node +
      R"("},"status":{"conditions":[{"type":"Ready","status":")" + (ready ? "True" : "False") +
      "\"}]" + extra_status + "}}");
}

std::string ConditionOf(const json::value& status, const char* type, const char* field) {
  for (const json::value& c : status.at("conditions").as_array()) {
    if (c.at("type") == type) return std::string(c.at(field).as_string());
  }
  return "missing";
}

TEST(ComputeStatusTest, ReadyWhenEveryReplicaIsReadyAndTheRolloutIsCurrent) {
  const json::value model = Model(R"({"model":{"name":"sentiment","version":"7"},"replicas":2})");
  const json::value deployment = json::parse(
      R"({"metadata":{"generation":4},"status":{"observedGeneration":4,"updatedReplicas":2}})");
  json::value s = ComputeStatus(model, deployment, {Pod("a", true, "n1"), Pod("b", true, "n2")}, {},
                                "", "2026-12-04T00:00:00Z");
  EXPECT_EQ(s.at("observedGeneration"), 3);
  EXPECT_EQ(s.at("readyReplicas"), 2);
  EXPECT_EQ(s.at("activeModelVersion"), "7");
  EXPECT_EQ(ConditionOf(s, "Ready", "status"), "True");
  EXPECT_EQ(ConditionOf(s, "Degraded", "status"), "False");
  EXPECT_EQ(s.at("placements").as_array().size(), 2u);

  // One replica's node stopped reporting and its pod is not ready: not Ready, NodeLost.
  s = ComputeStatus(model, deployment, {Pod("a", true, "n1"), Pod("b", false, "n2")}, {"n2"}, "",
                    "2026-12-04T00:01:00Z");
  EXPECT_EQ(ConditionOf(s, "Ready", "status"), "False");
  EXPECT_EQ(ConditionOf(s, "Ready", "reason"), "NodeLost");
  EXPECT_EQ(ConditionOf(s, "Degraded", "reason"), "NodeLost");
  EXPECT_EQ(ConditionOf(s, "Available", "status"), "True");
}

TEST(ComputeStatusTest, ACrashingModelLoadShowsInTheStatusAndTransitionTimesAreKept) {
  json::value model = Model(R"({"model":{"name":"sentiment"},"replicas":1})");
  const char* crash =
      R"(,"containerStatuses":[{"name":"galley","state":{"waiting":{"reason":"CrashLoopBackOff"}},
      "lastState":{"terminated":{"message":"model 'sentiment' failed to load: bad file"}}}])";
  json::value s = ComputeStatus(model, std::nullopt, {Pod("a", false, "n1", crash)}, {}, "",
                                "2026-12-04T00:00:00Z");
  EXPECT_EQ(ConditionOf(s, "ModelLoaded", "status"), "False");
  EXPECT_EQ(ConditionOf(s, "Ready", "reason"), "ModelLoadFailed");
  EXPECT_EQ(s.at("lastModelLoadFailure"), "model 'sentiment' failed to load: bad file");
  model.as_object()["status"] = s;
  json::value later = ComputeStatus(model, std::nullopt, {Pod("a", false, "n1", crash)}, {}, "",
                                    "2026-12-04T00:05:00Z");
  EXPECT_EQ(ConditionOf(later, "Ready", "lastTransitionTime"), "2026-12-04T00:00:00Z");
}

TEST(ComputeStatusTest, AFailedFetchShowsItsReason) {
  const char* failed =
      R"(,"initContainerStatuses":[{"name":"fetch-model","state":{"waiting":{"reason":"CrashLoopBackOff"}},
      "lastState":{"terminated":{"exitCode":1,"message":"sha256 of https://m/clf.onnx is 00, the resource says ab"}}}])";
  const json::value s =
      ComputeStatus(Model(R"({"model":{"name":"clf"},"replicas":1})"), std::nullopt,
                    {Pod("a", false, "n1", failed)}, {}, "", "2026-12-04T00:00:00Z");
  EXPECT_EQ(ConditionOf(s, "Ready", "reason"), "ModelFetchFailed");
  EXPECT_EQ(ConditionOf(s, "ModelLoaded", "status"), "False");
  EXPECT_EQ(ConditionOf(s, "ModelLoaded", "reason"), "ModelFetchFailed");
  EXPECT_EQ(s.at("lastModelLoadFailure"),
            "sha256 of https://m/clf.onnx is 00, the resource says ab");
}

TEST(ComputeStatusTest, AnInvalidSpecIsACondition) {
  const json::value s = ComputeStatus(Model(R"({"model":{"name":"m"}})"), std::nullopt, {}, {},
                                      "model.source 'x' cannot be served", "2026-12-04T00:00:00Z");
  EXPECT_EQ(ConditionOf(s, "Ready", "reason"), "InvalidSpec");
  EXPECT_EQ(ConditionOf(s, "Ready", "message"), "model.source 'x' cannot be served");
}

}  // namespace
}  // namespace galley::kubeop
