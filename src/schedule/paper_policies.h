// The baseline policies of the FGD paper, as score plugins computed the way its public simulator
// (hkust-adsl/kubernetes-scheduler-simulator) computes them, so that replays reproduce its
// figures:
//   RandomScore         one feasible node at random scores 100, the rest 0;
//   DotProductScore     Tetris-style, on (free CPU / 128 cores, free GPU / 8 GPUs): the smaller the
//                       dot product with the request, the higher the score;
//   GpuClusteringScore  prefer nodes already running pods of the same GPU shape (share, 1-GPU,
//                       2-GPU, ...), then empty nodes, then mixed ones; fuller nodes first;
//   PaperGpuPackingScore  shared GPUs first, then free GPUs on used nodes, then empty nodes;
//   BestFitScore        the node left with the least free CPU and GPU (equal weights).
#pragma once

#include <memory>

#include "schedule/framework.h"

namespace galley::schedule {

inline constexpr std::string_view kRandomScore = "RandomScore";
inline constexpr std::string_view kDotProductScore = "DotProductScore";
inline constexpr std::string_view kGpuClusteringScore = "GpuClusteringScore";
inline constexpr std::string_view kPaperGpuPackingScore = "PaperGpuPackingScore";
inline constexpr std::string_view kBestFitScore = "BestFitScore";

// The simulator normalises by the largest node it knows: 128 cores and 8 GPUs.
inline constexpr int64_t kMaxSpecCpuMilli = 128000;
inline constexpr int64_t kMaxSpecGpuMilli = 8000;

std::unique_ptr<Plugin> NewRandomScore();
std::unique_ptr<Plugin> NewDotProductScore();
std::unique_ptr<Plugin> NewGpuClusteringScore();
std::unique_ptr<Plugin> NewPaperGpuPackingScore();
std::unique_ptr<Plugin> NewBestFitScore();

}  // namespace galley::schedule
