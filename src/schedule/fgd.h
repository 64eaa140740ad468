// Fragmentation-aware plugins.
//   FgdScore / FgdGpu: the FGD paper's policy as its public simulator scores it: for each node,
//     the GPU choice that grows the node's fragmentation least, scored
//     floor(100 * sigmoid(-delta / 1000)) (delta in GPU thousandths); the GPU selector makes the
//     same choice.
//   GalleyFragScore / GalleyGpu: Galley's default. (1) The exact delta is the score (no sigmoid
//     steps, so nodes whose deltas differ by less than a step are not left to chance); (2) only
//     classes that need a GPU count (FGD charges every free share to CPU-only classes, the same
//     constant for every GPU placement); (3) FragMeasure::kGalley: a fractional-GPU class's
//     fragmentation is what it could not fill on the node, GPU remainders and CPU included; (4)
//     the class weights are ScarcityWeighted for the cluster as it is (recomputed each time the
//     pods scored since ask for 1% of the GPU capacity), so fragmenting capacity that only few
//     classes can use (one GPU model, empty 8-GPU nodes) costs more. Among equal deltas the
//     tighter GPU wins; the `galley` profile adds BestFitScore as a tie breaker only. Why each
//     part, and what each is worth on the trace and on synthetic mixes: bench/RESULTS.md
//     ("Scheduler").
// Both keep bounded memos, since identical nodes and pod classes are common: node shape (free
// CPU, model, sorted free shares) -> id, pod class (CPU, GPU count, share) -> id, (shape, class)
// -> decision, and per node index the shape id while Node::generation is unchanged, so a decision
// costs one table lookup per node and only the node that took the last pod is recomputed.
// NOTE: the memos make these plugins single-threaded (one Scheduler per thread).
#pragma once

#include <memory>

#include "schedule/fragmentation.h"
#include "schedule/framework.h"

namespace galley::schedule {

inline constexpr std::string_view kFgdScore = "FgdScore";
inline constexpr std::string_view kFgdGpu = "FgdGpu";
inline constexpr std::string_view kGalleyFragScore = "GalleyFragScore";
inline constexpr std::string_view kGalleyGpu = "GalleyGpu";

enum class FragMode { kFgd, kGalley };

// workload must be non-null. `shared` (may be null) carries Galley's weights from the score
// plugin to the GPU selector of the same scheduler.
std::unique_ptr<Plugin> NewFragmentationPlugin(std::shared_ptr<const WorkloadDistribution> workload,
                                               FragMode mode, bool as_selector,
                                               std::shared_ptr<SchedulerShared> shared = nullptr);

// The workload Galley's mode measures against: the same classes without CPU-only ones.
WorkloadDistribution GpuClassesOnly(const WorkloadDistribution& workload);

}  // namespace galley::schedule
