// The circuit breaker: a pure state machine that decides whether a call to one upstream (a replica,
// or all replicas of a model) may go ahead, from the outcomes of recent calls. It has the semantics
// of Polly v8's advanced breaker (`CircuitBreakerStrategyOptions`: FailureRatio, MinimumThroughput,
// SamplingDuration, BreakDuration, BreakDurationGenerator) plus resilience4j's slow-call rule and
// permitted calls in half-open.
//
//   closed --(window holds >= minimum_throughput calls and failure ratio >= failure_ratio,
//             or slow-call ratio >= slow_call_ratio)--> open
//   open --(break elapsed; the next Allow())--> half-open, that Allow() is the first trial
//   half-open --(half_open_trials trials succeeded)--> closed (window and break growth reset)
//   half-open --(any trial failed)--> open, with a longer break
//   any --Isolate()--> isolated (forced open by an operator) --Reset()--> closed
//
// What counts as a failure for the gateway (see IsBreakerFailure): a connection error, a timeout
// (the replica did not answer within the attempt's deadline), an HTTP 5xx and an HTTP 429 (the
// replica is overloaded). A 4xx other than 429 is the client's fault and counts as a success: the
// replica answered. A call that ends with no verdict about the replica (the client went away,
// the gateway cancelled it) is reported with OnIgnored().
//
// Pure: no clock reads (every method takes `now`), no I/O, no locks. Not thread-safe: the caller
// serialises all calls on one breaker. `now` must not decrease between calls.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"

namespace galley::gateway {

enum class BreakerState { kClosed, kOpen, kHalfOpen, kIsolated };
// "closed", "open", "half_open", "isolated": stable, for metric labels and logs.
std::string_view BreakerStateName(BreakerState state);

// Why Allow() said no (STYLE rule 5: an expected rejection is a typed outcome).
enum class BreakerRejectReason {
  kNone,                // allowed
  kOpen,                // open, the break has not elapsed
  kHalfOpenTrialsBusy,  // half-open, every trial slot is taken by a call in flight
  kIsolated,            // forced open by an operator
};
// "none", "open", "half_open_trials_busy", "isolated".
std::string_view BreakerRejectReasonName(BreakerRejectReason reason);

enum class BreakerTransitionCause {
  kFailureRatio,     // closed -> open
  kSlowCallRatio,    // closed -> open
  kBreakElapsed,     // open -> half-open
  kTrialsSucceeded,  // half-open -> closed
  kTrialFailed,      // half-open -> open
  kIsolated,         // any -> isolated (operator)
  kReset,            // any -> closed (operator)
};
// "failure_ratio", "slow_call_ratio", "break_elapsed", "trials_succeeded", "trial_failed",
// "isolated", "reset".
std::string_view BreakerTransitionCauseName(BreakerTransitionCause cause);

// One state change, returned by the method that caused it so the caller can log and count it.
struct BreakerTransition {
  BreakerState from = BreakerState::kClosed;
  BreakerState to = BreakerState::kClosed;
  BreakerTransitionCause cause = BreakerTransitionCause::kFailureRatio;
  TimePoint at{};
  Duration break_duration{};  // when to == kOpen: how long it stays open
};

struct BreakerPermit {
  bool allowed = false;
  BreakerRejectReason reason = BreakerRejectReason::kNone;
  bool is_trial = false;   // a half-open trial: its outcome decides closed or open
  Duration retry_after{};  // when rejected as kOpen: time left in the break; otherwise 0
  std::optional<BreakerTransition> transition;  // open -> half-open happens inside Allow()
};

// Counts in the sliding window (see CircuitBreakerOptions::buckets).
struct BreakerWindow {
  int64_t calls = 0;
  int64_t failures = 0;
  int64_t slow_calls = 0;  // calls (failed or not) longer than slow_call_duration
};

// What a BreakDurationGenerator sees (Polly's BreakDurationGeneratorArguments, plus the jitter).
struct BreakDurationContext {
  int consecutive_opens = 1;  // 1 for closed -> open, 2 for the first re-open from half-open, ...
  BreakerWindow window;       // the window as it was when the breaker opened
  Duration nominal{};         // the default's un-jittered duration: min(cap, base * growth^(n-1))
  double jitter01 = 0;        // a uniform draw in [0, 1) from the breaker's seeded generator
};

struct CircuitBreakerOptions {
  // Closed -> open. Ratios compare as failures / calls >= ratio, exact to 1e-6.
  double failure_ratio = 0.5;                             // (0, 1]; Polly FailureRatio
  int64_t minimum_throughput = 20;                        // >= 1; Polly MinimumThroughput
  Duration sampling_duration = std::chrono::seconds(10);  // Polly SamplingDuration
  int buckets = 10;  // the window's resolution (1 s by default)
  // resilience4j slowCallRateThreshold; nullopt (the default) turns the slow-call rule off.
  std::optional<double> slow_call_ratio;                  // (0, 1]
  Duration slow_call_duration = std::chrono::seconds(1);  // longer than this is slow

  // Open: break = min(max_break_duration, break_duration * break_growth^(consecutive_opens-1)),
  // then shortened by up to break_jitter: uniform in [(1 - break_jitter) * d, d].
  Duration break_duration = std::chrono::seconds(5);       // > 0; Polly BreakDuration
  double break_growth = 2.0;                               // >= 1
  Duration max_break_duration = std::chrono::seconds(60);  // >= break_duration
  double break_jitter = 0.2;                               // [0, 1)
  // Polly BreakDurationGenerator: when set, its result (negative: 0) replaces the above.
  std::function<Duration(const BreakDurationContext&)> break_duration_generator;

  // Half-open: this many trial calls go through; all must succeed to close.
  int half_open_trials = 3;  // >= 1; resilience4j permittedNumberOfCallsInHalfOpenState

  // Seeds the jitter generator. Give each breaker its own (e.g. a hash of the replica's id) so
  // that breakers that opened together do not re-probe together.
  uint32_t seed = 0;
};

// OK, or InvalidArgument naming the first bad field. Use it to check user configuration.
absl::Status ValidateBreakerOptions(const CircuitBreakerOptions& options);

// The gateway's definition of a failure (see the file comment). `transport_error`: the call got
// no HTTP response (connect/read/write error or timeout); `http_status` is then ignored. A status
// outside 100..599 with no transport error is malformed and counts as a failure too.
bool IsBreakerFailure(int http_status, bool transport_error);

class CircuitBreaker {
 public:
  // Options outside the ranges documented above are clamped into them (check user input with
  // ValidateBreakerOptions first). Starts closed with an empty window.
  explicit CircuitBreaker(CircuitBreakerOptions options = {});

  // May a call go ahead now? Closed: yes. Open: no (kOpen, with retry_after) until the break has
  // elapsed; then this call moves the breaker to half-open (permit.transition) and is the first
  // trial. Half-open: yes as a trial while fewer than half_open_trials are admitted, else
  // kHalfOpenTrialsBusy. Isolated: no (kIsolated).
  // Every allowed permit must be followed by exactly one OnSuccess, OnFailure or OnIgnored.
  BreakerPermit Allow(TimePoint now);

  // The outcome of an allowed call that took `duration`. Outcomes are not matched to permits (as
  // in Polly and resilience4j): in closed they enter the window and may open the breaker; in
  // half-open a success counts towards closing only while a trial is in flight, and any failure
  // re-opens it; in open and isolated they are dropped. Returns the transition it caused, if any.
  std::optional<BreakerTransition> OnSuccess(TimePoint now, Duration duration);
  std::optional<BreakerTransition> OnFailure(TimePoint now, Duration duration);
  // An allowed call that ended without a verdict (cancelled): frees its half-open trial slot so
  // half-open cannot wedge. Never causes a transition; a no-op outside half-open.
  void OnIgnored(TimePoint now);

  // Operator controls. Isolate: forced open until Reset. Reset: closed, window and break growth
  // cleared. Each returns its transition, or nullopt when already in that state.
  std::optional<BreakerTransition> Isolate(TimePoint now);
  std::optional<BreakerTransition> Reset(TimePoint now);

  // The state as a caller should see it at `now`: open whose break has elapsed reads as
  // half-open (as Polly's CircuitState does), though the move happens in the next Allow().
  BreakerState State(TimePoint now) const;
  // The window's counts at `now`. Outcomes enter it only while closed; closing clears it.
  BreakerWindow Window(TimePoint now) const;
  // When the current break ends (meaningful in kOpen).
  TimePoint open_until() const { return open_until_; }
  // Opens since the breaker last closed (0 while closed); drives the break's growth.
  int consecutive_opens() const { return consecutive_opens_; }
  // Transitions since construction (every kind).
  uint64_t transitions() const { return transitions_; }
  const CircuitBreakerOptions& options() const { return options_; }

 private:
  struct Bucket {
    int64_t index = INT64_MIN;  // floor(time / bucket width); INT64_MIN: never used
    BreakerWindow counts;
  };

  void Record(TimePoint now, bool failure, Duration duration);
  std::optional<BreakerTransition> MaybeTrip(TimePoint now);
  BreakerTransition Open(TimePoint now, BreakerTransitionCause cause);
  BreakerTransition MoveTo(BreakerState to, BreakerTransitionCause cause, TimePoint now);
  Duration NextBreak(const BreakerWindow& window);
  int64_t BucketIndex(TimePoint t) const;
  void ClearWindow();

  CircuitBreakerOptions options_;
  Duration bucket_width_;
  int64_t failure_ratio_ppm_;
  std::optional<int64_t> slow_call_ratio_ppm_;
  std::mt19937 rng_;

  BreakerState state_ = BreakerState::kClosed;
  std::vector<Bucket> buckets_;
  TimePoint open_until_{};
  int consecutive_opens_ = 0;
  int trials_admitted_ = 0;   // half-open: admitted and not ignored
  int trials_succeeded_ = 0;  // half-open
  uint64_t transitions_ = 0;
};

}  // namespace galley::gateway
