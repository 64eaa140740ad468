#include "sim/synth.h"

#include <cstdio>
#include <functional>
#include <map>

#include "common/strings.h"
#include "schedule/framework.h"

namespace galley::sim {

using schedule::Node;
using schedule::Pod;

absl::StatusOr<Variant> ParseVariant(std::string_view name) {
  if (name == "share") return Variant::kShare;
  if (name == "multigpu") return Variant::kMultiGpu;
  if (name == "gpuspec") return Variant::kGpuSpec;
  if (name == "cpu") return Variant::kCpu;
  return absl::InvalidArgumentError(
      StrCat("unknown variant \"", name, "\" (share, multigpu, gpuspec, cpu)"));
}

namespace {

std::vector<std::string> WeightedModels(const std::vector<Node>& nodes) {
  std::vector<std::string> out;  // one entry per GPU, so a uniform draw is weighted by GPUs
  for (const Node& n : nodes) {
    for (const auto& g : n.gpus) out.push_back(g.model);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<Pod>> MakeVariant(const std::vector<Pod>& pods,
                                             const std::vector<Node>& nodes, Variant variant,
                                             double percent, uint64_t seed) {
  if (percent < 0 || percent > 100) return absl::InvalidArgumentError("percent must be in 0..100");
  std::function<bool(const Pod&)> in_base = [](const Pod& p) { return p.WantsGpu(); };
  std::function<bool(const Pod&)> in_cat;
  switch (variant) {
    case Variant::kShare:
      in_cat = [](const Pod& p) { return p.SharesGpu(); };
      break;
    case Variant::kMultiGpu:
      in_cat = [](const Pod& p) { return p.gpu_count > 1; };
      break;
    case Variant::kGpuSpec:
      in_cat = [](const Pod& p) { return p.WantsGpu(); };  // every GPU pod; models set below
      break;
    case Variant::kCpu:
      in_base = [](const Pod&) { return true; };
      in_cat = [](const Pod& p) { return !p.WantsGpu(); };
      break;
  }
  std::vector<const Pod*> outside, cat, rest;
  for (const Pod& p : pods) {
    if (!in_base(p))
      outside.push_back(&p);
    else if (in_cat(p))
      cat.push_back(&p);
    else
      rest.push_back(&p);
  }
  const bool spec = variant == Variant::kGpuSpec;
  if ((cat.empty() && percent > 0) || (!spec && rest.empty() && percent < 100)) {
    return absl::InvalidArgumentError("the trace has no pods of a category this variant needs");
  }
  const std::vector<std::string> models = WeightedModels(nodes);
  if (spec && models.empty()) return absl::InvalidArgumentError("the cluster has no GPUs");
  schedule::Rng rng(seed);
  const double base_share =
      static_cast<double>(cat.size() + rest.size()) / static_cast<double>(pods.size());
  std::vector<Pod> out;
  out.reserve(pods.size());
  for (size_t i = 0; i < pods.size(); ++i) {
    Pod p;
    if (outside.empty() || rng.Unit() < base_share) {
      const bool take_cat = spec ? true : rng.Unit() * 100 < percent;
      const auto& from = take_cat ? cat : rest;
      p = *from[rng.Below(from.size())];
      if (spec) {
        p.gpu_models.clear();
        if (rng.Unit() * 100 < percent) p.gpu_models.push_back(models[rng.Below(models.size())]);
      }
    } else {
      p = *outside[rng.Below(outside.size())];
    }
    char name[32];
    std::snprintf(name, sizeof(name), "synth-pod-%06zu", i);
    p.name = name;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Node> MakeCluster(const std::vector<Node>& like, int count, uint64_t seed) {
  schedule::Rng rng(seed);
  std::vector<Node> out;
  if (like.empty()) return out;
  out.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    Node n = like[rng.Below(like.size())];
    char name[32];
    std::snprintf(name, sizeof(name), "synth-node-%05d", i);
    n.name = name;
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace galley::sim
