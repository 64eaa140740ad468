#include "kube/rate_limiter.h"

#include "gtest/gtest.h"

namespace galley::kube {
namespace {

using std::chrono::milliseconds;

TEST(TokenBucketTest, BurstThenQps) {
  ManualClock clock;
  TokenBucket bucket({/*qps=*/5, /*burst=*/10}, clock.Now());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(bucket.Reserve(clock.Now()), Duration::zero()) << i;
  // The 11th waits one refill interval (1/5 s), the 12th two.
  EXPECT_EQ(bucket.Reserve(clock.Now()), milliseconds(200));
  EXPECT_EQ(bucket.Reserve(clock.Now()), milliseconds(400));
  // After the waits have passed plus one more interval, one token is free again.
  clock.Advance(milliseconds(600));
  EXPECT_EQ(bucket.Reserve(clock.Now()), Duration::zero());
  EXPECT_EQ(bucket.Reserve(clock.Now()), milliseconds(200));
}

TEST(TokenBucketTest, RefillIsCappedAtBurst) {
  ManualClock clock;
  TokenBucket bucket({/*qps=*/100, /*burst=*/3}, clock.Now());
  clock.Advance(std::chrono::hours(1));
  EXPECT_DOUBLE_EQ(bucket.Tokens(clock.Now()), 3.0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.Reserve(clock.Now()), Duration::zero());
  EXPECT_EQ(bucket.Reserve(clock.Now()), milliseconds(10));
}

TEST(TokenBucketTest, SustainedRateMatchesQps) {
  ManualClock clock;
  TokenBucket bucket({/*qps=*/5, /*burst=*/10}, clock.Now());
  // Requests every 100 ms (10/s) against 5/s: each costs a net half token, so the 10-token
  // burst covers the first 19; after that the wait grows by 100 ms per request.
  int free = 0;
  Duration last_wait{};
  for (int i = 0; i < 40; ++i) {
    const Duration w = bucket.Reserve(clock.Now());
    if (w == Duration::zero()) ++free;
    last_wait = w;
    clock.Advance(milliseconds(100));
  }
  EXPECT_EQ(free, 19);
  EXPECT_NEAR(std::chrono::duration<double>(last_wait).count(), 2.1, 1e-6);
}

TEST(TokenBucketTest, ZeroQpsDisablesLimiting) {
  ManualClock clock;
  TokenBucket bucket({/*qps=*/0, /*burst=*/1}, clock.Now());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(bucket.Reserve(clock.Now()), Duration::zero());
}

}  // namespace
}  // namespace galley::kube
