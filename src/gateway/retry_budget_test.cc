#include "gateway/retry_budget.h"

#include <chrono>

#include "gtest/gtest.h"

namespace galley::gateway {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const TimePoint kStart = TimePoint{} + std::chrono::hours(1);

RetryBudgetOptions Options(int min_per_second, double ratio) {
  RetryBudgetOptions o;
  o.min_retries_per_second = min_per_second;
  o.retry_ratio = ratio;
  return o;
}

int WithdrawAll(RetryBudget& b, TimePoint now, int limit = 100000) {
  int n = 0;
  while (n < limit && b.TryWithdraw(now)) ++n;
  return n;
}

TEST(RetryBudgetTest, DefaultsAreTwentyPercentPlusThreePerSecond) {
  const RetryBudgetOptions o;
  EXPECT_EQ(o.ttl, seconds(10));
  EXPECT_EQ(o.min_retries_per_second, 3);
  EXPECT_EQ(o.retry_ratio, 0.2);
  EXPECT_TRUE(ValidateRetryBudgetOptions(o).ok());
}

TEST(RetryBudgetTest, MinimumAllowsAFewRetriesAtLowTraffic) {
  RetryBudget b;  // 3/s over 10 s: a reserve of 30
  EXPECT_EQ(b.Balance(kStart), 30);
  EXPECT_EQ(WithdrawAll(b, kStart), 30);
  EXPECT_FALSE(b.TryWithdraw(kStart));
  EXPECT_EQ(b.Balance(kStart), 0);
  b.Deposit(kStart);  // 4 more requests earn nothing yet, the fifth earns one retry
  b.Deposit(kStart);
  b.Deposit(kStart);
  b.Deposit(kStart);
  EXPECT_FALSE(b.TryWithdraw(kStart));
  b.Deposit(kStart);
  EXPECT_TRUE(b.TryWithdraw(kStart));
  EXPECT_FALSE(b.TryWithdraw(kStart));
}

TEST(RetryBudgetTest, RatioOfRequests) {
  struct Case {
    double ratio;
    int requests;
    int retries;
  };
  const Case cases[] = {
      {0.2, 100, 20}, {0.2, 4, 0},   {0.2, 5, 1},   {0.1, 30, 3},
      {0.5, 7, 3},    {1.0, 10, 10}, {2.0, 10, 20}, {0.0, 100, 0},
  };
  for (const Case& c : cases) {
    RetryBudget b(Options(/*min_per_second=*/0, c.ratio));
    for (int i = 0; i < c.requests; ++i) b.Deposit(kStart);
    EXPECT_EQ(b.Balance(kStart), c.retries) << c.ratio << " x " << c.requests;
    EXPECT_EQ(WithdrawAll(b, kStart), c.retries) << c.ratio << " x " << c.requests;
    EXPECT_EQ(b.Window(kStart).retries, c.retries);
    EXPECT_EQ(b.Window(kStart).requests, c.requests);
  }
}

TEST(RetryBudgetTest, NoRatioAndNoMinimumNeverRetries) {
  RetryBudget b(Options(0, 0));
  for (int i = 0; i < 1000; ++i) b.Deposit(kStart);
  EXPECT_FALSE(b.TryWithdraw(kStart));
}

TEST(RetryBudgetTest, DepositsAndWithdrawalsExpireWithTheWindow) {
  RetryBudget b(Options(0, 0.2));
  for (int i = 0; i < 10; ++i) b.Deposit(kStart);
  EXPECT_EQ(WithdrawAll(b, kStart), 2);
  EXPECT_EQ(WithdrawAll(b, kStart + seconds(9)), 0);  // still in the window, still spent
  EXPECT_EQ(b.Window(kStart + seconds(9)).requests, 10);
  const TimePoint later = kStart + seconds(10);  // the first bucket has left the window
  EXPECT_EQ(b.Window(later).requests, 0);
  EXPECT_EQ(b.Window(later).retries, 0);
  EXPECT_EQ(b.Balance(later), 0);  // old deposits no longer pay for retries
  for (int i = 0; i < 5; ++i) b.Deposit(later);
  EXPECT_EQ(WithdrawAll(b, later), 1);
}

TEST(RetryBudgetTest, ReserveComesBackWithTheWindow) {
  RetryBudget b(Options(1, 0));  // 10 retries per 10 s, requests earn nothing
  EXPECT_EQ(WithdrawAll(b, kStart), 10);
  EXPECT_EQ(WithdrawAll(b, kStart + milliseconds(9999)), 0);
  EXPECT_EQ(WithdrawAll(b, kStart + seconds(10)), 10);
}

// Every request fails, and every failed attempt (first try or retry) asks for a retry, up to
// two retries per request: the worst case for amplification. Count every attempt.
TEST(RetryBudgetTest, RatioHoldsUnderALongRunOfFailures) {
  const RetryBudgetOptions o;  // 20% + 3/s over 10 s
  RetryBudget b(o);
  const int seconds_run = 300;
  const int per_second = 100;
  int64_t requests = 0, retries = 0, denied = 0;
  for (int s = 0; s < seconds_run; ++s) {
    for (int i = 0; i < per_second; ++i) {
      const TimePoint now = kStart + seconds(s) + milliseconds(i * 1000 / per_second);
      b.Deposit(now);
      ++requests;
      for (int retry = 0; retry < 2; ++retry) {
        if (!b.TryWithdraw(now)) {
          ++denied;
          break;
        }
        ++retries;
        // Right after a withdrawal the window itself respects the budget.
        const RetryBudgetWindow w = b.Window(now);
        ASSERT_LE(w.retries, w.requests / 5 + 30) << "at " << s << " s";
      }
    }
  }
  const int64_t bound = requests / 5 + int64_t{o.min_retries_per_second} * seconds_run;
  EXPECT_LE(retries, bound + 30);    // + one window's reserve at the start
  EXPECT_GE(retries, requests / 5);  // and the budget is actually usable
  EXPECT_GT(denied, 0);
  // Attempts per request stay near 1.2 + 3/s / (100/s) = 1.23, far from the 3 that two
  // unbudgeted retries would make.
  const double attempts_per_request = static_cast<double>(requests + retries) / requests;
  EXPECT_LT(attempts_per_request, 1.25);
}

TEST(RetryBudgetTest, Validation) {
  auto invalid = [](auto mutate) {
    RetryBudgetOptions o;
    mutate(o);
    return ValidateRetryBudgetOptions(o).code() == absl::StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(invalid([](auto& o) { o.ttl = milliseconds(999); }));
  EXPECT_TRUE(invalid([](auto& o) { o.ttl = seconds(61); }));
  EXPECT_TRUE(invalid([](auto& o) { o.min_retries_per_second = -1; }));
  EXPECT_TRUE(invalid([](auto& o) { o.retry_ratio = -0.1; }));
  EXPECT_TRUE(invalid([](auto& o) { o.retry_ratio = 1001; }));
  EXPECT_TRUE(invalid([](auto& o) { o.buckets = 0; }));
  EXPECT_FALSE(invalid([](auto& o) { o.retry_ratio = 0; }));
}

TEST(RetryBudgetTest, OutOfRangeValuesAreClamped) {
  RetryBudgetOptions o = Options(-5, 0.2);
  o.ttl = Duration::zero();
  RetryBudget b(o);
  EXPECT_EQ(b.options().ttl, seconds(1));
  EXPECT_EQ(b.options().min_retries_per_second, 0);
  EXPECT_FALSE(b.TryWithdraw(kStart));
}

}  // namespace
}  // namespace galley::gateway
