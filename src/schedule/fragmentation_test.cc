// The FGD fragmentation measure on small nodes checked by hand, and the FGD/Galley plugins' choices.
#include "schedule/fragmentation.h"

#include <gtest/gtest.h>

#include "schedule/fgd.h"

namespace galley::schedule {
namespace {

WorkloadDistribution Mix() {
  WorkloadDistribution w;
  w.classes = {
      {0, 1, 500, {}, 0.5},      // half a GPU
      {0, 2, 1000, {}, 0.25},    // two whole GPUs
      {0, 0, 0, {}, 0.25},       // CPU only
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
    EXPECT_DOUBLE_EQ(NodeFragmentation(NodeShape{c.cpu_free, c.model, c.free}, w), c.frag) << c.name;
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
  for (int i = 0; i < 3; ++i) pods[static_cast<size_t>(i)].gpu_count = 1, pods[static_cast<size_t>(i)].gpu_milli = 500;
  pods[3].gpu_count = 8;
  pods[3].gpu_milli = 1000;
  const auto w = WorkloadDistribution::FromPods(pods, 0.7);
  ASSERT_EQ(w.classes.size(), 1u);
  EXPECT_EQ(w.classes[0].gpu_milli, 500);
  EXPECT_DOUBLE_EQ(w.classes[0].weight, 1.0);
  EXPECT_EQ(WorkloadDistribution::FromPods(pods, 0.95).classes.size(), 2u);
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
