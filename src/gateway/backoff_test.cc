#include "gateway/backoff.h"

#include <chrono>
#include <climits>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace galley::gateway {
namespace {

using std::chrono::milliseconds;

BackoffOptions Options(int64_t base_ms, int64_t cap_ms) {
  BackoffOptions o;
  o.base = milliseconds(base_ms);
  o.cap = milliseconds(cap_ms);
  return o;
}

TEST(BackoffTest, CeilingDoublesUpToTheCap) {
  struct Case {
    int attempt;
    int64_t ceiling_ms;
  };
  const Case cases[] = {
      {-5, 25}, {0, 25},  {1, 25},  {2, 50},    {3, 100},
      {4, 200}, {5, 250}, {6, 250}, {100, 250}, {INT_MAX, 250},
  };
  const BackoffOptions o;  // Envoy's defaults: 25 ms, 250 ms
  for (const Case& c : cases) {
    EXPECT_EQ(BackoffCeiling(o, c.attempt), milliseconds(c.ceiling_ms)) << c.attempt;
  }
  EXPECT_EQ(BackoffCeiling(Options(10, 10), 7), milliseconds(10));
  EXPECT_EQ(BackoffCeiling(Options(1, INT64_MAX / 1'000'000), INT_MAX),
            std::chrono::duration_cast<Duration>(milliseconds(INT64_MAX / 1'000'000)));
}

TEST(BackoffTest, FullJitterScalesTheCeiling) {
  const BackoffOptions o = Options(100, 1000);
  EXPECT_EQ(FullJitterBackoff(o, 1, 0.0), Duration::zero());
  EXPECT_EQ(FullJitterBackoff(o, 1, 0.5), milliseconds(50));
  EXPECT_EQ(FullJitterBackoff(o, 3, 0.25), milliseconds(100));
  EXPECT_EQ(FullJitterBackoff(o, 3, 1.0), milliseconds(400));
  EXPECT_EQ(FullJitterBackoff(o, 3, 7.0), milliseconds(400));  // clamped
  EXPECT_EQ(FullJitterBackoff(o, 3, -1.0), Duration::zero());
  EXPECT_EQ(FullJitterBackoff(o, 3, std::nan("")), Duration::zero());
}

TEST(BackoffTest, DrawsStayInBoundsAndSpread) {
  const BackoffOptions o = Options(10, 80);
  std::mt19937 rng(1);
  for (int attempt = 1; attempt <= 6; ++attempt) {
    const Duration ceiling = BackoffCeiling(o, attempt);
    Duration lo = Duration::max(), hi = Duration::zero();
    double sum = 0;
    const int n = 2000;
    for (int i = 0; i < n; ++i) {
      const Duration d = NextBackoff(o, attempt, rng);
      ASSERT_GE(d, Duration::zero());
      ASSERT_LE(d, ceiling);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
      sum += static_cast<double>(d.count());
    }
    EXPECT_LT(lo, ceiling / 20) << attempt;       // full jitter reaches near 0 ...
    EXPECT_GT(hi, ceiling * 19 / 20) << attempt;  // ... and near the ceiling
    const double mean = sum / n / static_cast<double>(ceiling.count());
    EXPECT_NEAR(mean, 0.5, 0.05) << attempt;
  }
}

template <typename Engine>
std::vector<Duration> Draws(uint64_t seed) {
  Engine rng(static_cast<typename Engine::result_type>(seed));
  std::vector<Duration> out;
  for (int attempt = 1; attempt <= 20; ++attempt) {
    out.push_back(NextBackoff(BackoffOptions{}, attempt, rng));
  }
  return out;
}

TEST(BackoffTest, DeterministicPerSeed) {
  EXPECT_EQ(Draws<std::mt19937>(7), Draws<std::mt19937>(7));
  EXPECT_NE(Draws<std::mt19937>(7), Draws<std::mt19937>(8));
  EXPECT_EQ(Draws<std::mt19937_64>(7), Draws<std::mt19937_64>(7));
  EXPECT_NE(Draws<std::mt19937_64>(7), Draws<std::mt19937_64>(8));
  // The mapping from engine output to [0, 1) is fixed: the first draw of mt19937(5489) is
  // 3499211612 (the standard's check value for its 10000th is 4123659995).
  std::mt19937 rng;
  EXPECT_EQ(NextBackoff(Options(1000, 1000), 1, rng),
            Duration(static_cast<Duration::rep>(1e9 * (3499211612.0 / 4294967296.0))));
}

TEST(BackoffTest, UniformUnitIsInRange) {
  std::mt19937 a(3);
  std::mt19937_64 b(3);
  for (int i = 0; i < 10000; ++i) {
    const double x = UniformUnit(a), y = UniformUnit(b);
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    ASSERT_GE(y, 0.0);
    ASSERT_LT(y, 1.0);
  }
}

TEST(FitsDeadlineTest, Table) {
  const TimePoint now = TimePoint{} + std::chrono::hours(1);
  struct Case {
    const char* name;
    TimePoint deadline;
    Duration backoff;
    Duration min_attempt;
    bool fits;
  };
  const Case cases[] = {
      {"no deadline", TimePoint::max(), Duration::max(), Duration::max(), true},
      {"plenty of time", now + milliseconds(1000), milliseconds(100), milliseconds(5), true},
      {"exactly fits", now + milliseconds(100), milliseconds(50), milliseconds(50), true},
      {"one tick short", now + milliseconds(100), milliseconds(50) + Duration(1), milliseconds(50),
       false},
      {"back-off alone overruns", now + milliseconds(100), milliseconds(150), Duration::zero(),
       false},
      {"deadline passed", now - milliseconds(1), Duration::zero(), Duration::zero(), false},
      {"deadline now, nothing needed", now, Duration::zero(), Duration::zero(), true},
      {"deadline now, an attempt needs time", now, Duration::zero(), milliseconds(1), false},
      {"huge durations do not overflow", now + milliseconds(100), Duration::max(), Duration::max(),
       false},
      {"negative durations count as zero", now + milliseconds(10), milliseconds(-50),
       milliseconds(-50), true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FitsDeadline(now, c.backoff, c.deadline, c.min_attempt), c.fits) << c.name;
  }
}

TEST(BackoffTest, Validation) {
  EXPECT_TRUE(ValidateBackoffOptions(BackoffOptions{}).ok());
  EXPECT_FALSE(ValidateBackoffOptions(Options(0, 10)).ok());
  EXPECT_FALSE(ValidateBackoffOptions(Options(10, 5)).ok());
}

}  // namespace
}  // namespace galley::gateway
