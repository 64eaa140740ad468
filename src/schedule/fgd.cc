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

// What the decision depends on in a node: free CPU, GPU model and the free shares, sorted.
struct ShapeKey {
  int64_t cpu_free = 0;
  const void* model = nullptr;  // interned by the plugin
  int16_t gpus = 0;
  std::array<int16_t, kMaxMemoGpus> free{};  // sorted descending

  bool operator==(const ShapeKey& o) const {
    return cpu_free == o.cpu_free && model == o.model && gpus == o.gpus && free == o.free;
  }
};

// ... and in a pod: CPU, GPU count and share.
struct ClassKey {
  int64_t cpu = 0;
  int32_t milli = 0;
  int32_t count = 0;
  bool operator==(const ClassKey& o) const {
    return cpu == o.cpu && milli == o.milli && count == o.count;
  }
};

uint64_t Mix(uint64_t h, uint64_t v) { return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)); }

struct ShapeKeyHash {
  size_t operator()(const ShapeKey& k) const {
    uint64_t packed[2] = {0, 0};
    std::memcpy(packed, k.free.data(), sizeof(packed));
    uint64_t h = Mix(0x9e3779b97f4a7c15ULL, static_cast<uint64_t>(k.cpu_free));
    h = Mix(h, reinterpret_cast<uintptr_t>(k.model));
    h = Mix(h, static_cast<uint64_t>(k.gpus));
    return static_cast<size_t>(Mix(Mix(h, packed[0]), packed[1]));
  }
};

struct ClassKeyHash {
  size_t operator()(const ClassKey& k) const {
    return static_cast<size_t>(Mix(Mix(static_cast<uint64_t>(k.cpu), static_cast<uint64_t>(k.milli)),
                                   static_cast<uint64_t>(k.count)));
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
    return ToScore(Decide(pod, node));
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

 void ScoreNodes(const Pod& pod, const ClusterSnapshot& snapshot, std::span<const int> feasible,
                  const CycleState& state, std::span<double> out) const override {
    if (!Memoizable(pod)) return Plugin::ScoreNodes(pod, snapshot, feasible, state, out);
    const uint32_t cls = ClassId(pod);
    if (node_cache_.size() < snapshot.nodes.size()) node_cache_.resize(snapshot.nodes.size());
    for (size_t k = 0; k < feasible.size(); ++k) {
      const size_t i = static_cast<size_t>(feasible[k]);
      const Node& node = snapshot.nodes[i];
      Decision d;
      if (node.gpus.size() > kMaxMemoGpus) {
        d = Compute(pod, node);
      } else {
        // The node's shape id, recomputed only when the node changed (kube's NodeInfo generation).
        NodeEntry& e = node_cache_[i];
        if (node.generation == 0 || e.generation != node.generation || e.node != &node ||
            e.epoch != epoch_) {
          e = NodeEntry{node.generation, &node, epoch_, ShapeId(node)};
        }
        d = DecideIds(e.shape, cls, pod, node);
      }
      out[k] = ToScore(d);
    }
  }

 private:
  // Per node index: the generation and address it was computed for, and its interned shape.
  struct NodeEntry {
    uint64_t generation = 0;
    const Node* node = nullptr;
    uint64_t epoch = 0;
    uint32_t shape = 0;
  };

  double ToScore(const Decision& d) const {
    if (mode_ == FragMode::kGalley) return -d.delta;
    return std::floor(100.0 / (1.0 + std::exp(d.delta / 1000.0)));
  }

  static bool Memoizable(const Pod& pod) { return pod.gpu_memory_mib == 0; }

  uint32_t ShapeId(const Node& node) const {
    ShapeKey key;
    key.cpu_free = node.FreeCpuMilli();
    key.model = Intern(node.gpus.empty() ? std::string_view() : node.gpus[0].model);
    key.gpus = static_cast<int16_t>(node.gpus.size());
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      key.free[i] = static_cast<int16_t>(node.gpus[i].FreeMilli());
    }
    std::sort(key.free.begin(), key.free.begin() + key.gpus, std::greater<>());
    if (shapes_.size() >= kMaxMemoEntries) Forget();
    return shapes_.try_emplace(key, static_cast<uint32_t>(shapes_.size())).first->second;
  }

  uint32_t ClassId(const Pod& pod) const {
    const ClassKey key{pod.cpu_milli, pod.gpu_milli, pod.gpu_count};
    if (classes_.size() >= kMaxMemoEntries) {
      classes_.clear();
      Forget();
    }
    return classes_.try_emplace(key, static_cast<uint32_t>(classes_.size())).first->second;
  }

  // Drops the memos (bounded memory); node entries from before are invalidated by the epoch.
  void Forget() const {
    shapes_.clear();
    memo_.clear();
    ++epoch_;
  }

  Decision DecideIds(uint32_t shape, uint32_t cls, const Pod& pod, const Node& node) const {
    const uint64_t key = (static_cast<uint64_t>(shape) << 32) | cls;
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    const Decision d = Compute(pod, node);
    memo_.emplace(key, d);
    return d;
  }

  Decision Decide(const Pod& pod, const Node& node) const {
    if (node.gpus.size() > kMaxMemoGpus || !Memoizable(pod)) return Compute(pod, node);
    const uint32_t shape = ShapeId(node);
    return DecideIds(shape, ClassId(pod), pod, node);
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
  // Memos: node shape -> id, pod class -> id, (shape id, class id) -> decision; node index ->
  // shape id while the node's generation is unchanged.
  mutable std::unordered_map<ShapeKey, uint32_t, ShapeKeyHash> shapes_;
  mutable std::unordered_map<ClassKey, uint32_t, ClassKeyHash> classes_;
  mutable std::unordered_map<uint64_t, Decision> memo_;
  mutable std::vector<NodeEntry> node_cache_;
  mutable uint64_t epoch_ = 0;
  mutable std::deque<std::string> models_;
};

}  // namespace

std::unique_ptr<Plugin> NewFragmentationPlugin(std::shared_ptr<const WorkloadDistribution> workload,
                                               FragMode mode, bool as_selector) {
  return std::make_unique<FragmentationPlugin>(std::move(workload), mode, as_selector);
}

}  // namespace galley::schedule
