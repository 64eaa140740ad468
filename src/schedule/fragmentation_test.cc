// The FGD fragmentation measure on small nodes checked by hand, and the FGD/Galley plugins'
// choices.
#include "schedule/fragmentation.h"

#include <gtest/gtest.h>

#include "schedule/fgd.h"

namespace galley::schedule {
namespace {

WorkloadDistribution Mix() {
  WorkloadDistribution w;
  w.classes = {
      {0, 1, 500, {}, 0.5},    // half a GPU
      {0, 2, 1000, {}, 0.25},  // two whole GPUs
      {0, 0, 0, {}, 0.25},     // CPU only
  };
  return w;
}

TEST(FragmentationTest, HandCheckedNodes) {
  const WorkloadDistribution w = Mix();
  struct Case {
    const char* name;
    int64_t cpu_free;
    std::string_view model;
    std::vector<int32_t> free;
    double frag;
  } cases[] = {
      // half: 300 too small -> .5*300; two whole: only one whole GPU -> .25*1300; cpu: .25*1300
      {"one whole, one sliver", 10000, "T4", {1000, 300}, 150 + 325 + 325},
      // everything fits: only the CPU-only class counts the free share
      {"two whole GPUs", 10000, "T4", {1000, 1000}, 0 + 0 + 500},
      {"nothing free", 10000, "T4", {0, 0}, 0},
      {"slivers only", 10000, "T4", {400, 100}, 0.5 * 500 + 0.25 * 500 + 0.25 * 500},
  };
  for (const auto& c : cases) {
    EXPECT_DOUBLE_EQ(NodeFragmentation(NodeShape{c.cpu_free, c.model, c.free}, w), c.frag)
        << c.name;
  }
}

TEST(FragmentationTest, CpuShortageAndModelMakeEverythingFragment) {
  WorkloadDistribution w;
  w.classes = {{20000, 1, 500, {}, 0.5}, {0, 1, 500, {"V100"}, 0.5}};
  const std::vector<int32_t> free = {1000, 1000};
  EXPECT_DOUBLE_EQ(NodeFragmentation(NodeShape{10000, "T4", free}, w), 2000);
  EXPECT_DOUBLE_EQ(NodeFragmentation(NodeShape{30000, "V100", free}, w), 0);
}

TEST(FragmentationTest, DeltaOfAPlacement) {
  const WorkloadDistribution w = Mix();
  const std::vector<int32_t> free = {1000, 300};
  Pod pod;
  pod.gpu_count = 1;
  pod.gpu_milli = 500;
  const int gpu0 = 0;
  // after {500, 300}: half .5*300, two whole .25*800, cpu .25*800 = 550; before 800
  EXPECT_DOUBLE_EQ(FragmentationDelta(NodeShape{10000, "T4", free}, pod, {&gpu0, 1}, w), -250);
}

TEST(FragmentationTest, TypicalPodsCoverAndRenormalise) {
  std::vector<Pod> pods(4);
  for (int i = 0; i < 3; ++i)
    pods[static_cast<size_t>(i)].gpu_count = 1, pods[static_cast<size_t>(i)].gpu_milli = 500;
  pods[3].gpu_count = 8;
  pods[3].gpu_milli = 1000;
  const auto w = WorkloadDistribution::FromPods(pods, 0.7);
  ASSERT_EQ(w.classes.size(), 1u);
  EXPECT_EQ(w.classes[0].gpu_milli, 500);
  EXPECT_DOUBLE_EQ(w.classes[0].weight, 1.0);
  EXPECT_EQ(WorkloadDistribution::FromPods(pods, 0.95).classes.size(), 2u);
}

TEST(FragmentationTest, GalleyMeasureCountsWhatAShareClassCouldFill) {
  WorkloadDistribution w;
  w.classes = {{1000, 1, 470, {}, 1.0}};
  const std::vector<int32_t> free = {1000, 600};
  struct Case {
    const char* name;
    int64_t cpu_free;
    double fgd, galley;
  } cases[] = {
      // GPUs hold 2 + 1 pods: 1600 - 3 * 470 = 190 stranded; FGD sees both GPUs fit one pod
      {"GPU-bound", 10000, 0, 190},
      // CPU for one pod only: 1600 - 470
      {"CPU-bound", 1500, 0, 1130},
      // not even one pod: everything, both measures
      {"no CPU", 999, 1600, 1600},
  };
  for (const auto& c : cases) {
    const NodeShape node{c.cpu_free, "T4", free};
    EXPECT_DOUBLE_EQ(NodeFragmentation(node, w, FragMeasure::kFgd), c.fgd) << c.name;
    EXPECT_DOUBLE_EQ(NodeFragmentation(node, w, FragMeasure::kGalley), c.galley) << c.name;
  }
  // Whole-GPU classes are measured as FGD does: one whole GPU free of {1000, 600}.
  WorkloadDistribution whole;
  whole.classes = {{1000, 1, 1000, {}, 1.0}};
  EXPECT_DOUBLE_EQ(NodeFragmentation(NodeShape{10000, "T4", free}, whole, FragMeasure::kGalley),
                   600);
  whole.classes[0].gpu_count = 2;
  EXPECT_DOUBLE_EQ(NodeFragmentation(NodeShape{10000, "T4", free}, whole, FragMeasure::kGalley),
                   1600);
}

Node GpuNode(std::string model, std::vector<int32_t> used) {
  Node n;
  n.cpu_milli = 64000;
  n.memory_mib = 256000;
  for (int32_t u : used) n.gpus.push_back(Gpu{model, 16000, u, 0});
  return n;
}

TEST(FragmentationTest, UsableShareGoesByModelShareAndCount) {
  const Node node = GpuNode("V100", {0, 0, 600, 1000});  // free 1000, 1000, 400, 0
  struct Case {
    const char* name;
    TaskClass c;
    int64_t usable;
  } cases[] = {
      {"any model, 300 share: three GPUs fit", {0, 1, 300, {}, 1}, 2400},
      {"500 share: two GPUs fit", {0, 1, 500, {}, 1}, 2000},
      {"two whole GPUs", {0, 2, 1000, {}, 1}, 2000},
      {"three whole GPUs: too few", {0, 3, 1000, {}, 1}, 0},
      {"wrong model", {0, 1, 300, {"T4"}, 1}, 0},
      {"right model", {0, 1, 300, {"T4", "V100"}, 1}, 2400},
      {"CPU is not looked at", {1000000, 1, 300, {}, 1}, 2400},
      {"no GPU", {1000, 0, 0, {}, 1}, 0},
  };
  for (const auto& c : cases) EXPECT_EQ(UsableShare(node, c.c), c.usable) << c.name;
}

TEST(FragmentationTest, ScarcityWeightsFollowEachClassesSupply) {
  // Two empty 2-GPU nodes: 4000 free. "any" can use all of it, "v100" half, "four" none.
  const std::vector<Node> nodes = {GpuNode("V100", {0, 0}), GpuNode("T4", {0, 0})};
  WorkloadDistribution w;
  w.classes = {{0, 1, 1000, {}, 0.5}, {0, 1, 1000, {"V100"}, 0.25}, {0, 4, 1000, {}, 0.25}};
  const WorkloadDistribution s = ScarcityWeighted(w, nodes);
  ASSERT_EQ(s.classes.size(), 3u);
  // 0.5 * 1 and 0.25 * 2, renormalised; the class nothing can serve weighs 0.
  EXPECT_DOUBLE_EQ(s.classes[0].weight, 0.5);
  EXPECT_DOUBLE_EQ(s.classes[1].weight, 0.5);
  EXPECT_DOUBLE_EQ(s.classes[2].weight, 0);
  // When every class can use everything, the weights are the popularity (FGD's).
  WorkloadDistribution open;
  open.classes = {{0, 1, 1000, {}, 0.7}, {0, 1, 500, {}, 0.3}};
  const WorkloadDistribution same = ScarcityWeighted(open, nodes);
  EXPECT_DOUBLE_EQ(same.classes[0].weight, 0.7);
  EXPECT_DOUBLE_EQ(same.classes[1].weight, 0.3);
  // A full cluster: nothing to weigh by, the weights stay.
  const std::vector<Node> full = {GpuNode("V100", {1000, 1000})};
  EXPECT_DOUBLE_EQ(ScarcityWeighted(w, full).classes[1].weight, 0.25);
  // The ratio is capped at kMaxScarcity: 1 of 1,000 free GPUs usable by "rare".
  std::vector<Node> many(500, GpuNode("T4", {0, 0}));
  many.push_back(GpuNode("A100", {1000, 0}));
  WorkloadDistribution rare;
  rare.classes = {{0, 1, 1000, {}, 0.5}, {0, 1, 1000, {"A100"}, 0.5}};
  const WorkloadDistribution capped = ScarcityWeighted(rare, many);
  EXPECT_DOUBLE_EQ(capped.classes[1].weight / capped.classes[0].weight, kMaxScarcity);
}

TEST(FgdPluginTest, GalleyScoringHandsItsWeightsToTheGpuSelector) {
  auto w = std::make_shared<const WorkloadDistribution>(Mix());
  auto shared = std::make_shared<SchedulerShared>();
  auto score = NewFragmentationPlugin(w, FragMode::kGalley, false, shared);
  auto gpu = NewFragmentationPlugin(w, FragMode::kGalley, true, shared);
  ClusterSnapshot snapshot{{GpuNode("T4", {400, 1000}), GpuNode("T4", {0, 0})}};
  Pod pod;
  pod.gpu_count = 1;
  pod.gpu_milli = 500;
  const std::vector<int> feasible = {0, 1};
  std::vector<double> out(2);
  CycleState state;
  score->ScoreNodes(pod, snapshot, feasible, state, out);
  ASSERT_NE(shared->weighted_workload, nullptr);
  // What was computed is ScarcityWeighted over the GPU classes of the mix.
  const WorkloadDistribution expect = ScarcityWeighted(GpuClassesOnly(*w), snapshot.nodes);
  ASSERT_EQ(shared->weighted_workload->classes.size(), expect.classes.size());
  for (size_t m = 0; m < expect.classes.size(); ++m) {
    EXPECT_DOUBLE_EQ(shared->weighted_workload->classes[m].weight, expect.classes[m].weight);
  }
  // The 600 free GPU leaves 100: better than breaking a whole GPU; the selector agrees.
  EXPECT_GT(out[0], out[1]);
  Rng rng(1);
  EXPECT_EQ(gpu->SelectGpus(pod, snapshot.nodes[0], rng), (std::vector<int>{0}));
}

TEST(FgdPluginTest, PrefersThePlacementThatGrowsFragmentationLeast) {
  auto w = std::make_shared<const WorkloadDistribution>(Mix());
  Node sliver;  // a 600 free GPU: a half-GPU pod fits and leaves 100
  Node whole;   // two whole GPUs: placing breaks a whole one
  for (Node* n : {&sliver, &whole}) {
    n->cpu_milli = 10000;
    n->memory_mib = 1000;
    n->gpus = {Gpu{"T4", 15000, 0, 0}, Gpu{"T4", 15000, 0, 0}};
  }
  sliver.gpus[0].used_milli = 400;
  sliver.gpus[1].used_milli = 1000;
  Pod pod;
  pod.gpu_count = 1;
  pod.gpu_milli = 500;
  CycleState s;
  for (FragMode mode : {FragMode::kFgd, FragMode::kGalley}) {
    auto score = NewFragmentationPlugin(w, mode, false);
    EXPECT_GT(score->Score(pod, sliver, s), score->Score(pod, whole, s));
    auto gpu = NewFragmentationPlugin(w, mode, true);
    Rng rng(1);
    EXPECT_EQ(gpu->SelectGpus(pod, sliver, rng), (std::vector<int>{0}));
  }
}

}  // namespace
}  // namespace galley::schedule
