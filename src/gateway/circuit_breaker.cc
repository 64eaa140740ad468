#include "gateway/circuit_breaker.h"

#include <algorithm>
#include <cmath>

#include "common/strings.h"

namespace galley::gateway {
namespace {

constexpr int64_t kPpm = 1'000'000;

int64_t ToPpm(double ratio) { return static_cast<int64_t>(std::llround(ratio * kPpm)); }

bool InUnitInterval(double r) { return r > 0 && r <= 1; }  // false for NaN

double ClampRatio(double r, double fallback) {
  if (std::isnan(r)) return fallback;
  return std::clamp(r, 1.0 / kPpm, 1.0);
}

// Puts every option inside its documented range.
CircuitBreakerOptions Clamp(CircuitBreakerOptions o) {
  const CircuitBreakerOptions defaults;
  o.failure_ratio = ClampRatio(o.failure_ratio, defaults.failure_ratio);
  o.minimum_throughput = std::max<int64_t>(1, o.minimum_throughput);
  if (o.sampling_duration <= Duration::zero()) o.sampling_duration = defaults.sampling_duration;
  o.buckets = std::max(1, o.buckets);
  if (o.sampling_duration / o.buckets <= Duration::zero()) o.buckets = 1;
  if (o.slow_call_ratio) o.slow_call_ratio = ClampRatio(*o.slow_call_ratio, 1.0);
  o.break_duration = std::max(Duration(1), o.break_duration);
  if (std::isnan(o.break_growth) || o.break_growth < 1) o.break_growth = 1;
  o.max_break_duration = std::max(o.break_duration, o.max_break_duration);
  if (std::isnan(o.break_jitter)) o.break_jitter = 0;
  o.break_jitter = std::clamp(o.break_jitter, 0.0, 0.999);
  o.half_open_trials = std::max(1, o.half_open_trials);
  return o;
}

}  // namespace

std::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
    case BreakerState::kIsolated:
      return "isolated";
  }
  return "unknown";
}

std::string_view BreakerRejectReasonName(BreakerRejectReason reason) {
  switch (reason) {
    case BreakerRejectReason::kNone:
      return "none";
    case BreakerRejectReason::kOpen:
      return "open";
    case BreakerRejectReason::kHalfOpenTrialsBusy:
      return "half_open_trials_busy";
    case BreakerRejectReason::kIsolated:
      return "isolated";
  }
  return "unknown";
}

std::string_view BreakerTransitionCauseName(BreakerTransitionCause cause) {
  switch (cause) {
    case BreakerTransitionCause::kFailureRatio:
      return "failure_ratio";
    case BreakerTransitionCause::kSlowCallRatio:
      return "slow_call_ratio";
    case BreakerTransitionCause::kBreakElapsed:
      return "break_elapsed";
    case BreakerTransitionCause::kTrialsSucceeded:
      return "trials_succeeded";
    case BreakerTransitionCause::kTrialFailed:
      return "trial_failed";
    case BreakerTransitionCause::kIsolated:
      return "isolated";
    case BreakerTransitionCause::kReset:
      return "reset";
  }
  return "unknown";
}

absl::Status ValidateBreakerOptions(const CircuitBreakerOptions& o) {
  auto bad = [](std::string_view field, std::string_view rule) {
    return absl::InvalidArgumentError(StrCat("circuit breaker: ", field, " must be ", rule));
  };
  if (!InUnitInterval(o.failure_ratio)) return bad("failure_ratio", "in (0, 1]");
  if (o.minimum_throughput < 1) return bad("minimum_throughput", ">= 1");
  if (o.buckets < 1) return bad("buckets", ">= 1");
  if (o.sampling_duration <= Duration::zero() ||
      o.sampling_duration / o.buckets <= Duration::zero()) {
    return bad("sampling_duration", "positive and at least `buckets` nanoseconds");
  }
  if (o.slow_call_ratio && !InUnitInterval(*o.slow_call_ratio)) {
    return bad("slow_call_ratio", "in (0, 1]");
  }
  if (o.slow_call_duration < Duration::zero()) return bad("slow_call_duration", ">= 0");
  if (o.break_duration <= Duration::zero()) return bad("break_duration", "> 0");
  if (!(o.break_growth >= 1)) return bad("break_growth", ">= 1");
  if (o.max_break_duration < o.break_duration) {
    return bad("max_break_duration", ">= break_duration");
  }
  if (!(o.break_jitter >= 0 && o.break_jitter < 1)) return bad("break_jitter", "in [0, 1)");
  if (o.half_open_trials < 1) return bad("half_open_trials", ">= 1");
  return absl::OkStatus();
}

bool IsBreakerFailure(int http_status, bool transport_error) {
  if (transport_error) return true;
  if (http_status < 100 || http_status > 599) return true;  // no valid answer
  return http_status >= 500 || http_status == 429;
}

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options)
    : options_(Clamp(std::move(options))),
      bucket_width_(options_.sampling_duration / options_.buckets),
      failure_ratio_ppm_(ToPpm(options_.failure_ratio)),
      rng_(options_.seed),
      buckets_(static_cast<size_t>(options_.buckets)) {
  if (options_.slow_call_ratio) slow_call_ratio_ppm_ = ToPpm(*options_.slow_call_ratio);
}

BreakerPermit CircuitBreaker::Allow(TimePoint now) {
  BreakerPermit permit;
  switch (state_) {
    case BreakerState::kClosed:
      permit.allowed = true;
      return permit;
    case BreakerState::kIsolated:
      permit.reason = BreakerRejectReason::kIsolated;
      return permit;
    case BreakerState::kOpen:
      if (now < open_until_) {
        permit.reason = BreakerRejectReason::kOpen;
        permit.retry_after = open_until_ - now;
        return permit;
      }
      permit.transition =
          MoveTo(BreakerState::kHalfOpen, BreakerTransitionCause::kBreakElapsed, now);
      trials_admitted_ = 1;
      trials_succeeded_ = 0;
      permit.allowed = true;
      permit.is_trial = true;
      return permit;
    case BreakerState::kHalfOpen:
      if (trials_admitted_ >= options_.half_open_trials) {
        permit.reason = BreakerRejectReason::kHalfOpenTrialsBusy;
        return permit;
      }
      ++trials_admitted_;
      permit.allowed = true;
      permit.is_trial = true;
      return permit;
  }
  return permit;
}

std::optional<BreakerTransition> CircuitBreaker::OnSuccess(TimePoint now, Duration duration) {
  switch (state_) {
    case BreakerState::kClosed:
      Record(now, /*failure=*/false, duration);
      return MaybeTrip(now);
    case BreakerState::kHalfOpen:
      if (trials_admitted_ <= trials_succeeded_) return std::nullopt;  // no trial in flight
      if (++trials_succeeded_ < options_.half_open_trials) return std::nullopt;
      ClearWindow();
      consecutive_opens_ = 0;
      return MoveTo(BreakerState::kClosed, BreakerTransitionCause::kTrialsSucceeded, now);
    case BreakerState::kOpen:
    case BreakerState::kIsolated:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<BreakerTransition> CircuitBreaker::OnFailure(TimePoint now, Duration duration) {
  switch (state_) {
    case BreakerState::kClosed:
      Record(now, /*failure=*/true, duration);
      return MaybeTrip(now);
    case BreakerState::kHalfOpen:
      return Open(now, BreakerTransitionCause::kTrialFailed);
    case BreakerState::kOpen:
    case BreakerState::kIsolated:
      return std::nullopt;
  }
  return std::nullopt;
}

void CircuitBreaker::OnIgnored(TimePoint now) {
  if (state_ == BreakerState::kHalfOpen && trials_admitted_ > trials_succeeded_) {
    --trials_admitted_;
  }
}

std::optional<BreakerTransition> CircuitBreaker::Isolate(TimePoint now) {
  if (state_ == BreakerState::kIsolated) return std::nullopt;
  trials_admitted_ = trials_succeeded_ = 0;
  return MoveTo(BreakerState::kIsolated, BreakerTransitionCause::kIsolated, now);
}

std::optional<BreakerTransition> CircuitBreaker::Reset(TimePoint now) {
  ClearWindow();
  consecutive_opens_ = 0;
  trials_admitted_ = trials_succeeded_ = 0;
  if (state_ == BreakerState::kClosed) return std::nullopt;
  return MoveTo(BreakerState::kClosed, BreakerTransitionCause::kReset, now);
}

BreakerState CircuitBreaker::State(TimePoint now) const {
  if (state_ == BreakerState::kOpen && now >= open_until_) return BreakerState::kHalfOpen;
  return state_;
}

BreakerWindow CircuitBreaker::Window(TimePoint now) const {
  const int64_t current = BucketIndex(now);
  const int64_t oldest = current - options_.buckets + 1;
  BreakerWindow sum;
  for (const Bucket& b : buckets_) {
    if (b.index < oldest || b.index > current) continue;
    sum.calls += b.counts.calls;
    sum.failures += b.counts.failures;
    sum.slow_calls += b.counts.slow_calls;
  }
  return sum;
}

// NOTE: like Polly's rolling health metrics, the window is a ring of buckets: an outcome counts
// for between (buckets - 1) and `buckets` bucket widths, not exactly sampling_duration.
void CircuitBreaker::Record(TimePoint now, bool failure, Duration duration) {
  const int64_t index = BucketIndex(now);
  const int64_t n = options_.buckets;
  Bucket& b = buckets_[static_cast<size_t>(((index % n) + n) % n)];
  if (b.index != index) {
    b.index = index;
    b.counts = {};
  }
  ++b.counts.calls;
  if (failure) ++b.counts.failures;
  if (duration > options_.slow_call_duration) ++b.counts.slow_calls;
}

std::optional<BreakerTransition> CircuitBreaker::MaybeTrip(TimePoint now) {
  const BreakerWindow w = Window(now);
  if (w.calls < options_.minimum_throughput) return std::nullopt;
  if (w.failures * kPpm >= failure_ratio_ppm_ * w.calls) {
    return Open(now, BreakerTransitionCause::kFailureRatio);
  }
  if (slow_call_ratio_ppm_ && w.slow_calls * kPpm >= *slow_call_ratio_ppm_ * w.calls) {
    return Open(now, BreakerTransitionCause::kSlowCallRatio);
  }
  return std::nullopt;
}

BreakerTransition CircuitBreaker::Open(TimePoint now, BreakerTransitionCause cause) {
  consecutive_opens_ = state_ == BreakerState::kClosed ? 1 : consecutive_opens_ + 1;
  const Duration d = NextBreak(Window(now));
  open_until_ = now + d;
  trials_admitted_ = trials_succeeded_ = 0;
  BreakerTransition t = MoveTo(BreakerState::kOpen, cause, now);
  t.break_duration = d;
  return t;
}

BreakerTransition CircuitBreaker::MoveTo(BreakerState to, BreakerTransitionCause cause,
                                         TimePoint now) {
  BreakerTransition t;
  t.from = state_;
  t.to = to;
  t.cause = cause;
  t.at = now;
  state_ = to;
  ++transitions_;
  return t;
}

Duration CircuitBreaker::NextBreak(const BreakerWindow& window) {
  BreakDurationContext ctx;
  ctx.consecutive_opens = consecutive_opens_;
  ctx.window = window;
  // Grow step by step so that a large consecutive_opens cannot overflow.
  const Duration cap = options_.max_break_duration;
  double nominal = static_cast<double>(options_.break_duration.count());
  for (int i = 1; i < consecutive_opens_ && nominal < static_cast<double>(cap.count()); ++i) {
    nominal *= options_.break_growth;
  }
  ctx.nominal = nominal >= static_cast<double>(cap.count())
                    ? cap
                    : Duration(static_cast<Duration::rep>(nominal));
  // One draw per open, from the top 32 bits' worth: portable across standard libraries.
  ctx.jitter01 = static_cast<double>(rng_()) * 0x1p-32;
  if (options_.break_duration_generator) {
    return std::max(Duration::zero(), options_.break_duration_generator(ctx));
  }
  const double scale = 1.0 - options_.break_jitter * ctx.jitter01;
  return Duration(static_cast<Duration::rep>(static_cast<double>(ctx.nominal.count()) * scale));
}

int64_t CircuitBreaker::BucketIndex(TimePoint t) const {
  const int64_t ticks = t.time_since_epoch().count();
  const int64_t width = bucket_width_.count();
  int64_t q = ticks / width;
  if (ticks % width != 0 && ticks < 0) --q;  // floor, also before the epoch
  return q;
}

void CircuitBreaker::ClearWindow() {
  for (Bucket& b : buckets_) b = Bucket{};
}

}  // namespace galley::gateway
