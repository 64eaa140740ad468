// Optimistic concurrency helpers, following k8s.io/client-go/util/retry (RetryOnConflict,
// OnError, DefaultRetry, DefaultBackoff) and the Backoff arithmetic of
// k8s.io/apimachinery/pkg/util/wait (Backoff.Step).
#pragma once

#include <functional>

#include "absl/status/status.h"
#include "common/clock.h"

namespace galley::kube {

// wait.Backoff: `steps` attempts in all; the wait before attempt n+1 is duration * factor^(n-1)
// (capped at `cap` when set), plus up to `jitter` times that at random.
struct RetryBackoff {
  int steps = 5;
  Duration duration = std::chrono::milliseconds(10);
  double factor = 1.0;
  double jitter = 0.1;
  Duration cap = Duration::zero();  // zero: no cap
};

// client-go's retry.DefaultRetry: 5 steps, 10 ms, factor 1.0, jitter 0.1 (for conflicts).
inline constexpr RetryBackoff kDefaultRetry{};
// client-go's retry.DefaultBackoff: 4 steps, 10 ms, factor 5.0, jitter 0.1.
inline constexpr RetryBackoff kDefaultBackoff{4, std::chrono::milliseconds(10), 5.0, 0.1,
                                              Duration::zero()};

// The wait after failed attempt `attempt` (1-based), with `u01` a uniform draw in [0, 1). Pure.
Duration RetryDelay(const RetryBackoff& backoff, int attempt, double u01);

// Calls `fn` until it returns OK, an error for which `retriable` is false (returned at once), or
// backoff.steps attempts have failed (the last error is returned). Sleeps RetryDelay between
// attempts. `fn` must re-read the state it changes on every call.
absl::Status RetryOnError(const RetryBackoff& backoff,
                          const std::function<bool(const absl::Status&)>& retriable,
                          const std::function<absl::Status()>& fn);

// RetryOnError retrying only write conflicts (IsConflict(): HTTP 409, not AlreadyExists).
// Typical use:
//   RetryOnConflict(kDefaultRetry, [&] {
//     ASSIGN_OR_RETURN(auto obj, client.Get(...));   // fresh state each attempt
//     ...change obj...
//     return client.Update(...).status();
//   });
absl::Status RetryOnConflict(const RetryBackoff& backoff, const std::function<absl::Status()>& fn);

}  // namespace galley::kube
