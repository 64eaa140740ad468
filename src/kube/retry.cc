#include "kube/retry.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

#include "kube/api_error.h"

namespace galley::kube {

Duration RetryDelay(const RetryBackoff& backoff, int attempt, double u01) {
  if (attempt < 1) attempt = 1;
  // wait.Backoff.Step: the n-th wait is duration * factor^(n-1), capped, then jittered.
  double d = std::chrono::duration<double>(backoff.duration).count();
  const double factor = backoff.factor > 0 ? backoff.factor : 1.0;
  const double cap = std::chrono::duration<double>(backoff.cap).count();
  for (int i = 1; i < attempt; ++i) {
    d *= factor;
    if (cap > 0 && d > cap) {
      d = cap;
      break;
    }
    if (d > 86400.0) break;  // no overflow; a day is already absurd
  }
  if (cap > 0 && d > cap) d = cap;
  if (backoff.jitter > 0) d += std::clamp(u01, 0.0, 1.0) * backoff.jitter * d;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(d));
}

absl::Status RetryOnError(const RetryBackoff& backoff,
                          const std::function<bool(const absl::Status&)>& retriable,
                          const std::function<absl::Status()>& fn) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  const int steps = backoff.steps < 1 ? 1 : backoff.steps;
  absl::Status last;
  for (int attempt = 1; attempt <= steps; ++attempt) {
    last = fn();
    if (last.ok() || !retriable(last)) return last;
    if (attempt < steps) std::this_thread::sleep_for(RetryDelay(backoff, attempt, u01(rng)));
  }
  return last;
}

absl::Status RetryOnConflict(const RetryBackoff& backoff, const std::function<absl::Status()>& fn) {
  return RetryOnError(
      backoff, [](const absl::Status& s) { return IsConflict(s); }, fn);
}

}  // namespace galley::kube
