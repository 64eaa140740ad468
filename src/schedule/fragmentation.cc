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
    const int32_t milli = p.gpu_count > 0 ? (p.gpu_milli > 0 ? p.gpu_milli : kMilliPerGpu) : 0;
    ++counts[Key{p.cpu_milli, p.gpu_count, milli, p.gpu_models}];
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

double NodeFragmentation(const NodeShape& node, const WorkloadDistribution& workload) {
  int64_t free_total = 0;
  for (int32_t f : node.gpu_free_milli) free_total += f;
  if (free_total == 0) return 0;
  double frag = 0;
  for (const TaskClass& c : workload.classes) {
    // A class that asks for no GPU, or cannot run here, leaves every free share unusable.
    if (c.gpu_milli == 0 || !c.AcceptsModel(node.model) || node.cpu_free_milli < c.cpu_milli) {
      frag += c.weight * static_cast<double>(free_total);
      continue;
    }
    int fitting = 0;
    int64_t too_small = 0;
    for (int32_t f : node.gpu_free_milli) {
      if (f >= c.gpu_milli) {
        ++fitting;
      } else {
        too_small += f;
      }
    }
    frag += c.weight * static_cast<double>(fitting >= c.gpu_count ? too_small : free_total);
  }
  return frag;
}

double FragmentationDelta(const NodeShape& node, const Pod& pod, std::span<const int> gpu_indices,
                          const WorkloadDistribution& workload) {
  std::vector<int32_t> after(node.gpu_free_milli.begin(), node.gpu_free_milli.end());
  const int32_t share = pod.gpu_count > 0 ? (pod.gpu_milli > 0 ? pod.gpu_milli : kMilliPerGpu) : 0;
  for (int i : gpu_indices) after[static_cast<size_t>(i)] -= share;
  NodeShape next{node.cpu_free_milli - pod.cpu_milli, node.model, after};
  return NodeFragmentation(next, workload) - NodeFragmentation(node, workload);
}

}  // namespace galley::schedule
