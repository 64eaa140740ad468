// A window of a model's recent answer times, from which the gateway derives how long one attempt
// may take before it tries another replica: a hung replica then costs a few times the model's
// usual latency instead of the whole per-attempt timeout. The idea is Envoy's
// `per_try_timeout` set from observed latency and "The Tail at Scale" (Dean & Barroso, CACM
// 2013): give up on an attempt once it is slower than nearly all answers seen lately.
//
// Pure: no clock, no locks; the caller serialises calls.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "common/clock.h"

namespace galley::gateway {

struct LatencyWindowOptions {
  size_t capacity = 512;    // the most recent answers kept
  size_t min_samples = 32;  // fewer: no derived timeout
  double quantile = 0.99;   // of the answers kept
  double multiplier = 5.0;  // the attempt timeout is this times the quantile...
  Duration floor = std::chrono::milliseconds(50);  // ...but never less than this
};

class LatencyWindow {
 public:
  explicit LatencyWindow(LatencyWindowOptions options = {});

  void Add(Duration latency);
  size_t size() const { return samples_.size(); }
  // The window's quantile (recomputed every capacity/8 additions), or nothing below min_samples.
  std::optional<Duration> Quantile();
  // multiplier x quantile, at least the floor and at most `cap`; `cap` when there are too few
  // answers to judge.
  Duration AttemptTimeout(Duration cap);

 private:
  const LatencyWindowOptions options_;
  std::vector<Duration> samples_;  // a ring once full
  size_t next_ = 0;
  size_t since_computed_ = 0;
  std::optional<Duration> quantile_;
};

}  // namespace galley::gateway
