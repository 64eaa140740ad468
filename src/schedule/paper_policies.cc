#include "schedule/paper_policies.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/strings.h"

namespace galley::schedule {
namespace {

struct RandomChoice final : StateData {
  const Node* chosen = nullptr;
};

class RandomScore final : public Plugin {
 public:
  std::string_view Name() const override { return kRandomScore; }
  bool IsScore() const override { return true; }
  void PreScore(const Pod&, const ClusterSnapshot& snapshot, std::span<const int> feasible,
                CycleState& state, Rng& rng) const override {
    auto choice = std::make_unique<RandomChoice>();
    const int index = feasible[rng.Below(feasible.size())];
    choice->chosen = &snapshot.nodes[static_cast<size_t>(index)];
    state.Write(std::string(kRandomScore), std::move(choice));
  }
  double Score(const Pod&, const Node& node, const CycleState& state) const override {
    const auto* choice = static_cast<const RandomChoice*>(state.Read(kRandomScore));
    return choice != nullptr && choice->chosen == &node ? 100 : 0;
  }
};

class DotProductScore final : public Plugin {
 public:
  std::string_view Name() const override { return kDotProductScore; }
  bool IsScore() const override { return true; }
  double Score(const Pod& pod, const Node& node, const CycleState&) const override {
    const double cpu = static_cast<double>(kMaxSpecCpuMilli);
    const double gpu = static_cast<double>(kMaxSpecGpuMilli);
    const double dot = (static_cast<double>(node.FreeCpuMilli()) / cpu) *
                           (static_cast<double>(pod.cpu_milli) / cpu) +
                       (static_cast<double>(node.FreeGpuMilli()) / gpu) *
                           (static_cast<double>(pod.TotalGpuMilli()) / gpu);
    return std::trunc(100.0 * (1.0 - dot / 2.0));
  }
};

std::string ShapeTag(int32_t gpu_count, int32_t gpu_milli) {
  if (gpu_count == 1 && gpu_milli < kMilliPerGpu) return "share";
  return StrCat(gpu_count, "-gpu");
}

class GpuClusteringScore final : public Plugin {
 public:
  std::string_view Name() const override { return kGpuClusteringScore; }
  bool IsScore() const override { return true; }
  double Score(const Pod& pod, const Node& node, const CycleState&) const override {
    if (!pod.WantsGpu()) return 0;
    const std::string mine = ShapeTag(pod.gpu_count, pod.gpu_milli);
    std::set<std::string> tags;
    for (const PlacedPod& p : node.pods) {
      if (p.gpu_count > 0) tags.insert(ShapeTag(p.gpu_count, p.gpu_milli));
    }
    const int64_t fullness = 25 * (kMaxSpecGpuMilli - node.FreeGpuMilli()) / kMaxSpecGpuMilli;
    if (tags.count(mine) != 0) return static_cast<double>(fullness + (tags.size() == 1 ? 75 : 50));
    return static_cast<double>(fullness + (tags.empty() ? 25 : 0));
  }
};

class PaperGpuPackingScore final : public Plugin {
 public:
  std::string_view Name() const override { return kPaperGpuPackingScore; }
  bool IsScore() const override { return true; }
  double Score(const Pod& pod, const Node& node, const CycleState&) const override {
    if (!pod.WantsGpu()) return 0;
    const int64_t fully_free = node.FullyFreeGpus();
    if (fully_free == static_cast<int64_t>(node.gpus.size())) {
      return static_cast<double>(std::max<int64_t>(100 / 3 - fully_free, fully_free));
    }
    std::vector<int> order(node.gpus.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return node.gpus[static_cast<size_t>(a)].FreeMilli() <
             node.gpus[static_cast<size_t>(b)].FreeMilli();
    });
    int need = pod.gpu_count;
    int64_t fully_free_used = 0;
    int64_t free_ratio_on_used = 0;
    for (int i : order) {
      if (need == 0) break;
      const Gpu& g = node.gpus[static_cast<size_t>(i)];
      if (g.FreeMilli() < pod.ShareOn(g)) continue;
      --need;
      fully_free_used += g.FreeMilli() == kMilliPerGpu ? 1 : 0;
      free_ratio_on_used += g.FreeMilli() * 100 / kMilliPerGpu;
    }
    if (need != 0) return 0;
    if (fully_free_used > 0)
      return static_cast<double>(std::max<int64_t>(50 - fully_free_used, 100 / 3));
    return static_cast<double>(std::max<int64_t>(100 - free_ratio_on_used / 10, 50));
  }
};

class BestFitScore final : public Plugin {
 public:
  std::string_view Name() const override { return kBestFitScore; }
  bool IsScore() const override { return true; }
  double Score(const Pod& pod, const Node& node, const CycleState&) const override {
    const double cpu_left = static_cast<double>(node.FreeCpuMilli() - pod.cpu_milli);
    const double gpu_left = static_cast<double>(node.FreeGpuMilli() - pod.TotalGpuMilli());
    const double waste = 0.5 * cpu_left / static_cast<double>(kMaxSpecCpuMilli) +
                         0.5 * gpu_left / static_cast<double>(kMaxSpecGpuMilli);
    return std::trunc((1.0 - waste) * 100.0);
  }
  // The simulator's min-max NormalizeScore, in integers.
  void NormalizeScores(std::span<double> scores) const override {
    if (scores.empty()) return;
    const auto [lo, hi] = std::minmax_element(scores.begin(), scores.end());
    const int64_t low = static_cast<int64_t>(*lo), range = static_cast<int64_t>(*hi) - low;
    for (double& s : scores) {
      s = range == 0 ? 0 : static_cast<double>((static_cast<int64_t>(s) - low) * 100 / range);
    }
  }
};

}  // namespace

std::unique_ptr<Plugin> NewRandomScore() { return std::make_unique<RandomScore>(); }
std::unique_ptr<Plugin> NewDotProductScore() { return std::make_unique<DotProductScore>(); }
std::unique_ptr<Plugin> NewGpuClusteringScore() { return std::make_unique<GpuClusteringScore>(); }
std::unique_ptr<Plugin> NewPaperGpuPackingScore() {
  return std::make_unique<PaperGpuPackingScore>();
}
std::unique_ptr<Plugin> NewBestFitScore() { return std::make_unique<BestFitScore>(); }

}  // namespace galley::schedule
