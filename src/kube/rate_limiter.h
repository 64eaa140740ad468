// Client-side request rate limiting: a token bucket (the algorithm of golang.org/x/time/rate,
// which client-go's flowcontrol.NewTokenBucketRateLimiter wraps): tokens refill at `qps` per
// second up to `burst`; each request takes one, waiting for it when the bucket is empty.
// client-go's defaults are QPS 5, burst 10 (k8s.io/client-go/rest/config.go).
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace galley::kube {

struct RateLimit {
  double qps = 5.0;  // <= 0 disables limiting
  int burst = 10;    // >= 1
};

// Pure core: given `now`, reserves one token and says how long the caller must wait before
// using it (0 when a token was available). Reservations queue: a second caller reserving while
// the bucket is empty waits one refill interval longer. Thread-safe.
class TokenBucket {
 public:
  TokenBucket(RateLimit limit, TimePoint start);

  Duration Reserve(TimePoint now);
  // Tokens available at `now` (may be negative when waits are outstanding). For tests.
  double Tokens(TimePoint now) const;

 private:
  double TokensAtLocked(TimePoint now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RateLimit limit_;
  mutable absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  TimePoint last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace galley::kube
