#include "schedule/cluster.h"

#include <algorithm>
#include <atomic>

namespace galley::schedule {

std::string_view TaintEffectName(TaintEffect effect) {
  switch (effect) {
    case TaintEffect::kNoSchedule:
      return "NoSchedule";
    case TaintEffect::kPreferNoSchedule:
      return "PreferNoSchedule";
    case TaintEffect::kNoExecute:
      return "NoExecute";
  }
  return "NoSchedule";
}

int64_t Node::FreeGpuMilli() const {
  int64_t total = 0;
  for (const Gpu& g : gpus) total += g.FreeMilli();
  return total;
}

int32_t Node::FullyFreeGpus() const {
  int32_t n = 0;
  for (const Gpu& g : gpus) n += g.used_milli == 0 && g.used_memory_mib == 0 ? 1 : 0;
  return n;
}

std::optional<std::string_view> Node::LabelValue(std::string_view key) const {
  if (auto it = labels.find(key); it != labels.end()) return it->second;
  if (key == kNodePoolLabel && !pool.empty()) return pool;
  if (key == "kubernetes.io/hostname") return name;
  return std::nullopt;
}

int32_t Pod::ShareOn(const Gpu& gpu) const {
  if (gpu_count <= 0) return 0;
  int32_t share = gpu_milli;
  if (gpu_memory_mib > 0 && gpu.memory_mib > 0) {
    const int64_t by_memory = (gpu_memory_mib * kMilliPerGpu + gpu.memory_mib - 1) / gpu.memory_mib;
    share =
        std::max<int32_t>(share, static_cast<int32_t>(std::min<int64_t>(by_memory, kMilliPerGpu)));
  }
  if (share <= 0) share = kMilliPerGpu;
  return share;
}

int64_t Pod::TotalGpuMilli() const {
  if (gpu_count <= 0) return 0;
  const int32_t per = gpu_milli > 0 ? gpu_milli : kMilliPerGpu;
  return static_cast<int64_t>(gpu_count) * per;
}

bool Pod::AcceptsModel(std::string_view model) const {
  if (gpu_models.empty()) return true;
  return std::find(gpu_models.begin(), gpu_models.end(), model) != gpu_models.end();
}

uint64_t NextNodeGeneration() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void Bind(const Pod& pod, const std::vector<int>& gpu_indices, Node& node) {
  node.cpu_used_milli += pod.cpu_milli;
  node.memory_used_mib += pod.memory_mib;
  for (int i : gpu_indices) {
    Gpu& g = node.gpus[static_cast<size_t>(i)];
    g.used_milli += pod.ShareOn(g);
    g.used_memory_mib += pod.gpu_memory_mib;
  }
  node.pods.push_back(PlacedPod{pod.name, pod.labels, pod.gpu_count, pod.gpu_milli});
  node.generation = NextNodeGeneration();
}

}  // namespace galley::schedule
