#include "schedule/fgd.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
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

uint64_t Mix(uint64_t h, uint64_t v) {
  return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

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
    return static_cast<size_t>(
        Mix(Mix(static_cast<uint64_t>(k.cpu), static_cast<uint64_t>(k.milli)),
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
                      bool as_selector, std::shared_ptr<SchedulerShared> shared)
      : base_(mode == FragMode::kGalley
                  ? std::make_shared<const WorkloadDistribution>(GpuClassesOnly(*workload))
                  : std::move(workload)),
        workload_(base_),
        mode_(mode),
        measure_(mode == FragMode::kGalley ? FragMeasure::kGalley : FragMeasure::kFgd),
        as_selector_(as_selector),
        shared_(std::move(shared)) {}

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
    AdoptSharedWeights();
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
    if (mode_ == FragMode::kGalley && !as_selector_) {
      if (workload_ == base_ || requested_since_reweight_ >= reweight_after_) Reweight(snapshot);
      requested_since_reweight_ += pod.TotalGpuMilli();
    }
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

  // Galley: the class weights follow the cluster (ScarcityWeighted). They are recomputed (a pass
  // over nodes x classes) whenever the pods scored since the last time asked for kReweightShare of
  // the cluster's GPU capacity, and adopted (the decision memo starts again; the GPU selector
  // follows) only when some class's weight moved by more than kWeightTolerance of itself: on
  // 5,000 nodes that is 9 adoptions instead of 96, and 5x fewer fragmentation computations.
  static bool MovedMuch(const WorkloadDistribution& a, const WorkloadDistribution& b) {
    for (size_t m = 0; m < a.classes.size(); ++m) {
      const double x = a.classes[m].weight, y = b.classes[m].weight;
      if (std::abs(x - y) > kWeightTolerance * std::max(x, y)) return true;
    }
    return false;
  }

  void Reweight(const ClusterSnapshot& snapshot) const {
    int64_t capacity = 0;
    for (const Node& n : snapshot.nodes) {
      capacity += static_cast<int64_t>(n.gpus.size()) * kMilliPerGpu;
    }
    reweight_after_ =
        std::max<int64_t>(1, static_cast<int64_t>(kReweightShare * static_cast<double>(capacity)));
    requested_since_reweight_ = 0;
    WorkloadDistribution next = ScarcityWeighted(*base_, snapshot.nodes);
    if (workload_ != base_ && !MovedMuch(*workload_, next)) return;
    workload_ = std::make_shared<const WorkloadDistribution>(std::move(next));
    if (shared_) shared_->weighted_workload = workload_;
    ClearDecisions();
  }

  void AdoptSharedWeights() const {
    if (mode_ != FragMode::kGalley || !shared_ || !shared_->weighted_workload ||
        shared_->weighted_workload == workload_) {
      return;
    }
    workload_ = shared_->weighted_workload;
    ClearDecisions();
  }

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
    ClearDecisions();
    ++epoch_;
  }

  // The memo is a row per pod class indexed by shape id (a hash map's chain walks were a quarter
  // of a 5,000-node decision); an entry with a NaN delta is not computed yet.
  Decision DecideIds(uint32_t shape, uint32_t cls, const Pod& pod, const Node& node) const {
    if (memo_entries_ > kMaxMemoDecisions) ClearDecisions();
    if (memo_.size() <= cls) memo_.resize(static_cast<size_t>(cls) + 1);
    std::vector<Decision>& row = memo_[cls];
    if (row.size() <= shape) {
      const size_t size = std::max<size_t>(static_cast<size_t>(shape) + 1, shapes_.size());
      memo_entries_ += size - row.size();
      row.resize(size, Decision{std::numeric_limits<double>::quiet_NaN(), -1});
    }
    Decision& slot = row[shape];
    if (std::isnan(slot.delta)) slot = Compute(pod, node);
    return slot;
  }

  void ClearDecisions() const {
    memo_.clear();
    memo_entries_ = 0;
  }

  Decision Decide(const Pod& pod, const Node& node) const {
    if (node.gpus.size() > kMaxMemoGpus || !Memoizable(pod)) return Compute(pod, node);
    const uint32_t shape = ShapeId(node);
    return DecideIds(shape, ClassId(pod), pod, node);
  }

  // The node's fragmentation now is computed once; each candidate GPU is tried in place.
  Decision Compute(const Pod& pod, const Node& node) const {
    std::vector<int32_t> free(node.gpus.size());
    for (size_t i = 0; i < node.gpus.size(); ++i) free[i] = node.gpus[i].FreeMilli();
    const std::string_view model = node.gpus.empty() ? std::string_view() : node.gpus[0].model;
    const double before =
        NodeFragmentation(NodeShape{node.FreeCpuMilli(), model, free}, *workload_, measure_);
    const NodeShape after{node.FreeCpuMilli() - pod.cpu_milli, model, free};
    const int32_t share = PerGpuShare(pod);
    Decision best;
    if (!pod.SharesGpu()) {
      if (pod.WantsGpu()) {
        for (int i : BestFitGpus(pod, node)) free[static_cast<size_t>(i)] -= share;
      }
      best.delta = NodeFragmentation(after, *workload_, measure_) - before;
      return best;
    }
    std::vector<int32_t> tried;
    double best_rank = 0;
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      const int32_t f = free[i];
      if (!GpuFits(pod, node.gpus[i]) || std::find(tried.begin(), tried.end(), f) != tried.end()) {
        continue;
      }
      tried.push_back(f);
      free[i] = f - share;
      const double delta = NodeFragmentation(after, *workload_, measure_) - before;
      free[i] = f;
      // FGD compares the integer scores and keeps the first best; Galley compares exact deltas
      // and prefers the tighter GPU on a tie.
      const double rank =
          mode_ == FragMode::kFgd ? std::floor(100.0 / (1.0 + std::exp(delta / 1000.0))) : -delta;
      const bool better = best.gpu_free < 0 || rank > best_rank ||
                          (mode_ == FragMode::kGalley && rank == best_rank && f < best.gpu_free);
      if (better) {
        best = Decision{delta, f};
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

  static constexpr size_t kMaxMemoDecisions = size_t{1} << 22;  // 64 MiB of decisions
  static constexpr double kReweightShare = 0.01;
  static constexpr double kWeightTolerance = 0.1;

  std::shared_ptr<const WorkloadDistribution> base_;
  mutable std::shared_ptr<const WorkloadDistribution> workload_;  // base_, or Galley's weights
  FragMode mode_;
  FragMeasure measure_;
  bool as_selector_;
  std::shared_ptr<SchedulerShared> shared_;
  mutable int64_t requested_since_reweight_ = 0;
  mutable int64_t reweight_after_ = 0;
  // Memos: node shape -> id, pod class -> id, (shape id, class id) -> decision; node index ->
  // shape id while the node's generation is unchanged.
  mutable std::unordered_map<ShapeKey, uint32_t, ShapeKeyHash> shapes_;
  mutable std::unordered_map<ClassKey, uint32_t, ClassKeyHash> classes_;
  mutable std::vector<std::vector<Decision>> memo_;  // [class id][shape id]
  mutable size_t memo_entries_ = 0;
  mutable std::vector<NodeEntry> node_cache_;
  mutable uint64_t epoch_ = 0;
  mutable std::deque<std::string> models_;
};

}  // namespace

std::unique_ptr<Plugin> NewFragmentationPlugin(std::shared_ptr<const WorkloadDistribution> workload,
                                               FragMode mode, bool as_selector,
                                               std::shared_ptr<SchedulerShared> shared) {
  return std::make_unique<FragmentationPlugin>(std::move(workload), mode, as_selector,
                                               std::move(shared));
}

}  // namespace galley::schedule
