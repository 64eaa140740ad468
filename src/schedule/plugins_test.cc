// Table-driven tests for the filter and score plugins, the GPU selectors, the registry and the
// framework's typed "no node fits" outcome.
#include <gtest/gtest.h>

#include <set>
#include <variant>

#include "schedule/fgd.h"
#include "schedule/filters.h"
#include "schedule/paper_policies.h"
#include "schedule/policy.h"
#include "schedule/scores.h"

namespace galley::schedule {
namespace {

Node GpuNode(std::string name, int gpus, std::vector<int> used = {}, int64_t cpu = 64000) {
  Node n;
  n.name = std::move(name);
  n.cpu_milli = cpu;
  n.memory_mib = 262144;
  for (int i = 0; i < gpus; ++i) {
    Gpu g{"A10", 24000, 0, 0};
    if (static_cast<size_t>(i) < used.size()) g.used_milli = used[static_cast<size_t>(i)];
    n.gpus.push_back(g);
  }
  return n;
}

Pod GpuPod(int count, int milli, int64_t cpu = 1000) {
  Pod p;
  p.name = "p";
  p.cpu_milli = cpu;
  p.memory_mib = 1024;
  p.gpu_count = count;
  p.gpu_milli = milli;
  return p;
}

std::optional<std::string> RunFilter(const Plugin& f, const Pod& pod, const Node& node) {
  ClusterSnapshot snap{{node}};
  CycleState state;
  f.PreFilter(pod, snap, state);
  return f.Filter(pod, node, state);
}

TEST(GpuFitTest, PerGpuSharesAndMemory) {
  struct Case {
    const char* name;
    Pod pod;
    Node node;
    bool fits;
  } cases[] = {
      {"share fits on a partly used GPU", GpuPod(1, 500), GpuNode("n", 2, {600, 500}), true},
      {"share too big for every GPU", GpuPod(1, 600), GpuNode("n", 2, {600, 500}), false},
      {"shares do not add across GPUs", GpuPod(1, 800), GpuNode("n", 2, {500, 500}), false},
      {"two whole GPUs need two free ones", GpuPod(2, 1000), GpuNode("n", 3, {100, 0, 0}), true},
      {"one free GPU is not two", GpuPod(2, 1000), GpuNode("n", 3, {100, 0, 300}), false},
      {"CPU-only pod ignores GPUs", GpuPod(0, 0), GpuNode("n", 0), true},
  };
  auto plugin = NewGpuFit();
  for (const auto& c : cases)
    EXPECT_EQ(!RunFilter(*plugin, c.pod, c.node).has_value(), c.fits) << c.name;

  Pod mem = GpuPod(1, 0);
  mem.gpu_memory_mib = 12000;  // half of a 24000 MiB GPU
  EXPECT_EQ(mem.ShareOn(Gpu{"A10", 24000, 0, 0}), 500);
  EXPECT_TRUE(RunFilter(*plugin, mem, GpuNode("n", 1, {600})).has_value());
  EXPECT_FALSE(RunFilter(*plugin, mem, GpuNode("n", 1, {400})).has_value());
}

TEST(FiltersTest, ReasonsAsKubeWordsThem) {
  Node node = GpuNode("n", 1, {}, 4000);
  node.taints = {{"dedicated", "llm", TaintEffect::kNoSchedule}};
  node.labels = {{"zone", "a"}};
  Pod pod = GpuPod(1, 1000, 8000);
  EXPECT_EQ(RunFilter(*NewResourcesFit(), pod, node), "Insufficient cpu");
  EXPECT_EQ(RunFilter(*NewTaintToleration(), pod, node),
            "node(s) had untolerated taint {dedicated: llm}");
  pod.tolerations = {{"dedicated", TolerationOperator::kEqual, "llm", TaintEffect::kNoSchedule}};
  EXPECT_FALSE(RunFilter(*NewTaintToleration(), pod, node).has_value());
  pod.node_selector = {{"zone", "b"}};
  EXPECT_EQ(RunFilter(*NewNodeAffinity(), pod, node),
            "node(s) didn't match Pod's node affinity/selector");
  pod.gpu_models = {"H100"};
  EXPECT_EQ(RunFilter(*NewGpuModel(), pod, node), "node(s) didn't have the requested GPU model");
  pod.gpu_models = {"T4", "A10"};
  EXPECT_FALSE(RunFilter(*NewGpuModel(), pod, node).has_value());
}

TEST(FiltersTest, PodAntiAffinityByTopology) {
  Node a = GpuNode("a", 1), b = GpuNode("b", 1), c = GpuNode("c", 1);
  a.labels = {{"zone", "z1"}};
  b.labels = {{"zone", "z1"}};
  c.labels = {{"zone", "z2"}};
  a.pods.push_back({"web-1", {{"app", "web"}}});
  ClusterSnapshot snap{{a, b, c}};
  Pod pod = GpuPod(0, 0);
  pod.required_anti_affinity = {{LabelSelector{{{"app", "web"}}, {}}, "zone"}};
  auto f = NewPodAntiAffinity();
  CycleState state;
  f->PreFilter(pod, snap, state);
  EXPECT_TRUE(f->Filter(pod, snap.nodes[0], state).has_value()) << "same node";
  EXPECT_TRUE(f->Filter(pod, snap.nodes[1], state).has_value()) << "same zone";
  EXPECT_FALSE(f->Filter(pod, snap.nodes[2], state).has_value()) << "other zone";
  pod.required_anti_affinity[0].topology_key = "kubernetes.io/hostname";
  CycleState host;
  f->PreFilter(pod, snap, host);
  EXPECT_FALSE(f->Filter(pod, snap.nodes[1], host).has_value()) << "other host";
}

TEST(ScoresTest, LeastAndMostAllocatedKubeArithmetic) {
  Node n = GpuNode("n", 0, {}, 4000);
  n.memory_mib = 10000;
  n.cpu_used_milli = 1000;
  n.memory_used_mib = 5000;
  Pod p = GpuPod(0, 0, 1000);
  p.memory_mib = 1000;
  CycleState s;
  // cpu (4000-2000)*100/4000 = 50, memory (10000-6000)*100/10000 = 40 -> 45
  EXPECT_EQ(NewLeastAllocated()->Score(p, n, s), 45);
  EXPECT_EQ(NewMostAllocated()->Score(p, n, s), 55);
}

TEST(ScoresTest, PreferencesNormalised) {
  Node tainted = GpuNode("t", 0), clean = GpuNode("c", 0);
  tainted.taints = {{"spot", "", TaintEffect::kPreferNoSchedule}};
  tainted.labels = {{"disk", "ssd"}};
  Pod pod = GpuPod(0, 0);
  pod.preferred_node_affinity = {
      {30, NodeSelectorTerm{{{"disk", SelectorOperator::kIn, {"ssd"}}}}}};
  CycleState s;
  auto taint = NewTaintTolerationScore();
  std::vector<double> t = {taint->Score(pod, tainted, s), taint->Score(pod, clean, s)};
  taint->NormalizeScores(t);
  EXPECT_EQ(t, (std::vector<double>{0, 100}));
  pod.tolerations = {{"spot", TolerationOperator::kExists, "", std::nullopt}};
  EXPECT_EQ(taint->Score(pod, tainted, s), 0);
  auto aff = NewNodeAffinityScore();
  std::vector<double> a = {aff->Score(pod, tainted, s), aff->Score(pod, clean, s)};
  aff->NormalizeScores(a);
  EXPECT_EQ(a, (std::vector<double>{100, 0}));
}

TEST(PaperPoliciesTest, ScoresFromTheSimulator) {
  CycleState s;
  struct Case {
    const char* name;
    std::unique_ptr<Plugin> plugin;
    Pod pod;
    Node node;
    double score;
  };
  Node clustered = GpuNode("c", 8, {1000});
  clustered.pods.push_back({"x", {}, 1, 1000});
  Case cases[] = {
      {"packing: shared GPU", NewPaperGpuPackingScore(), GpuPod(1, 200), GpuNode("n", 2, {500}),
       95},
      {"packing: free GPU on used node", NewPaperGpuPackingScore(), GpuPod(1, 1000),
       GpuNode("n", 2, {500}), 49},
      {"packing: empty node", NewPaperGpuPackingScore(), GpuPod(1, 1000), GpuNode("n", 8), 25},
      {"clustering: same shape only", NewGpuClusteringScore(), GpuPod(1, 1000), clustered, 78},
      {"clustering: empty node", NewGpuClusteringScore(), GpuPod(1, 1000), GpuNode("n", 8), 25},
      {"dotprod", NewDotProductScore(), GpuPod(1, 1000, 64000), GpuNode("n", 8, {}, 128000), 68},
      {"bestfit", NewBestFitScore(), GpuPod(1, 1000, 32000), GpuNode("n", 8, {}, 64000), 43},
  };
  for (auto& c : cases) EXPECT_EQ(c.plugin->Score(c.pod, c.node, s), c.score) << c.name;
}

TEST(GpuSelectTest, BestFitTakesTightestGpu) {
  EXPECT_EQ(BestFitGpus(GpuPod(1, 300), GpuNode("n", 3, {200, 600, 500})), (std::vector<int>{1}));
  EXPECT_EQ(BestFitGpus(GpuPod(2, 1000), GpuNode("n", 4, {200, 0, 0, 0})),
            (std::vector<int>{1, 2}));
}

TEST(FrameworkTest, RegistryRejectsDuplicates) {
  auto r = NewInTreeRegistry();
  ASSERT_TRUE(r.ok()) << r.status();
  auto again = r->Register(
      std::string(kGpuFit),
      [](const PluginContext&) -> absl::StatusOr<std::unique_ptr<Plugin>> { return NewGpuFit(); });
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(r->Build("NoSuchPlugin", {}).ok());
  EXPECT_FALSE(NewPolicyScheduler("fgd", nullptr).ok()) << "fgd needs a workload distribution";
  EXPECT_FALSE(NewPolicyScheduler("nonsense", nullptr).ok());
}

TEST(FrameworkTest, PlacesOnBestNodeWithGpus) {
  ClusterSnapshot snap{{GpuNode("empty", 2), GpuNode("busy", 2, {700, 0})}};
  auto s = NewPolicyScheduler("gpupacking", nullptr);
  ASSERT_TRUE(s.ok()) << s.status();
  Rng rng(1);
  auto result = (*s)->Schedule(GpuPod(1, 300), snap, rng);
  const auto* placement = std::get_if<Placement>(&result);
  ASSERT_NE(placement, nullptr);
  EXPECT_EQ(placement->node_name, "busy");
  EXPECT_EQ(placement->gpu_indices, (std::vector<int>{0}));
}

TEST(FrameworkTest, TieBreaking) {
  ClusterSnapshot snap{{GpuNode("a", 2), GpuNode("b", 2), GpuNode("c", 2)}};
  auto first = NewPolicyScheduler("bestfit", nullptr);  // the paper's policies: first best node
  auto random = NewPolicyScheduler("kube", nullptr);    // kube-scheduler: uniformly at random
  ASSERT_TRUE(first.ok() && random.ok());
  std::set<std::string> seen_first, seen_random;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Rng rng(seed);
    seen_first.insert(
        std::get<Placement>((*first)->Schedule(GpuPod(1, 1000), snap, rng)).node_name);
    seen_random.insert(
        std::get<Placement>((*random)->Schedule(GpuPod(1, 1000), snap, rng)).node_name);
  }
  EXPECT_EQ(seen_first, (std::set<std::string>{"a"}));
  EXPECT_EQ(seen_random.size(), 3u);
}

TEST(FrameworkTest, UnschedulableCountsNodesWithTheSameReasonOnce) {
  std::vector<Node> nodes;
  for (int i = 0; i < 50; ++i) nodes.push_back(GpuNode("full-" + std::to_string(i), 1, {1000}));
  Node tainted = GpuNode("tainted", 1);
  tainted.taints = {{"a", "b", TaintEffect::kNoExecute}};
  nodes.push_back(tainted);
  ClusterSnapshot snap{nodes};
  auto s = NewPolicyScheduler("bestfit", nullptr);
  ASSERT_TRUE(s.ok());
  Rng rng(1);
  auto result = (*s)->Schedule(GpuPod(1, 1000), snap, rng);
  const auto* u = std::get_if<Unschedulable>(&result);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->RejectedNodes(), 51);
  ASSERT_EQ(u->reasons.size(), 2u);
  EXPECT_EQ(
      u->Message(),
      "0/51 nodes are available: 50 Insufficient GPUs, 1 node(s) had untolerated taint {a: b}.");
}

TEST(FrameworkTest, UnschedulableCountsReasons) {
  Node small = GpuNode("small", 1, {}, 500);
  Node tainted = GpuNode("tainted", 1);
  tainted.taints = {{"a", "b", TaintEffect::kNoExecute}};
  Node full = GpuNode("full", 1, {1000});
  ClusterSnapshot snap{{small, tainted, full}};
  auto s = NewPolicyScheduler("bestfit", nullptr);
  ASSERT_TRUE(s.ok());
  Rng rng(1);
  auto result = (*s)->Schedule(GpuPod(1, 1000), snap, rng);
  const auto* u = std::get_if<Unschedulable>(&result);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->RejectedNodes(), 3);
  EXPECT_EQ(u->reasons.size(), 3u);  // three different reasons
  EXPECT_EQ(u->Message(),
            "0/3 nodes are available: 1 Insufficient GPUs, 1 Insufficient cpu, "
            "1 node(s) had untolerated taint {a: b}.");
}

TEST(FrameworkTest, NumFeasibleNodesToFindAsKubeScheduler) {
  struct Case {
    int percentage, nodes, want;
  } cases[] = {
      {100, 5000, 5000}, {0, 50, 50},    {0, 5000, 500}, {0, 1000, 420},   {0, 1213, 497},
      {0, 6000, 300},    {10, 500, 100}, {50, 200, 100}, {20, 5000, 1000}, {150, 300, 300},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(NumFeasibleNodesToFind(c.percentage, c.nodes), c.want)
        << c.percentage << "% of " << c.nodes;
  }
}

TEST(FrameworkTest, PercentageOfNodesToScoreRotatesTheStart) {
  ClusterSnapshot snap;
  for (int i = 0; i < 200; ++i) snap.nodes.push_back(GpuNode("n" + std::to_string(i), 2));
  auto s = NewPolicyScheduler("bestfit", nullptr, 10);  // looks for 100 feasible nodes
  ASSERT_TRUE(s.ok()) << s.status();
  Rng rng(1);
  EXPECT_EQ(std::get<Placement>((*s)->Schedule(GpuPod(1, 1000), snap, rng)).node_name, "n0");
  EXPECT_EQ(std::get<Placement>((*s)->Schedule(GpuPod(1, 1000), snap, rng)).node_name, "n100");
  EXPECT_EQ(std::get<Placement>((*s)->Schedule(GpuPod(1, 1000), snap, rng)).node_name, "n0");
}

TEST(FilterTest, PassesAgreesWithFilter) {
  Node tainted = GpuNode("tainted", 2);
  tainted.taints = {{"a", "b", TaintEffect::kNoSchedule}};
  Node labelled = GpuNode("labelled", 4, {1000, 500, 0, 900});
  labelled.labels = {{"zone", "x"}};
  Node v100 = GpuNode("v100", 2, {300});
  for (Gpu& g : v100.gpus) g.model = "V100";
  const Node nodes[] = {GpuNode("empty", 8), GpuNode("small", 1, {}, 500), tainted, labelled, v100,
                        GpuNode("cpu", 0)};
  Pod selector = GpuPod(1, 400);
  selector.node_selector = {{"zone", "x"}};
  Pod model = GpuPod(2, 1000);
  model.gpu_models = {"V100"};
  Pod memory = GpuPod(1, 0);
  memory.gpu_memory_mib = 12000;
  Pod tolerant = GpuPod(1, 1000);
  tolerant.tolerations = {{"a", TolerationOperator::kEqual, "b", TaintEffect::kNoSchedule}};
  const Pod pods[] = {GpuPod(1, 1000), GpuPod(4, 1000), GpuPod(1, 600), GpuPod(0, 0, 2000),
                      selector,        model,           memory,         tolerant};
  for (const std::string& name : DefaultFilters()) {
    auto registry = NewInTreeRegistry();
    ASSERT_TRUE(registry.ok());
    auto f = registry->Build(name, {});
    ASSERT_TRUE(f.ok());
    for (const Pod& pod : pods) {
      for (const Node& node : nodes) {
        ClusterSnapshot snap{{node}};
        CycleState state;
        (*f)->PreFilter(pod, snap, state);
        const bool passes = !(*f)->AppliesTo(pod) || (*f)->Passes(pod, node, state);
        EXPECT_EQ(passes, !(*f)->Filter(pod, node, state).has_value())
            << name << " on " << node.name << " for " << pod.gpu_count << "x" << pod.gpu_milli;
      }
    }
  }
}

TEST(FragmentationPluginTest, PerNodeCacheFollowsGenerations) {
  auto workload = std::make_shared<const WorkloadDistribution>(WorkloadDistribution::FromPods(
      {GpuPod(1, 500), GpuPod(1, 1000), GpuPod(2, 1000), GpuPod(1, 250)}, 1.0));
  for (FragMode mode : {FragMode::kFgd, FragMode::kGalley}) {
    auto plugin = NewFragmentationPlugin(workload, mode, false);
    ClusterSnapshot snap{{GpuNode("a", 4, {500}), GpuNode("b", 2), GpuNode("c", 8, {250, 1000})}};
    for (Node& n : snap.nodes) n.generation = NextNodeGeneration();
    const std::vector<int> all = {0, 1, 2};
    const Pod pods[] = {GpuPod(1, 500), GpuPod(1, 1000), GpuPod(1, 250), GpuPod(2, 1000)};
    CycleState state;
    for (int round = 0; round < 6; ++round) {
      for (const Pod& pod : pods) {
        std::vector<double> batch(3);
        plugin->ScoreNodes(pod, snap, all, state, batch);
        for (size_t k = 0; k < 3; ++k) {
          EXPECT_EQ(batch[k], plugin->Score(pod, snap.nodes[k], state)) << round << " " << k;
        }
      }
      Node& n = snap.nodes[static_cast<size_t>(round % 3)];
      const Pod p = GpuPod(1, 250);
      const std::vector<int> gpus = BestFitGpus(p, n);
      if (!gpus.empty()) Bind(p, gpus, n);
    }
  }
}

}  // namespace
}  // namespace galley::schedule
