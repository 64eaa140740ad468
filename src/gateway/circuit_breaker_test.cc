#include "gateway/circuit_breaker.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/strings.h"
#include "gtest/gtest.h"

namespace galley::gateway {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Cause = BreakerTransitionCause;
using Reason = BreakerRejectReason;
using State = BreakerState;

const TimePoint kStart = TimePoint{} + std::chrono::hours(1);
TimePoint At(int64_t ms) { return kStart + milliseconds(ms); }

// Small numbers so that the tables stay readable; no jitter so that breaks are exact.
CircuitBreakerOptions TestOptions() {
  CircuitBreakerOptions o;
  o.minimum_throughput = 4;
  o.failure_ratio = 0.5;
  o.sampling_duration = seconds(10);  // 10 buckets of 1 s
  o.break_duration = seconds(5);
  o.break_growth = 2;
  o.max_break_duration = seconds(60);
  o.break_jitter = 0;
  o.half_open_trials = 2;
  return o;
}

CircuitBreakerOptions WithSlowCalls() {
  CircuitBreakerOptions o = TestOptions();
  o.slow_call_ratio = 0.5;
  o.slow_call_duration = seconds(1);
  return o;
}

CircuitBreakerOptions WithCap(Duration cap) {
  CircuitBreakerOptions o = TestOptions();
  o.max_break_duration = cap;
  return o;
}

enum class Op { kAllow, kSuccess, kFailure, kIgnore, kIsolate, kReset, kLook };

// One step: at `at_ms`, do `op` `times` times (outcomes took `took_ms`). Together they must
// cause exactly one transition, for `cause` (nullopt: none); afterwards State() is `state`. For
// kAllow every repetition must answer `reject` (kNone: allowed). Where the exact call that
// causes a transition matters, the table splits it into its own step.
struct Step {
  int64_t at_ms;
  Op op;
  int times;
  std::optional<Cause> cause;
  State state;
  Reason reject = Reason::kNone;
  int64_t took_ms = 10;
};

struct Case {
  const char* name;
  CircuitBreakerOptions options;
  std::vector<Step> steps;
};

// Opens the breaker at t=0 with 4 failures (the minimum throughput, 100% failures).
std::vector<Step> OpenAtZero() {
  return {{0, Op::kFailure, 4, Cause::kFailureRatio, State::kOpen}};
}

std::vector<Step> Concat(std::vector<Step> a, const std::vector<Step>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::optional<BreakerTransition> Do(CircuitBreaker& b, const Step& s, const std::string& where) {
  const TimePoint now = At(s.at_ms);
  switch (s.op) {
    case Op::kAllow: {
      BreakerPermit p = b.Allow(now);
      EXPECT_EQ(p.allowed, s.reject == Reason::kNone) << where;
      EXPECT_EQ(p.reason, s.reject) << where;
      if (p.allowed) {
        EXPECT_EQ(p.is_trial, b.State(now) == State::kHalfOpen) << where;
      }
      return p.transition;
    }
    case Op::kSuccess:
      return b.OnSuccess(now, milliseconds(s.took_ms));
    case Op::kFailure:
      return b.OnFailure(now, milliseconds(s.took_ms));
    case Op::kIgnore:
      b.OnIgnored(now);
      return std::nullopt;
    case Op::kIsolate:
      return b.Isolate(now);
    case Op::kReset:
      return b.Reset(now);
    case Op::kLook:
      return std::nullopt;
  }
  return std::nullopt;
}

State TargetOf(Cause c) {
  switch (c) {
    case Cause::kFailureRatio:
    case Cause::kSlowCallRatio:
    case Cause::kTrialFailed:
      return State::kOpen;
    case Cause::kBreakElapsed:
      return State::kHalfOpen;
    case Cause::kTrialsSucceeded:
    case Cause::kReset:
      return State::kClosed;
    case Cause::kIsolated:
      return State::kIsolated;
  }
  return State::kClosed;
}

void RunCase(const Case& c) {
  CircuitBreaker b(c.options);
  uint64_t transitions = 0;
  for (size_t i = 0; i < c.steps.size(); ++i) {
    const Step& s = c.steps[i];
    const std::string where = StrCat(c.name, ": step ", i);
    std::vector<BreakerTransition> caused;
    for (int r = 0; r < s.times; ++r) {
      if (std::optional<BreakerTransition> t = Do(b, s, StrCat(where, " repetition ", r))) {
        caused.push_back(*t);
      }
    }
    transitions += caused.size();
    if (!s.cause) {
      EXPECT_TRUE(caused.empty()) << where << ": unexpected transition to "
                                  << BreakerStateName(caused.front().to);
    } else if (caused.size() != 1) {
      ADD_FAILURE() << where << ": expected one " << BreakerTransitionCauseName(*s.cause)
                    << ", got " << caused.size() << " transitions";
    } else {
      const BreakerTransition& t = caused.front();
      EXPECT_EQ(t.cause, *s.cause) << where << ": got " << BreakerTransitionCauseName(t.cause);
      EXPECT_EQ(t.to, TargetOf(*s.cause)) << where;
      EXPECT_EQ(t.at, At(s.at_ms)) << where;
    }
    EXPECT_EQ(b.State(At(s.at_ms)), s.state)
        << where << ": state " << BreakerStateName(b.State(At(s.at_ms)));
  }
  EXPECT_EQ(b.transitions(), transitions) << c.name;
}

TEST(CircuitBreakerTest, Transitions) {
  const std::vector<Case> cases = {
      {"closed allows", TestOptions(), {{0, Op::kAllow, 5, std::nullopt, State::kClosed}}},
      {"below minimum throughput stays closed at 100% failures",
       TestOptions(),
       {{0, Op::kFailure, 3, std::nullopt, State::kClosed},
        {0, Op::kAllow, 1, std::nullopt, State::kClosed}}},
      {"opens exactly when ratio and minimum throughput are reached",
       TestOptions(),
       {{0, Op::kSuccess, 2, std::nullopt, State::kClosed},
        {0, Op::kFailure, 1, std::nullopt, State::kClosed},
        {0, Op::kFailure, 1, Cause::kFailureRatio, State::kOpen}}},
      {"below the ratio stays closed until it is reached",
       TestOptions(),
       {{0, Op::kSuccess, 3, std::nullopt, State::kClosed},
        {0, Op::kFailure, 2, std::nullopt, State::kClosed},          // 2 of 5: 40%
        {0, Op::kFailure, 1, Cause::kFailureRatio, State::kOpen}}},  // 3 of 6: 50%
      {"a success that brings the minimum throughput can open it",
       TestOptions(),
       {{0, Op::kFailure, 3, std::nullopt, State::kClosed},
        {0, Op::kSuccess, 1, Cause::kFailureRatio, State::kOpen}}},
      {"failures spread over the window still count",
       TestOptions(),
       {{0, Op::kFailure, 1, std::nullopt, State::kClosed},
        {3000, Op::kFailure, 1, std::nullopt, State::kClosed},
        {6000, Op::kFailure, 1, std::nullopt, State::kClosed},
        {9999, Op::kFailure, 1, Cause::kFailureRatio, State::kOpen}}},
      {"old failures slide out of the window",
       TestOptions(),
       {{0, Op::kFailure, 3, std::nullopt, State::kClosed},
        {10000, Op::kFailure, 1, std::nullopt, State::kClosed},
        {10000, Op::kFailure, 2, std::nullopt, State::kClosed},  // 3 in the window
        {10000, Op::kFailure, 1, Cause::kFailureRatio, State::kOpen}}},
      {"slow calls open it when the slow-call rule is on",
       WithSlowCalls(),
       {{0, Op::kSuccess, 2, std::nullopt, State::kClosed, Reason::kNone, 10},
        {0, Op::kSuccess, 1, std::nullopt, State::kClosed, Reason::kNone, 1500},
        {0, Op::kSuccess, 1, Cause::kSlowCallRatio, State::kOpen, Reason::kNone, 1500}}},
      {"slow calls do nothing when the slow-call rule is off",
       TestOptions(),
       {{0, Op::kSuccess, 10, std::nullopt, State::kClosed, Reason::kNone, 30000}}},
      {"a call exactly at the slow-call duration is not slow",
       WithSlowCalls(),
       {{0, Op::kSuccess, 10, std::nullopt, State::kClosed, Reason::kNone, 1000}}},
      {"open rejects until the break has elapsed", TestOptions(),
       Concat(OpenAtZero(), {{1, Op::kAllow, 3, std::nullopt, State::kOpen, Reason::kOpen},
                             {4999, Op::kAllow, 1, std::nullopt, State::kOpen, Reason::kOpen}})},
      {"after the break it reads half-open and the next call is a trial", TestOptions(),
       Concat(OpenAtZero(), {{5000, Op::kLook, 1, std::nullopt, State::kHalfOpen},
                             {5000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen}})},
      {"half-open lets only the configured number of trials through", TestOptions(),
       Concat(OpenAtZero(), {{5000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen},
                             {5001, Op::kAllow, 1, std::nullopt, State::kHalfOpen},
                             {5002, Op::kAllow, 3, std::nullopt, State::kHalfOpen,
                              Reason::kHalfOpenTrialsBusy}})},
      {"all trials succeed: closed, with an empty window", TestOptions(),
       Concat(OpenAtZero(),
              {{5000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen},
               {5000, Op::kAllow, 1, std::nullopt, State::kHalfOpen},
               {5100, Op::kSuccess, 1, std::nullopt, State::kHalfOpen},
               {5100, Op::kSuccess, 1, Cause::kTrialsSucceeded, State::kClosed},
               {5200, Op::kFailure, 3, std::nullopt, State::kClosed},  // old failures gone
               {5200, Op::kFailure, 1, Cause::kFailureRatio, State::kOpen}})},
      {"a trial failure re-opens it with a doubled break", TestOptions(),
       Concat(OpenAtZero(), {{5000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen},
                             {5000, Op::kAllow, 1, std::nullopt, State::kHalfOpen},
                             {5100, Op::kSuccess, 1, std::nullopt, State::kHalfOpen},
                             {5100, Op::kFailure, 1, Cause::kTrialFailed, State::kOpen},
                             {15099, Op::kAllow, 1, std::nullopt, State::kOpen, Reason::kOpen},
                             {15100, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen}})},
      {"break growth stops at the cap", WithCap(seconds(12)),
       Concat(OpenAtZero(),
              {{5000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen},  // broke 5 s
               {5000, Op::kFailure, 1, Cause::kTrialFailed, State::kOpen},
               {15000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen},  // broke 10 s
               {15000, Op::kFailure, 1, Cause::kTrialFailed, State::kOpen},
               {26999, Op::kAllow, 1, std::nullopt, State::kOpen, Reason::kOpen},
               {27000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen},  // 12 s, not 20
               {27000, Op::kFailure, 1, Cause::kTrialFailed, State::kOpen},
               {39000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen}})},  // 12 s again
      {"closing resets break growth", TestOptions(),
       Concat(OpenAtZero(),
              {{5000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen},
               {5000, Op::kFailure, 1, Cause::kTrialFailed, State::kOpen},  // 10 s
               {15000, Op::kAllow, 2, Cause::kBreakElapsed, State::kHalfOpen},
               {15000, Op::kSuccess, 2, Cause::kTrialsSucceeded, State::kClosed},
               {16000, Op::kFailure, 4, Cause::kFailureRatio, State::kOpen},
               {20999, Op::kAllow, 1, std::nullopt, State::kOpen, Reason::kOpen},
               {21000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen}})},  // 5 s again
      {"an ignored permit frees its trial slot", TestOptions(),
       Concat(OpenAtZero(),
              {{5000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen},
               {5000, Op::kAllow, 1, std::nullopt, State::kHalfOpen},
               {5000, Op::kAllow, 1, std::nullopt, State::kHalfOpen, Reason::kHalfOpenTrialsBusy},
               {5050, Op::kIgnore, 1, std::nullopt, State::kHalfOpen},
               {5060, Op::kAllow, 1, std::nullopt, State::kHalfOpen},
               {5100, Op::kSuccess, 1, std::nullopt, State::kHalfOpen},
               {5100, Op::kSuccess, 1, Cause::kTrialsSucceeded, State::kClosed}})},
      {"an ignored permit is no success", TestOptions(),
       Concat(OpenAtZero(), {{5000, Op::kAllow, 2, Cause::kBreakElapsed, State::kHalfOpen},
                             {5050, Op::kIgnore, 1, std::nullopt, State::kHalfOpen},
                             {5100, Op::kSuccess, 1, std::nullopt, State::kHalfOpen},
                             {5200, Op::kLook, 1, std::nullopt, State::kHalfOpen}})},
      {"a success with no trial in flight does not count", TestOptions(),
       Concat(OpenAtZero(),
              {{5000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen},
               {5100, Op::kSuccess, 1, std::nullopt, State::kHalfOpen},
               {5100, Op::kSuccess, 3, std::nullopt, State::kHalfOpen},  // late, not trials
               {5200, Op::kAllow, 1, std::nullopt, State::kHalfOpen},
               {5300, Op::kSuccess, 1, Cause::kTrialsSucceeded, State::kClosed}})},
      {"ignoring outside half-open does nothing",
       TestOptions(),
       {{0, Op::kIgnore, 10, std::nullopt, State::kClosed},
        {0, Op::kFailure, 4, Cause::kFailureRatio, State::kOpen},
        {1, Op::kIgnore, 10, std::nullopt, State::kOpen}}},
      {"outcomes while open are dropped", TestOptions(),
       Concat(OpenAtZero(), {{100, Op::kSuccess, 10, std::nullopt, State::kOpen},
                             {200, Op::kFailure, 10, std::nullopt, State::kOpen},
                             {4999, Op::kAllow, 1, std::nullopt, State::kOpen, Reason::kOpen}})},
      {"isolate forces it open until reset",
       TestOptions(),
       {{0, Op::kIsolate, 1, Cause::kIsolated, State::kIsolated},
        {0, Op::kIsolate, 1, std::nullopt, State::kIsolated},
        {0, Op::kSuccess, 5, std::nullopt, State::kIsolated},
        {3600000, Op::kAllow, 1, std::nullopt, State::kIsolated, Reason::kIsolated},
        {3600000, Op::kReset, 1, Cause::kReset, State::kClosed},
        {3600000, Op::kAllow, 1, std::nullopt, State::kClosed}}},
      {"isolate from open, reset from half-open", TestOptions(),
       Concat(OpenAtZero(),
              {{10, Op::kIsolate, 1, Cause::kIsolated, State::kIsolated},
               {5000, Op::kReset, 1, Cause::kReset, State::kClosed},
               {5000, Op::kReset, 1, std::nullopt, State::kClosed},
               {5000, Op::kFailure, 4, Cause::kFailureRatio, State::kOpen},
               {10000, Op::kAllow, 1, Cause::kBreakElapsed, State::kHalfOpen},  // 5 s: growth reset
               {10000, Op::kReset, 1, Cause::kReset, State::kClosed}})},
      {"reset clears the window",
       TestOptions(),
       {{0, Op::kFailure, 3, std::nullopt, State::kClosed},
        {0, Op::kReset, 1, std::nullopt, State::kClosed},
        {0, Op::kFailure, 3, std::nullopt, State::kClosed}}},
  };
  for (const Case& c : cases) RunCase(c);
}

TEST(CircuitBreakerTest, DefaultsMatchTheIssue) {
  const CircuitBreakerOptions o;
  EXPECT_EQ(o.failure_ratio, 0.5);
  EXPECT_EQ(o.minimum_throughput, 20);
  EXPECT_EQ(o.sampling_duration, seconds(10));
  EXPECT_EQ(o.break_duration, seconds(5));
  EXPECT_EQ(o.max_break_duration, seconds(60));
  EXPECT_EQ(o.half_open_trials, 3);
  EXPECT_FALSE(o.slow_call_ratio.has_value());
  EXPECT_TRUE(ValidateBreakerOptions(o).ok());

  CircuitBreaker b;
  for (int i = 0; i < 19; ++i) EXPECT_FALSE(b.OnFailure(At(0), milliseconds(1)).has_value());
  EXPECT_EQ(b.State(At(0)), State::kClosed);
  std::optional<BreakerTransition> t = b.OnFailure(At(0), milliseconds(1));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, State::kOpen);
  EXPECT_GE(t->break_duration, seconds(4));  // 5 s shortened by up to 20% jitter
  EXPECT_LE(t->break_duration, seconds(5));
  EXPECT_EQ(b.open_until(), At(0) + t->break_duration);
}

TEST(CircuitBreakerTest, RejectionSaysHowLongTheBreakLasts) {
  CircuitBreaker b(TestOptions());
  for (int i = 0; i < 4; ++i) b.OnFailure(At(0), milliseconds(1));
  const BreakerPermit p = b.Allow(At(1500));
  EXPECT_FALSE(p.allowed);
  EXPECT_EQ(p.reason, Reason::kOpen);
  EXPECT_EQ(p.retry_after, milliseconds(3500));
  EXPECT_FALSE(p.transition.has_value());
  const BreakerPermit trial = b.Allow(At(5000));
  EXPECT_TRUE(trial.allowed);
  EXPECT_TRUE(trial.is_trial);
  ASSERT_TRUE(trial.transition.has_value());
  EXPECT_EQ(trial.transition->from, State::kOpen);
  EXPECT_EQ(trial.transition->to, State::kHalfOpen);
}

TEST(CircuitBreakerTest, WindowCounts) {
  CircuitBreaker b(WithSlowCalls());
  b.OnSuccess(At(0), milliseconds(10));
  b.OnSuccess(At(500), seconds(2));
  b.OnFailure(At(1500), seconds(2));
  BreakerWindow w = b.Window(At(1500));
  EXPECT_EQ(w.calls, 3);
  EXPECT_EQ(w.failures, 1);
  EXPECT_EQ(w.slow_calls, 2);
  w = b.Window(At(10500));  // the bucket [0 s, 1 s) has left the window
  EXPECT_EQ(w.calls, 1);
  EXPECT_EQ(b.Window(At(11000)).calls, 0);
}

// Opens and re-opens a breaker `n` times, returning each break.
std::vector<Duration> Breaks(CircuitBreakerOptions o, int n) {
  CircuitBreaker b(std::move(o));
  std::vector<Duration> out;
  TimePoint now = At(0);
  for (int i = 0; i < 4; ++i) b.OnFailure(now, milliseconds(1));
  for (int i = 0; i < n; ++i) {
    out.push_back(b.open_until() - now);
    now = b.open_until();
    EXPECT_TRUE(b.Allow(now).allowed);
    EXPECT_TRUE(b.OnFailure(now, milliseconds(1)).has_value());
  }
  return out;
}

TEST(CircuitBreakerTest, JitterStaysInBoundsAndFollowsTheSeed) {
  CircuitBreakerOptions o = TestOptions();
  o.break_jitter = 0.25;
  o.max_break_duration = seconds(40);
  o.seed = 42;
  const std::vector<Duration> a = Breaks(o, 12);
  const std::vector<Duration> again = Breaks(o, 12);
  EXPECT_EQ(a, again);  // same seed, same breaks
  o.seed = 43;
  EXPECT_NE(Breaks(o, 12), a);
  bool any_shortened = false;
  for (size_t i = 0; i < a.size(); ++i) {
    const Duration nominal = std::min<Duration>(seconds(40), seconds(5) * (int64_t{1} << i));
    EXPECT_LE(a[i], nominal) << i;
    EXPECT_GE(a[i], nominal * 3 / 4) << i;
    any_shortened = any_shortened || a[i] < nominal;
  }
  EXPECT_TRUE(any_shortened);
}

TEST(CircuitBreakerTest, BreakDurationGeneratorOverrides) {
  CircuitBreakerOptions o = TestOptions();
  std::vector<BreakDurationContext> seen;
  o.break_duration_generator = [&seen](const BreakDurationContext& ctx) {
    seen.push_back(ctx);
    return seconds(1) * ctx.consecutive_opens;
  };
  EXPECT_EQ(Breaks(o, 3), (std::vector<Duration>{seconds(1), seconds(2), seconds(3)}));
  ASSERT_EQ(seen.size(), 4u);  // Breaks() re-opens once more after its last measurement
  EXPECT_EQ(seen[0].consecutive_opens, 1);
  EXPECT_EQ(seen[3].consecutive_opens, 4);
  EXPECT_EQ(seen[0].window.calls, 4);
  EXPECT_EQ(seen[0].window.failures, 4);
  EXPECT_EQ(seen[0].nominal, seconds(5));
  EXPECT_EQ(seen[1].nominal, seconds(10));
  EXPECT_EQ(seen[2].nominal, seconds(20));
  EXPECT_EQ(seen[3].nominal, seconds(40));
  for (const auto& ctx : seen) {
    EXPECT_GE(ctx.jitter01, 0.0);
    EXPECT_LT(ctx.jitter01, 1.0);
  }
}

TEST(CircuitBreakerTest, HugeGrowthDoesNotOverflow) {
  CircuitBreakerOptions o = TestOptions();
  o.break_growth = 1e9;
  o.max_break_duration = std::chrono::hours(1);
  const std::vector<Duration> b = Breaks(o, 40);
  EXPECT_EQ(b[0], seconds(5));
  for (size_t i = 1; i < b.size(); ++i) EXPECT_EQ(b[i], std::chrono::hours(1)) << i;
}

struct FailureCase {
  int status;
  bool transport_error;
  bool failure;
};

TEST(IsBreakerFailureTest, Table) {
  const std::vector<FailureCase> cases = {
      {200, false, false}, {204, false, false}, {301, false, false}, {400, false, false},
      {401, false, false}, {404, false, false}, {408, false, false}, {413, false, false},
      {422, false, false}, {429, false, true},  {500, false, true},  {502, false, true},
      {503, false, true},  {504, false, true},  {599, false, true},  {0, true, true},
      {200, true, true},   {0, false, true},    {42, false, true},   {600, false, true},
  };
  for (const FailureCase& c : cases) {
    EXPECT_EQ(IsBreakerFailure(c.status, c.transport_error), c.failure)
        << c.status << " transport_error=" << c.transport_error;
  }
}

TEST(IsBreakerFailureTest, ClientErrorsNeverOpenTheBreaker) {
  CircuitBreaker b(TestOptions());
  for (int i = 0; i < 100; ++i) {
    const int status = i % 2 == 0 ? 400 : 404;
    const auto t = IsBreakerFailure(status, false) ? b.OnFailure(At(i), milliseconds(1))
                                                   : b.OnSuccess(At(i), milliseconds(1));
    EXPECT_FALSE(t.has_value());
  }
  EXPECT_EQ(b.State(At(100)), State::kClosed);
  EXPECT_EQ(b.Window(At(100)).failures, 0);
  for (int i = 0; i < 4; ++i) {
    if (IsBreakerFailure(429, false)) b.OnFailure(At(200), milliseconds(1));
  }
  EXPECT_EQ(b.Window(At(200)).failures, 4);
}

TEST(CircuitBreakerOptionsTest, Validation) {
  auto invalid = [](auto mutate) {
    CircuitBreakerOptions o;
    mutate(o);
    return ValidateBreakerOptions(o).code() == absl::StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(invalid([](auto& o) { o.failure_ratio = 0; }));
  EXPECT_TRUE(invalid([](auto& o) { o.failure_ratio = 1.5; }));
  EXPECT_TRUE(invalid([](auto& o) { o.minimum_throughput = 0; }));
  EXPECT_TRUE(invalid([](auto& o) { o.sampling_duration = Duration::zero(); }));
  EXPECT_TRUE(invalid([](auto& o) { o.buckets = 0; }));
  EXPECT_TRUE(invalid([](auto& o) { o.slow_call_ratio = 0; }));
  EXPECT_TRUE(invalid([](auto& o) { o.break_duration = Duration::zero(); }));
  EXPECT_TRUE(invalid([](auto& o) { o.break_growth = 0.5; }));
  EXPECT_TRUE(invalid([](auto& o) { o.max_break_duration = seconds(1); }));
  EXPECT_TRUE(invalid([](auto& o) { o.break_jitter = 1; }));
  EXPECT_TRUE(invalid([](auto& o) { o.half_open_trials = 0; }));
  EXPECT_FALSE(invalid([](auto& o) { o.slow_call_ratio = 1.0; }));
}

TEST(CircuitBreakerOptionsTest, OutOfRangeValuesAreClamped) {
  CircuitBreakerOptions o = TestOptions();
  o.half_open_trials = 0;  // taken as 1
  o.buckets = 0;           // taken as 1
  CircuitBreaker b(o);
  EXPECT_EQ(b.options().half_open_trials, 1);
  EXPECT_EQ(b.options().buckets, 1);
  for (int i = 0; i < 4; ++i) b.OnFailure(At(0), milliseconds(1));
  EXPECT_TRUE(b.Allow(At(5000)).allowed);
  EXPECT_EQ(b.Allow(At(5000)).reason, Reason::kHalfOpenTrialsBusy);
  EXPECT_TRUE(b.OnSuccess(At(5001), milliseconds(1)).has_value());
  EXPECT_EQ(b.State(At(5001)), State::kClosed);
}

TEST(CircuitBreakerTest, Names) {
  EXPECT_EQ(BreakerStateName(State::kHalfOpen), "half_open");
  EXPECT_EQ(BreakerRejectReasonName(Reason::kHalfOpenTrialsBusy), "half_open_trials_busy");
  EXPECT_EQ(BreakerTransitionCauseName(Cause::kSlowCallRatio), "slow_call_ratio");
}

}  // namespace
}  // namespace galley::gateway
