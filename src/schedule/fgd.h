// Fragmentation-aware plugins.
//   FgdScore / FgdGpu: the FGD paper's policy as its public simulator scores it: for each node,
//     the GPU choice that grows the node's fragmentation least, scored
//     floor(100 * sigmoid(-delta / 1000)) (delta in GPU thousandths); the GPU selector makes the
//     same choice.
//   GalleyFragScore / GalleyGpu: Galley's default. The same measure, but (1) the exact delta is
//     the score, so nodes whose deltas differ by less than the sigmoid's integer step are no
//     longer tied and left to chance; (2) fragmentation counts only classes that need a GPU
//     (FGD charges every free GPU share to CPU-only classes, which adds the same constant to every
//     GPU placement and only blurs the comparison); (3) among equal deltas, the GPU with the least
//     free share wins (best fit); the `galley` profile adds BestFitScore at weight 1 (one point
//     per GPU thousandth of delta), which breaks near-ties toward tight nodes and packs CPU, so
//     CPU-heavy pods do not strand the GPUs of emptier nodes (FGD's measure only sees CPU once it
//     is already short).
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

// workload must be non-null.
std::unique_ptr<Plugin> NewFragmentationPlugin(std::shared_ptr<const WorkloadDistribution> workload,
                                               FragMode mode, bool as_selector);

// The workload Galley's mode measures against: the same classes without CPU-only ones.
WorkloadDistribution GpuClassesOnly(const WorkloadDistribution& workload);

}  // namespace galley::schedule
