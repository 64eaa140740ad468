#include "kubesched/convert.h"

#include "boost/json.hpp"
#include "gtest/gtest.h"

namespace galley::kubesched {
namespace {

namespace json = boost::json;

json::value Parse(std::string_view text) { return json::parse(text); }

TEST(QuantityTest, ParsesEverySuffixAndRoundsUp) {
  struct Row {
    const char* text;
    int64_t milli;
  };
  const Row rows[] = {
      {"1", 1000},      {"500m", 500},       {"0.5", 500},     {"1.5", 1500}, {"2k", 2000000},
      {"1Ki", 1024000}, {"1Mi", 1048576000}, {"1e3", 1000000}, {"1E-3", 1},   {"100u", 1},
      {"0.1", 100},     {"+3", 3000},        {"1n", 1},        {"0", 0},      {"1G", 1000000000000},
  };
  for (const Row& r : rows) {
    auto q = ParseQuantityMilli(r.text);
    ASSERT_TRUE(q.ok()) << r.text << ": " << q.status();
    EXPECT_EQ(*q, r.milli) << r.text;
  }
  EXPECT_EQ(*ParseQuantityValue("1Gi"), int64_t{1} << 30);
  EXPECT_EQ(*ParseQuantityValue("1500m"), 2);  // Value() rounds up
  for (const char* bad : {"", "m", "1.2.3", "12Q", "1e", "abc", "1 Gi", "--1"}) {
    auto q = ParseQuantityMilli(bad);
    ASSERT_FALSE(q.ok()) << "'" << bad << "'";
    EXPECT_NE(q.status().message().find("not a quantity"), std::string::npos) << q.status();
  }
}

TEST(NodeFromJsonTest, ReadsAllocatableGpusLabelsAndTaints) {
  auto node = NodeFromJson(Parse(R"({
    "metadata": {"name": "gpu-1", "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
                 "nvidia.com/gpu.memory": "81920", "galley.dev/node-pool": "a100"}},
    "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
    "status": {"allocatable": {"cpu": "31500m", "memory": "250Gi", "nvidia.com/gpu": "8",
                               "pods": "110"}}})"));
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->name, "gpu-1");
  EXPECT_EQ(node->pool, "a100");
  EXPECT_EQ(node->cpu_milli, 31500);
  EXPECT_EQ(node->memory_mib, 250 * 1024);
  ASSERT_EQ(node->gpus.size(), 8u);
  EXPECT_EQ(node->gpus[3].model, "NVIDIA-A100-SXM4-80GB");
  EXPECT_EQ(node->gpus[3].memory_mib, 81920);
  ASSERT_EQ(node->taints.size(), 1u);
  EXPECT_EQ(node->taints[0].effect, schedule::TaintEffect::kNoSchedule);
  EXPECT_NE(node->generation, 0u);

  auto cpu_only = NodeFromJson(Parse(
      R"({"metadata": {"name": "c"}, "status": {"allocatable": {"cpu": "4", "memory": "1000Ki"}}})"));
  ASSERT_TRUE(cpu_only.ok());
  EXPECT_TRUE(cpu_only->gpus.empty());
  EXPECT_EQ(cpu_only->memory_mib, 0);  // rounded down
  EXPECT_TRUE(NodeSchedulable(Parse(R"({"spec": {}})")));
  EXPECT_FALSE(NodeSchedulable(Parse(R"({"spec": {"unschedulable": true}})")));
}

TEST(NodeFromJsonTest, BadNodesSayWhatIsWrong) {
  struct Row {
    const char* json;
    const char* needle;
  };
  const Row rows[] = {
      {R"({"status": {}})", "metadata is missing"},
      {R"({"metadata": {}})", "metadata.name is missing"},
      {R"({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "lots"}}})", "cpu"},
      {R"({"metadata": {"name": "n", "labels": {"a": 1}}})", "labels.a must be a string"},
      {R"({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}})",
       "unknown taint effect"},
      {R"({"metadata": {"name": "n", "labels": {"nvidia.com/gpu.memory": "lots"}},
           "status": {"allocatable": {"nvidia.com/gpu": "1"}}})",
       "nvidia.com/gpu.memory"},
  };
  for (const Row& r : rows) {
    auto node = NodeFromJson(Parse(r.json));
    ASSERT_FALSE(node.ok()) << r.json;
    EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(node.status().message().find(r.needle), std::string::npos) << node.status();
  }
}

TEST(PodFromJsonTest, SumsContainersAndReadsWholeGpus) {
  auto pod = PodFromJson(Parse(R"({
    "metadata": {"name": "p", "namespace": "ml", "labels": {"app": "llm"}},
    "spec": {"containers": [
        {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "1Gi"},
                                    "limits": {"nvidia.com/gpu": "2"}}},
        {"name": "b", "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}],
      "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "4"}}}],
      "nodeSelector": {"galley.dev/node-pool": "a100"},
      "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}})"));
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->name, "ml/p");
  EXPECT_EQ(pod->cpu_milli, 4000);  // the init container's 4 cores beat 2.5
  EXPECT_EQ(pod->memory_mib, 1536);
  EXPECT_EQ(pod->gpu_count, 2);
  EXPECT_EQ(pod->gpu_milli, 1000);
  EXPECT_EQ(pod->node_selector.at("galley.dev/node-pool"), "a100");
  ASSERT_EQ(pod->tolerations.size(), 1u);
  EXPECT_EQ(pod->tolerations[0].op, schedule::TolerationOperator::kExists);
  EXPECT_EQ(pod->labels.at("app"), "llm");
}

TEST(PodFromJsonTest, FractionalGpusAffinityAndModels) {
  auto pod = PodFromJson(Parse(R"({
    "metadata": {"name": "s", "namespace": "d", "annotations": {
        "gpu.galley.dev/milli": "250", "gpu.galley.dev/models": "A100, V100"}},
    "spec": {"containers": [{"name": "c"}],
      "affinity": {
        "nodeAffinity": {
          "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]},
          "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 20, "preference": {"matchExpressions": [{"key": "fast", "operator": "Exists"}]}}]},
        "podAntiAffinity": {
          "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "s"}}, "topologyKey": "kubernetes.io/hostname"}],
          "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 5, "podAffinityTerm": {"labelSelector": {"matchExpressions": [
               {"key": "tier", "operator": "NotIn", "values": ["x"]}]}, "topologyKey": "zone"}}]}}}})"));
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->gpu_count, 1);
  EXPECT_EQ(pod->gpu_milli, 250);
  EXPECT_TRUE(pod->SharesGpu());
  EXPECT_EQ(pod->gpu_models, (std::vector<std::string>{"A100", "V100"}));
  ASSERT_EQ(pod->required_node_affinity.size(), 1u);
  EXPECT_EQ(pod->required_node_affinity[0].match_expressions[0].values.size(), 2u);
  ASSERT_EQ(pod->preferred_node_affinity.size(), 1u);
  EXPECT_EQ(pod->preferred_node_affinity[0].weight, 20);
  ASSERT_EQ(pod->required_anti_affinity.size(), 1u);
  EXPECT_EQ(pod->required_anti_affinity[0].selector.match_labels.at("app"), "s");
  ASSERT_EQ(pod->preferred_anti_affinity.size(), 1u);
  EXPECT_EQ(pod->preferred_anti_affinity[0].term.topology_key, "zone");

  auto memory = PodFromJson(Parse(R"({"metadata": {"name": "m", "namespace": "d",
      "annotations": {"gpu.galley.dev/memory-mib": "8192"}}, "spec": {"containers": []}})"));
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_EQ(memory->gpu_count, 1);
  EXPECT_EQ(memory->gpu_memory_mib, 8192);
}

TEST(PodFromJsonTest, BadPodsSayWhatIsWrong) {
  struct Row {
    const char* json;
    const char* needle;
  };
  const Row rows[] = {
      {R"({"metadata": {"name": "p", "namespace": "d"}})", "spec is missing"},
      {R"({"metadata": {"name": "p", "namespace": "d", "annotations": {"gpu.galley.dev/milli": "1500"}},
           "spec": {}})",
       "gpu.galley.dev/milli must be an integer in [1, 1000]"},
      {R"({"metadata": {"name": "p", "namespace": "d", "annotations": {"gpu.galley.dev/milli": "half"}},
           "spec": {}})",
       "not 'half'"},
      {R"({"metadata": {"name": "p", "namespace": "d", "annotations": {"gpu.galley.dev/milli": "500"}},
           "spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]}})",
       "use one"},
      {R"({"metadata": {"name": "p", "namespace": "d"},
           "spec": {"containers": [{"resources": {"requests": {"nvidia.com/gpu": "500m"}}}]}})",
       "whole GPUs"},
      {R"({"metadata": {"name": "p", "namespace": "d"},
           "spec": {"containers": [{"resources": {"requests": {"cpu": "fast"}}}]}})",
       "spec.containers[0].resources.requests.cpu"},
      {R"({"metadata": {"name": "p", "namespace": "d"}, "spec": {"tolerations": [{"operator": "Maybe"}]}})",
       "unknown operator"},
      {R"({"metadata": {"name": "p", "namespace": "d"}, "spec": {"affinity": {"podAntiAffinity": {
           "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}}}})",
       "topologyKey is required"},
  };
  for (const Row& r : rows) {
    auto pod = PodFromJson(Parse(r.json));
    ASSERT_FALSE(pod.ok()) << r.json;
    EXPECT_EQ(pod.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(pod.status().message().find(r.needle), std::string::npos) << pod.status();
  }
}

TEST(BoundPodTest, ReadsNodeAndAssignedGpus) {
  EXPECT_FALSE(BoundPodFromJson(Parse(R"({"spec": {}})")).has_value());
  auto b =
      BoundPodFromJson(Parse(R"({"metadata": {"annotations": {"gpu.galley.dev/assigned": "1,3"}},
                                     "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})"));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->node, "n1");
  EXPECT_EQ(b->gpu_indices, (std::vector<int>{1, 3}));
  EXPECT_FALSE(
      BoundPodFromJson(Parse(R"({"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}})"))
          .has_value());
  EXPECT_EQ(*ParseGpuIndices("0,2,7"), (std::vector<int>{0, 2, 7}));
  EXPECT_EQ(FormatGpuIndices({0, 2, 7}), "0,2,7");
  for (const char* bad : {"1,", "a", "-1", "1;2"}) EXPECT_FALSE(ParseGpuIndices(bad).ok()) << bad;
}

}  // namespace
}  // namespace galley::kubesched
