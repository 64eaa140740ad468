#include "schedule/policy.h"

#include "common/status_macros.h"
#include "common/strings.h"
#include "schedule/fgd.h"
#include "schedule/filters.h"
#include "schedule/paper_policies.h"
#include "schedule/scores.h"

namespace galley::schedule {
namespace {

using Simple = std::unique_ptr<Plugin> (*)();

PluginFactory Wrap(Simple make) {
  return [make](const PluginContext&) -> absl::StatusOr<std::unique_ptr<Plugin>> { return make(); };
}

PluginFactory Frag(FragMode mode, bool as_selector) {
  return [mode, as_selector](const PluginContext& ctx) -> absl::StatusOr<std::unique_ptr<Plugin>> {
    if (ctx.workload == nullptr || ctx.workload->classes.empty()) {
      return absl::FailedPreconditionError(
          "fragmentation-aware plugins need the workload's GPU-request distribution");
    }
    return NewFragmentationPlugin(ctx.workload, mode, as_selector, ctx.shared);
  };
}

ProfileConfig WithScores(std::vector<std::pair<std::string, double>> scores, std::string_view gpu,
                         bool random_ties = true) {
  return ProfileConfig{DefaultFilters(), std::move(scores), std::string(gpu), random_ties};
}

}  // namespace

absl::StatusOr<Registry> NewInTreeRegistry() {
  Registry r;
  const std::pair<std::string_view, Simple> simple[] = {
      {kResourcesFit, NewResourcesFit},
      {kGpuFit, NewGpuFit},
      {kGpuModel, NewGpuModel},
      {kTaintToleration, NewTaintToleration},
      {kNodeAffinity, NewNodeAffinity},
      {kPodAntiAffinity, NewPodAntiAffinity},
      {kLeastAllocated, NewLeastAllocated},
      {kMostAllocated, NewMostAllocated},
      {kNodeAffinityScore, NewNodeAffinityScore},
      {kTaintTolerationScore, NewTaintTolerationScore},
      {kPodAntiAffinityScore, NewPodAntiAffinityScore},
      {kGpuPackingScore, NewGpuPackingScore},
      {kBestFitGpu, NewBestFitGpu},
      {kRandomGpu, NewRandomGpu},
      {kRandomScore, NewRandomScore},
      {kDotProductScore, NewDotProductScore},
      {kGpuClusteringScore, NewGpuClusteringScore},
      {kPaperGpuPackingScore, NewPaperGpuPackingScore},
      {kBestFitScore, NewBestFitScore},
  };
  for (const auto& [name, make] : simple)
    RETURN_IF_ERROR(r.Register(std::string(name), Wrap(make)));
  RETURN_IF_ERROR(r.Register(std::string(kFgdScore), Frag(FragMode::kFgd, false)));
  RETURN_IF_ERROR(r.Register(std::string(kFgdGpu), Frag(FragMode::kFgd, true)));
  RETURN_IF_ERROR(r.Register(std::string(kGalleyFragScore), Frag(FragMode::kGalley, false)));
  RETURN_IF_ERROR(r.Register(std::string(kGalleyGpu), Frag(FragMode::kGalley, true)));
  return r;
}

std::vector<std::string> PolicyNames() {
  return {"galley", "fgd", "bestfit", "gpupacking", "gpuclustering", "dotprod", "random", "kube"};
}

absl::StatusOr<ProfileConfig> PolicyProfile(std::string_view policy) {
  // The paper's policies take the first best node in (per-seed shuffled) node order, as its
  // simulator does; galley and kube break ties at random like kube-scheduler.
  constexpr bool kPaperTies = false;
  auto s = [](std::string_view v) { return std::string(v); };
  // Preference scores (soft affinity, PreferNoSchedule, soft anti-affinity) ride along with every
  // policy at a weight that only breaks ties for the packing policies; the trace uses none.
  if (policy == "galley") {
    // Fragmentation delta in GPU thousandths; best fit (0..100 after normalising) at a weight that
    // only decides between deltas within 0.1 thousandths, mostly CPU-only pods (delta 0 on every
    // node whose CPU they do not make short), which it packs instead of scattering.
    return WithScores({{s(kGalleyFragScore), 1.0}, {s(kBestFitScore), 0.001}}, kGalleyGpu);
  }
  const std::pair<std::string_view, std::pair<std::string_view, std::string_view>> paper[] = {
      {"fgd", {kFgdScore, kFgdGpu}},
      {"bestfit", {kBestFitScore, kBestFitGpu}},
      {"gpupacking", {kPaperGpuPackingScore, kBestFitGpu}},
      {"gpuclustering", {kGpuClusteringScore, kBestFitGpu}},
      {"dotprod", {kDotProductScore, kBestFitGpu}},
      {"random", {kRandomScore, kRandomGpu}},
  };
  for (const auto& [name, plugins] : paper) {
    if (policy == name) return WithScores({{s(plugins.first), 1000}}, plugins.second, kPaperTies);
  }
  if (policy == "kube") {
    return WithScores({{s(kLeastAllocated), 1},
                       {s(kNodeAffinityScore), 2},
                       {s(kTaintTolerationScore), 3},
                       {s(kPodAntiAffinityScore), 2}},
                      kBestFitGpu);
  }
  return absl::NotFoundError(StrCat("unknown policy \"", policy,
                                    "\" (galley, fgd, bestfit, gpupacking, gpuclustering, "
                                    "dotprod, random, kube)"));
}

absl::StatusOr<std::unique_ptr<Scheduler>> NewPolicyScheduler(
    std::string_view policy, std::shared_ptr<const WorkloadDistribution> workload,
    int percentage_of_nodes_to_score) {
  ASSIGN_OR_RETURN(const Registry registry, NewInTreeRegistry());
  ASSIGN_OR_RETURN(ProfileConfig profile, PolicyProfile(policy));
  profile.percentage_of_nodes_to_score = percentage_of_nodes_to_score;
  PluginContext ctx;
  ctx.workload = std::move(workload);
  return Scheduler::Create(registry, profile, ctx);
}

}  // namespace galley::schedule
