// The autoscaling simulator's baselines (static fleets, the oracle, the work bound), the KEDA-style
// policy's scale to and from zero, and the synthetic patterns.
#include "sim/baselines.h"

#include <algorithm>
#include <numeric>

#include "gtest/gtest.h"
#include "sim/patterns.h"

namespace galley::sim {
namespace {

// A slow model (10x the default batch times) keeps the runs short.
ClusterModel SlowCluster() {
  ClusterModel c;
  c.service.batch_base_s *= 10;
  c.service.batch_per_item_s *= 10;
  c.model_load_time_s = 5;
  return c;
}

TEST(OracleScheduleTest, StartsOneLoadTimeAheadAndStopsWhenNotNeeded) {
  std::vector<int64_t> per_second(20, 0);
  per_second[5] = per_second[6] = 10;  // 2 replicas at 5 per replica
  per_second[19] = 20;                 // 4
  const std::vector<int> s = OracleSchedule(per_second, 5, /*load_s=*/3, /*tick_s=*/1);
  ASSERT_EQ(s.size(), 20u);
  // Tick k keeps what seconds k .. k + 3 need: started at tick 2 (ready at 5), stopped at 7.
  const std::vector<int> want = {0, 0, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4};
  EXPECT_EQ(s, want);
}

TEST(OracleScheduleTest, KeepsAReplicaAcrossAGapShorterThanTheLoadTime) {
  // Stopping at second 1 and restarting for second 3 would cost the load time again.
  const std::vector<int> s = OracleSchedule({10, 0, 0, 10}, 10, 3, 1);
  EXPECT_EQ(s, (std::vector<int>{1, 1, 1, 1}));
  // With a 2-s tick each tick covers [t, t + 2 + load): tick 0 seconds 0..3, tick 2 seconds 2..4:
  // the replicas for second 4 start at tick 2, ready exactly at 4.
  EXPECT_EQ(OracleSchedule({0, 0, 0, 0, 30}, 10, 2, 2), (std::vector<int>{0, 3, 3}));
}

TEST(BaselinesTest, OracleBeatsTheStaticFleetsAndTheWorkBoundHolds) {
  const ClusterModel cluster = SlowCluster();
  const double rate = 3.5 * 0.7 * cluster.service.MaxThroughput();  // 4 replicas at 70%
  const ArrivalFactory arrivals = [&] {
    return std::make_unique<StepArrivals>(0, rate, 60, 120, 11);
  };
  SimOptions options;
  options.slo_s = 0.25;
  const double target = 0.995;
  const BaselineRun oracle = SearchOracle(arrivals, cluster, options, target, 2);
  const BaselineRun cheapest = SearchStatic(arrivals, cluster, options, target, 20);
  ASSERT_TRUE(oracle.reached);
  ASSERT_TRUE(cheapest.reached);
  EXPECT_GE(oracle.result.WithinSloShare(), target);
  // The oracle holds nothing through the idle minute, the static fleet holds N all along.
  EXPECT_LT(oracle.result.replica_seconds, cheapest.result.replica_seconds);
  EXPECT_NEAR(cheapest.result.replica_seconds, cheapest.replicas * cheapest.result.horizon_s, 1e-6);
  // The search's answer is the smallest: one replica fewer misses the target.
  ASSERT_GT(cheapest.replicas, 1);
  EXPECT_FALSE(RunStatic(cheapest.replicas - 1, arrivals, cluster, options, target).reached);
  const double bound =
      WorkBoundReplicaSeconds(target * static_cast<double>(oracle.result.arrived), cluster.service);
  EXPECT_GT(bound, 0);
  EXPECT_LE(bound, oracle.result.replica_seconds);
  EXPECT_LE(bound, cheapest.result.replica_seconds);
}

TEST(BaselinesTest, CountPerSecondCountsEveryArrival) {
  ListArrivals list({0.1, 0.9, 2.5, 2.6, 2.7});
  EXPECT_EQ(CountPerSecond(list), (std::vector<int64_t>{2, 0, 3}));
}

// KEDA's loop: no activity for the cooldown scales to zero; a request at zero is dropped (the
// queue in front is not modelled) but counts as backlog, so the next poll scales back from zero.
TEST(KedaTest, ScalesToZeroAfterTheCooldownAndBackOnActivity) {
  const ClusterModel cluster = SlowCluster();
  std::vector<double> times;
  for (int i = 0; i < 50; ++i) times.push_back(1 + 0.1 * i);
  for (int i = 0; i < 200; ++i) times.push_back(700 + 0.5 * i);  // 700 .. 800 s
  ListArrivals arrivals(times);
  SimOptions options;
  options.keep_timeline = true;
  const SimResult r = Simulate(arrivals, cluster, MakePolicy(PolicyKind::kKeda, 20), options);
  std::optional<double> zero_at, back_at;
  for (const TickRecord& t : r.timeline) {
    if (!zero_at && t.desired == 0) zero_at = t.time_s;
    if (zero_at && !back_at && t.desired > 0) back_at = t.time_s;
  }
  ASSERT_TRUE(zero_at.has_value());
  // Last activity at the poll at 0 or 30 s (the requests end at 5.9 s): zero 300 s later, at a
  // poll (every 30 s).
  EXPECT_GE(*zero_at, 300);
  EXPECT_LE(*zero_at, 360);
  ASSERT_TRUE(back_at.has_value());
  EXPECT_GT(*back_at, 700);
  EXPECT_LE(*back_at, 730);  // the next poll after the first unrouted request
  EXPECT_GT(r.dropped, 0);   // arrivals while at zero and while the replica loads
  EXPECT_LT(r.dropped, 200);
  EXPECT_GE(r.scale_events, 2);
}

TEST(PatternsTest, ShapesPeakAtOneAndAreDeterministicForASeed) {
  for (const char* name : {"diurnal", "bursts", "climb", "flash", "quiet"}) {
    SCOPED_TRACE(name);
    const absl::StatusOr<Pattern> p = ParsePattern(name);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(PatternName(*p), name);
    const std::vector<double> a = PatternShape(*p, 1800, 3);
    ASSERT_EQ(a.size(), 1800u);
    EXPECT_EQ(*std::max_element(a.begin(), a.end()), 1.0);
    EXPECT_GT(*std::min_element(a.begin(), a.end()), 0.0);
    // The peak is held for at least 10 s somewhere (a 10-s window sees it).
    int run = 0, longest = 0;
    for (const double x : a) longest = std::max(longest, run = x == 1.0 ? run + 1 : 0);
    EXPECT_GE(longest, 10);
    EXPECT_EQ(a, PatternShape(*p, 1800, 3));
    if (*p != Pattern::kClimb) {  // climb has no dice
      EXPECT_NE(a, PatternShape(*p, 1800, 4));
    }
  }
  EXPECT_FALSE(ParsePattern("sawtooth").ok());
}

TEST(PatternsTest, EachShapeHasItsCharacter) {
  const std::vector<double> climb = PatternShape(Pattern::kClimb, 1000, 1);
  EXPECT_TRUE(std::is_sorted(climb.begin(), climb.end()));
  EXPECT_NEAR(climb.front(), 0.05, 1e-3);
  auto share_at_peak = [](const std::vector<double>& r) {
    return static_cast<double>(std::count(r.begin(), r.end(), 1.0)) / static_cast<double>(r.size());
  };
  // Bursts: 30 s of every 300 s at the peak.
  EXPECT_NEAR(share_at_peak(PatternShape(Pattern::kBursts, 3000, 1)), 0.1, 0.011);
  // Quiet: the mean stays far below the peak.
  const std::vector<double> quiet = PatternShape(Pattern::kQuiet, 3600, 1);
  EXPECT_LT(std::accumulate(quiet.begin(), quiet.end(), 0.0) / 3600, 0.15);
  // Flash: one jump from 15% straight to the peak.
  const std::vector<double> flash = PatternShape(Pattern::kFlash, 1800, 1);
  const auto jump = std::find(flash.begin(), flash.end(), 1.0) - flash.begin();
  ASSERT_GT(jump, 0);
  EXPECT_NEAR(flash[static_cast<size_t>(jump) - 1], 0.15, 1e-9);
}

TEST(RateArrivalsTest, PoissonAtThePerSecondRates) {
  const std::vector<double> rates = {0, 1000, 0, 3000};
  auto count = [&](uint64_t seed) {
    RateArrivals a(rates, seed);
    std::vector<int64_t> per(4, 0);
    double last = 0;
    while (const auto t = a.Next()) {
      EXPECT_GE(*t, last);
      last = *t;
      ++per[static_cast<size_t>(*t)];
    }
    return per;
  };
  const std::vector<int64_t> per = count(5);
  EXPECT_EQ(per[0], 0);
  EXPECT_EQ(per[2], 0);
  EXPECT_NEAR(static_cast<double>(per[1]), 1000, 160);  // 5 standard deviations
  EXPECT_NEAR(static_cast<double>(per[3]), 3000, 275);
  EXPECT_EQ(per, count(5));
  EXPECT_NE(per, count(6));
}

}  // namespace
}  // namespace galley::sim
