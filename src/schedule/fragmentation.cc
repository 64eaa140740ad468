#include "schedule/fragmentation.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace galley::schedule {

bool TaskClass::AcceptsModel(std::string_view model) const {
  return models.empty() || std::find(models.begin(), models.end(), model) != models.end();
}

WorkloadDistribution WorkloadDistribution::FromPods(const std::vector<Pod>& pods, double coverage) {
  using Key = std::tuple<int64_t, int32_t, int32_t, std::vector<std::string>>;
  std::map<Key, int64_t> counts;
  for (const Pod& p : pods) {
    ++counts[Key{p.cpu_milli, p.gpu_count, PerGpuShare(p), p.gpu_models}];
  }
  std::vector<std::pair<const Key*, int64_t>> order;
  for (const auto& [k, n] : counts) order.emplace_back(&k, n);
  // Most popular first; the key order breaks ties so the result does not depend on map layout.
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  WorkloadDistribution out;
  const double total = static_cast<double>(pods.size());
  double covered = 0;
  for (const auto& [key, n] : order) {
    if (covered >= coverage * total) break;
    covered += static_cast<double>(n);
    TaskClass c;
    std::tie(c.cpu_milli, c.gpu_count, c.gpu_milli, c.models) = *key;
    c.weight = static_cast<double>(n);
    out.classes.push_back(std::move(c));
  }
  for (TaskClass& c : out.classes) c.weight /= covered;
  return out;
}

int32_t PerGpuShare(const Pod& pod) {
  if (pod.gpu_count == 0) return 0;
  return pod.gpu_milli > 0 ? pod.gpu_milli : kMilliPerGpu;
}

namespace {

// Free share of `c`'s pods could not use on the node (FragMeasure).
double ClassFragmentation(const NodeShape& node, const TaskClass& c, int64_t free_total,
                          FragMeasure measure) {
  // A class that asks for no GPU, or cannot run here, leaves every free share unusable.
  if (c.gpu_milli == 0 || !c.AcceptsModel(node.model) || node.cpu_free_milli < c.cpu_milli) {
    return static_cast<double>(free_total);
  }
  int fitting = 0;
  int64_t too_small = 0, pods_by_gpu = 0;
  for (int32_t f : node.gpu_free_milli) {
    if (f >= c.gpu_milli) {
      ++fitting;
      pods_by_gpu += f / c.gpu_milli;
    } else {
      too_small += f;
    }
  }
  if (fitting < c.gpu_count) return static_cast<double>(free_total);
  if (measure == FragMeasure::kFgd || c.gpu_count != 1 || c.gpu_milli >= kMilliPerGpu) {
    return static_cast<double>(too_small);
  }
  const int64_t pods_by_cpu = c.cpu_milli > 0 ? node.cpu_free_milli / c.cpu_milli : pods_by_gpu;
  return static_cast<double>(free_total - std::min(pods_by_gpu, pods_by_cpu) * c.gpu_milli);
}

}  // namespace

double NodeFragmentation(const NodeShape& node, const WorkloadDistribution& workload,
                         FragMeasure measure) {
  int64_t free_total = 0;
  for (int32_t f : node.gpu_free_milli) free_total += f;
  if (free_total == 0) return 0;
  double frag = 0;
  for (const TaskClass& c : workload.classes) {
    frag += c.weight * ClassFragmentation(node, c, free_total, measure);
  }
  return frag;
}

double FragmentationDelta(const NodeShape& node, const Pod& pod, std::span<const int> gpu_indices,
                          const WorkloadDistribution& workload, FragMeasure measure) {
  std::vector<int32_t> after(node.gpu_free_milli.begin(), node.gpu_free_milli.end());
  for (int i : gpu_indices) after[static_cast<size_t>(i)] -= PerGpuShare(pod);
  NodeShape next{node.cpu_free_milli - pod.cpu_milli, node.model, after};
  return NodeFragmentation(next, workload, measure) - NodeFragmentation(node, workload, measure);
}

int64_t UsableShare(const Node& node, const TaskClass& c) {
  if (c.gpu_milli == 0 || node.gpus.empty() || !c.AcceptsModel(node.gpus[0].model)) return 0;
  int fitting = 0;
  int64_t usable = 0;
  for (const Gpu& g : node.gpus) {
    if (g.FreeMilli() >= c.gpu_milli) {
      ++fitting;
      usable += g.FreeMilli();
    }
  }
  return fitting >= c.gpu_count ? usable : 0;
}

WorkloadDistribution ScarcityWeighted(const WorkloadDistribution& workload,
                                      const std::vector<Node>& nodes) {
  std::vector<int64_t> usable(workload.classes.size(), 0);
  int64_t free_total = 0;
  for (const Node& node : nodes) {
    const int64_t free = node.FreeGpuMilli();
    if (free == 0) continue;
    free_total += free;
    for (size_t m = 0; m < workload.classes.size(); ++m) {
      usable[m] += UsableShare(node, workload.classes[m]);
    }
  }
  WorkloadDistribution out = workload;
  double total = 0;
  for (size_t m = 0; m < out.classes.size(); ++m) {
    TaskClass& c = out.classes[m];
    const double ratio =
        usable[m] > 0 ? static_cast<double>(free_total) / static_cast<double>(usable[m]) : 0;
    c.weight *= std::min(ratio, kMaxScarcity);
    total += c.weight;
  }
  if (total <= 0) return workload;
  for (TaskClass& c : out.classes) c.weight /= total;
  return out;
}

}  // namespace galley::schedule
