// Back-off between retries: exponential with "full jitter", from the AWS Architecture Blog,
// "Exponential Backoff And Jitter" (Marc Brooker, 2015,
// https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/):
//   sleep = random_between(0, min(cap, base * 2^(attempt - 1)))
// Full jitter spreads competing retries the most for the least total work of the variants the
// post compares, and, unlike "decorrelated jitter", needs no state between attempts. The defaults
// are Envoy's retry back-off (base 25 ms, cap 10 x base = 250 ms).
//
// Pure: the caller passes the attempt number and a seeded random source.
#pragma once

#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>

#include "absl/status/status.h"
#include "common/clock.h"

namespace galley::gateway {

struct BackoffOptions {
  Duration base = std::chrono::milliseconds(25);  // > 0
  Duration cap = std::chrono::milliseconds(250);  // >= base
};

// OK, or InvalidArgument naming the first bad field.
absl::Status ValidateBackoffOptions(const BackoffOptions& options);

// The upper bound for retry number `attempt` (1 for the first retry; < 1 is taken as 1):
// min(cap, base * 2^(attempt - 1)). Never overflows. A base <= 0 gives 0; a cap < base, cap.
Duration BackoffCeiling(const BackoffOptions& options, int attempt);

// Full jitter: `u01` (uniform in [0, 1); clamped into it) scales the ceiling, so the result is
// in [0, BackoffCeiling(options, attempt)].
Duration FullJitterBackoff(const BackoffOptions& options, int attempt, double u01);

// A uniform draw in [0, 1) from a 32- or 64-bit engine (std::mt19937, std::mt19937_64), mapped
// the same way by every standard library so that a seed gives the same sequence everywhere.
template <typename Engine>
double UniformUnit(Engine& rng) {
  static_assert(Engine::min() == 0, "needs an engine with min() == 0");
  if constexpr (Engine::max() == std::numeric_limits<uint32_t>::max()) {
    return static_cast<double>(rng()) * 0x1p-32;
  } else {
    static_assert(Engine::max() == std::numeric_limits<uint64_t>::max(),
                  "needs a 32- or 64-bit engine");
    return static_cast<double>(rng() >> 11) * 0x1p-53;
  }
}

// The wait before retry number `attempt` (1 for the first retry), drawn from `rng`. Deterministic
// for a given seed. Thread safety: that of `rng`.
template <typename Engine>
Duration NextBackoff(const BackoffOptions& options, int attempt, Engine& rng) {
  return FullJitterBackoff(options, attempt, UniformUnit(rng));
}

// Whether a retry that waits `backoff` from `now` still leaves at least `min_attempt_time`
// before `deadline`: now + backoff + min_attempt_time <= deadline, without overflow (a deadline
// of TimePoint::max() always fits). Negative durations count as 0.
bool FitsDeadline(TimePoint now, Duration backoff, TimePoint deadline, Duration min_attempt_time);

}  // namespace galley::gateway
