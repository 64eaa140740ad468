#pragma once
// Locks the thread-safety analysis can check, and the few waits absl::CondVar does not spell.
//
// Galley locks with `absl::Mutex` (annotated as a capability) and `absl::MutexLock`, waits with
// `absl::CondVar`, and marks what a lock guards with `ABSL_GUARDED_BY`; the clang build
// (`-Wthread-safety`, an error there) proves every guarded access holds its lock. A predicate
// wait is a loop in the locked scope, so the analysis sees the lock held while it reads:
//
//   absl::MutexLock lock(&mu_);
//   while (queue_.empty() && !stopping_) cv_.Wait(&mu_);
//
// A std::stop_token ends a wait through `StopWaker`; a steady-clock deadline through
// `WaitUntil`. See docs/threading.md.

#include <chrono>
#include <stop_token>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace galley {

// Waits on `cv` (with `mu` held) until signalled or `deadline` on the steady clock passes.
// Returns false once the deadline has passed (also when it had passed before the call). Callers
// loop on their predicate, as with any condition variable.
inline bool WaitUntil(absl::CondVar& cv, absl::Mutex& mu,
                      std::chrono::steady_clock::time_point deadline)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  const auto left = deadline - std::chrono::steady_clock::now();
  if (left <= left.zero()) return false;
  cv.WaitWithTimeout(&mu, absl::FromChrono(left));
  return std::chrono::steady_clock::now() < deadline;
}

// The same with a duration from now.
inline bool WaitFor(absl::CondVar& cv, absl::Mutex& mu, std::chrono::nanoseconds timeout)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  return WaitUntil(cv, mu, std::chrono::steady_clock::now() + timeout);
}

// Wakes every waiter of `cv` when `stop` is requested, so a loop that checks
// `stop.stop_requested()` beside its predicate ends promptly. Construct it before taking `mu`
// (if stop was already requested the wake runs in the constructor, which takes `mu`), and never
// request the stop while holding `mu`.
class StopWaker {
 public:
  StopWaker(std::stop_token stop, absl::Mutex& mu, absl::CondVar& cv)
      : callback_(std::move(stop), Wake{&mu, &cv}) {}

 private:
  struct Wake {
    absl::Mutex* mu;
    absl::CondVar* cv;
    void operator()() const {
      absl::MutexLock lock(mu);
      cv->SignalAll();
    }
  };
  std::stop_callback<Wake> callback_;
};

// Sleeps for `d` or until `stop` is requested, whichever comes first. Returns false if it ended
// because of the stop.
inline bool SleepFor(std::chrono::nanoseconds d, std::stop_token stop) {
  absl::Mutex mu;
  absl::CondVar cv;
  StopWaker waker(stop, mu, cv);
  const auto deadline = std::chrono::steady_clock::now() + d;
  absl::MutexLock lock(&mu);
  while (!stop.stop_requested() && WaitUntil(cv, mu, deadline)) {
  }
  return !stop.stop_requested();
}

}  // namespace galley
