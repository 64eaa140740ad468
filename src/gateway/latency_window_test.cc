#include "gateway/latency_window.h"

#include "gtest/gtest.h"

namespace galley::gateway {
namespace {

using std::chrono::milliseconds;

TEST(LatencyWindowTest, NoTimeoutOfItsOwnBelowTheMinimumSamples) {
  LatencyWindow w({.capacity = 64, .min_samples = 10});
  for (int i = 0; i < 9; ++i) w.Add(milliseconds(2));
  EXPECT_FALSE(w.Quantile().has_value());
  EXPECT_EQ(w.AttemptTimeout(milliseconds(5000)), milliseconds(5000));
  w.Add(milliseconds(2));
  ASSERT_TRUE(w.Quantile().has_value());
  EXPECT_EQ(*w.Quantile(), milliseconds(2));
}

TEST(LatencyWindowTest, QuantileOfTheKeptAnswers) {
  LatencyWindow w({.capacity = 100, .min_samples = 1, .quantile = 0.99});
  for (int i = 1; i <= 100; ++i) w.Add(milliseconds(i));
  EXPECT_EQ(*w.Quantile(), milliseconds(99));
}

TEST(LatencyWindowTest, TimeoutIsMultipleOfQuantileWithinFloorAndCap) {
  LatencyWindow w({.capacity = 16,
                   .min_samples = 1,
                   .quantile = 0.5,
                   .multiplier = 4.0,
                   .floor = milliseconds(50)});
  for (int i = 0; i < 16; ++i) w.Add(milliseconds(1));
  EXPECT_EQ(w.AttemptTimeout(milliseconds(5000)), milliseconds(50));  // 4 ms: the floor
  LatencyWindow slow({.capacity = 16,
                      .min_samples = 1,
                      .quantile = 0.5,
                      .multiplier = 4.0,
                      .floor = milliseconds(50)});
  for (int i = 0; i < 16; ++i) slow.Add(milliseconds(100));
  EXPECT_EQ(slow.AttemptTimeout(milliseconds(5000)), milliseconds(400));
  EXPECT_EQ(slow.AttemptTimeout(milliseconds(300)), milliseconds(300));  // the cap
}

TEST(LatencyWindowTest, OldAnswersLeaveTheWindow) {
  LatencyWindow w({.capacity = 8, .min_samples = 1, .quantile = 1.0});
  for (int i = 0; i < 8; ++i) w.Add(milliseconds(900));
  EXPECT_EQ(*w.Quantile(), milliseconds(900));
  for (int i = 0; i < 8; ++i) w.Add(milliseconds(3));
  // Recomputed at least every capacity/8 additions: the slow answers are gone.
  EXPECT_EQ(*w.Quantile(), milliseconds(3));
  EXPECT_EQ(w.size(), 8u);
}

}  // namespace
}  // namespace galley::gateway
