// The retry budget: caps retries at a fraction of recent requests plus a small reserve, so that
// retries can never multiply the load on replicas that are already failing (a retry storm).
//
// Semantics are Finagle's `RetryBudget(ttl, minRetriesPerSec, percentCanRetry)`
// (com.twitter.finagle.service.RetryBudget;
// https://twitter.github.io/finagle/guide/Clients.html#retries):
// every original request deposits a credit, every retry withdraws `1 / retry_ratio` credits, and
// both expire after `ttl`; on top, a reserve of `min_retries_per_second * ttl` retries is always
// there for clients that have just started or send little. So within any window of `ttl`:
//   retries <= retry_ratio * requests + min_retries_per_second * ttl_seconds.
// (Envoy's alternative, `retry_budget { budget_percent, min_retry_concurrency }`, caps retries in
// flight against requests in flight; Finagle's rate-based form needs no in-flight bookkeeping and
// matches "retries at most ~20% of requests, at least a few".)
//
// Pure: every method takes `now`; no clock reads, no locks. Not thread-safe: the caller
// serialises calls. `now` must not decrease between calls.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"

namespace galley::gateway {

struct RetryBudgetOptions {
  Duration ttl = std::chrono::seconds(10);  // [1 s, 60 s] as in Finagle; the sliding window
  int min_retries_per_second = 3;           // >= 0; Finagle minRetriesPerSec (its default is 10)
  double retry_ratio = 0.2;                 // [0, 1000]; Finagle percentCanRetry (a ratio)
  int buckets = 10;                         // the window's resolution (1 s by default)
};

// OK, or InvalidArgument naming the first bad field.
absl::Status ValidateRetryBudgetOptions(const RetryBudgetOptions& options);

// The window's counts, for metrics and tests.
struct RetryBudgetWindow {
  int64_t requests = 0;  // deposits in the window
  int64_t retries = 0;   // successful withdrawals in the window
};

class RetryBudget {
 public:
  // Options outside the documented ranges are clamped into them (check user input with
  // ValidateRetryBudgetOptions first).
  explicit RetryBudget(RetryBudgetOptions options = {});

  // One original request (not a retry) was made at `now`.
  void Deposit(TimePoint now);
  // A retry wants to go out at `now`: true (and the retry is counted) if the budget allows it,
  // false (and nothing changes) otherwise.
  bool TryWithdraw(TimePoint now);

  // How many retries TryWithdraw would allow at `now`, if no deposit came in between.
  int64_t Balance(TimePoint now) const;
  RetryBudgetWindow Window(TimePoint now) const;
  const RetryBudgetOptions& options() const { return options_; }

 private:
  struct Bucket {
    int64_t index = INT64_MIN;  // floor(time / bucket width); INT64_MIN: never used
    RetryBudgetWindow counts;
  };

  Bucket& Current(TimePoint now);
  int64_t BucketIndex(TimePoint t) const;
  int64_t Units(TimePoint now) const;  // the balance in credit units, reserve included

  RetryBudgetOptions options_;
  Duration bucket_width_;
  int64_t deposit_units_;     // credit per request
  int64_t withdrawal_units_;  // cost per retry
  int64_t reserve_units_;     // min_retries_per_second * ttl retries' worth
  std::vector<Bucket> buckets_;
};

}  // namespace galley::gateway
