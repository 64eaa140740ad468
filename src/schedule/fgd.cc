#include "schedule/fgd.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <deque>
#include <unordered_map>

#include "schedule/filters.h"
#include "schedule/scores.h"

namespace galley::schedule {

WorkloadDistribution GpuClassesOnly(const WorkloadDistribution& workload) {
  WorkloadDistribution out;
  double total = 0;
  for (const TaskClass& c : workload.classes) {
    if (c.gpu_milli == 0) continue;
    out.classes.push_back(c);
    total += c.weight;
  }
  for (TaskClass& c : out.classes) c.weight = total > 0 ? c.weight / total : 0;
  return out;
}

namespace {

constexpr size_t kMaxMemoGpus = 8;
constexpr size_t kMaxMemoEntries = 1 << 18;

// A node shape and a pod shape, packed so identical situations hash alike.
struct MemoKey {
  int64_t cpu_free = 0;
  int64_t pod_cpu = 0;
  const void* model = nullptr;  // interned by the plugin
  int32_t pod_milli = 0;
  int16_t pod_count = 0;
  int16_t gpus = 0;
  std::array<int16_t, kMaxMemoGpus> free{};  // sorted descending

  bool operator==(const MemoKey& o) const {
    return cpu_free == o.cpu_free && pod_cpu == o.pod_cpu && model == o.model &&
           pod_milli == o.pod_milli && pod_count == o.pod_count && gpus == o.gpus && free == o.free;
  }
};

struct MemoKeyHash {
  size_t operator()(const MemoKey& k) const {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    auto mix = [&h](uint64_t v) {
      h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    };
    mix(static_cast<uint64_t>(k.cpu_free));
    mix(static_cast<uint64_t>(k.pod_cpu));
    mix(reinterpret_cast<uintptr_t>(k.model));
    mix((static_cast<uint64_t>(static_cast<uint32_t>(k.pod_milli)) << 32) |
        (static_cast<uint64_t>(static_cast<uint16_t>(k.pod_count)) << 16) |
        static_cast<uint16_t>(k.gpus));
    uint64_t packed[2] = {0, 0};
    std::memcpy(packed, k.free.data(), sizeof(packed));
    mix(packed[0]);
    mix(packed[1]);
    return static_cast<size_t>(h);
  }
};

// The decision for one (node, pod): the fragmentation delta, and for a share pod the free share
// of the GPU to take (any GPU with that free share is equivalent).
struct Decision {
  double delta = 0;
  int32_t gpu_free = -1;
};

class FragmentationPlugin final : public Plugin {
 public:
  FragmentationPlugin(std::shared_ptr<const WorkloadDistribution> workload, FragMode mode,
                      bool as_selector)
      : workload_(mode == FragMode::kGalley
                      ? std::make_shared<const WorkloadDistribution>(GpuClassesOnly(*workload))
                      : std::move(workload)),
        mode_(mode),
        as_selector_(as_selector) {}

  std::string_view Name() const override {
    if (mode_ == FragMode::kFgd) return as_selector_ ? kFgdGpu : kFgdScore;
    return as_selector_ ? kGalleyGpu : kGalleyFragScore;
  }
  bool IsScore() const override { return !as_selector_; }
  bool IsGpuSelector() const override { return as_selector_; }

  double Score(const Pod& pod, const Node& node, const CycleState&) const override {
    const Decision d = Decide(pod, node);
    if (mode_ == FragMode::kGalley) return -d.delta;
    return std::floor(100.0 / (1.0 + std::exp(d.delta / 1000.0)));
  }

  std::vector<int> SelectGpus(const Pod& pod, const Node& node, Rng&) const override {
    if (!pod.SharesGpu()) return BestFitGpus(pod, node);
    const Decision d = Decide(pod, node);
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      if (node.gpus[i].FreeMilli() == d.gpu_free && GpuFits(pod, node.gpus[i])) {
        return {static_cast<int>(i)};
      }
    }
    return BestFitGpus(pod, node);
  }

 private:
  Decision Decide(const Pod& pod, const Node& node) const {
    if (node.gpus.size() > kMaxMemoGpus || pod.gpu_memory_mib > 0) return Compute(pod, node);
    MemoKey key;
    key.cpu_free = node.FreeCpuMilli();
    key.pod_cpu = pod.cpu_milli;
    key.model = Intern(node.gpus.empty() ? std::string_view() : node.gpus[0].model);
    key.pod_milli = pod.gpu_milli;
    key.pod_count = static_cast<int16_t>(pod.gpu_count);
    key.gpus = static_cast<int16_t>(node.gpus.size());
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      key.free[i] = static_cast<int16_t>(node.gpus[i].FreeMilli());
    }
    std::sort(key.free.begin(), key.free.begin() + key.gpus, std::greater<>());
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    if (memo_.size() >= kMaxMemoEntries) memo_.clear();
    const Decision d = Compute(pod, node);
    memo_.emplace(key, d);
    return d;
  }

  Decision Compute(const Pod& pod, const Node& node) const {
    std::vector<int32_t> free(node.gpus.size());
    for (size_t i = 0; i < node.gpus.size(); ++i) free[i] = node.gpus[i].FreeMilli();
    const NodeShape shape{node.FreeCpuMilli(),
                          node.gpus.empty() ? std::string_view() : node.gpus[0].model, free};
    Decision best;
    if (!pod.SharesGpu()) {
      const std::vector<int> gpus = pod.WantsGpu() ? BestFitGpus(pod, node) : std::vector<int>{};
      best.delta = FragmentationDelta(shape, pod, gpus, *workload_);
      return best;
    }
    double best_rank = 0;
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      if (!GpuFits(pod, node.gpus[i]) || free[i] == best.gpu_free) continue;
      const int idx = static_cast<int>(i);
      const double delta = FragmentationDelta(shape, pod, std::span<const int>(&idx, 1), *workload_);
      // FGD compares the integer scores and keeps the first best; Galley compares exact deltas
      // and prefers the tighter GPU on a tie.
      const double rank = mode_ == FragMode::kFgd
                              ? std::floor(100.0 / (1.0 + std::exp(delta / 1000.0)))
                              : -delta;
      const bool better = best.gpu_free < 0 || rank > best_rank ||
                          (mode_ == FragMode::kGalley && rank == best_rank && free[i] < best.gpu_free);
      if (better) {
        best = Decision{delta, free[i]};
        best_rank = rank;
      }
    }
    return best;
  }

  const void* Intern(std::string_view model) const {
    for (const std::string& m : models_) {
      if (m == model) return &m;
    }
    models_.emplace_back(model);
    return &models_.back();
  }

  std::shared_ptr<const WorkloadDistribution> workload_;
  FragMode mode_;
  bool as_selector_;
  mutable std::unordered_map<MemoKey, Decision, MemoKeyHash> memo_;
  mutable std::deque<std::string> models_;
};

}  // namespace

std::unique_ptr<Plugin> NewFragmentationPlugin(std::shared_ptr<const WorkloadDistribution> workload,
                                               FragMode mode, bool as_selector) {
  return std::make_unique<FragmentationPlugin>(std::move(workload), mode, as_selector);
}

}  // namespace galley::schedule
