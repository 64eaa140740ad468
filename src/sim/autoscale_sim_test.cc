#include "sim/autoscale_sim.h"

#include <cmath>

#include "gtest/gtest.h"
#include "sim/arrivals.h"

namespace galley::sim {
namespace {

// A policy that holds exactly `n` replicas (the warm pool and the ceiling are both n).
PolicySetup Fixed(int n) {
  autoscale::InferencePolicy p;
  p.min_replicas = n;
  p.max_replicas = n;
  PolicySetup s;
  s.name = "fixed";
  s.spec.policy = p;
  s.sync_period_s = 1;
  return s;
}

ClusterModel Cluster(int replicas) {
  ClusterModel c;
  c.initial_replicas = replicas;
  c.model_load_time_s = 5;
  return c;
}

TEST(AutoscaleSimTest, WideSpacingMeansNoQueueingAndLatencyIsServiceTime) {
  std::vector<double> times;
  for (int i = 0; i < 1000; ++i) times.push_back(0.01 * i);  // 10 ms apart, service 0.344 ms
  ListArrivals arrivals(times);
  const ClusterModel cluster = Cluster(2);
  const SimResult r = Simulate(arrivals, cluster, Fixed(2), SimOptions{});
  const double service = cluster.service.BatchSeconds(1);
  EXPECT_EQ(r.arrived, 1000);
  EXPECT_EQ(r.completed, 1000);
  EXPECT_EQ(r.dropped, 0);
  EXPECT_EQ(r.within_slo, 1000);
  EXPECT_NEAR(r.max_latency_s, service, 1e-12);
  // Percentiles are the upper edge of a 10 us bin.
  EXPECT_GE(r.p50_s, service);
  EXPECT_LT(r.p50_s, service + 10e-6);
  EXPECT_EQ(r.p99_s, r.p50_s);
  EXPECT_EQ(r.scale_events, 0);
  EXPECT_NEAR(r.horizon_s, 9.99, 1e-9);
  EXPECT_NEAR(r.replica_seconds, 2 * 9.99, 1e-6);
}

TEST(AutoscaleSimTest, BurstBeyondTheQueueDropsExactlyTheOverflow) {
  ClusterModel cluster = Cluster(1);
  cluster.service.max_queue_size = 4;
  cluster.service.max_batch_size = 2;
  ListArrivals arrivals(std::vector<double>(10, 1.0));  // ten at once
  const SimResult r = Simulate(arrivals, cluster, Fixed(1), SimOptions{});
  // The first starts a batch of one at once, four wait, five find the queue full.
  EXPECT_EQ(r.arrived, 10);
  EXPECT_EQ(r.dropped, 5);
  EXPECT_EQ(r.completed, 5);
  // Then batches of two: the last waits for 1 + 2 and is served in the third batch.
  const ServiceModel& s = cluster.service;
  EXPECT_NEAR(r.max_latency_s, s.BatchSeconds(1) + 2 * s.BatchSeconds(2), 1e-12);
}

// One replica at first; the policy's warm pool of two adds one at the first tick (t = 0), which
// takes requests only from model_load_time on.
TEST(AutoscaleSimTest, ColdStartDelaysCapacityByTheModelLoadTime) {
  const ClusterModel cluster = Cluster(1);
  const ServiceModel& s = cluster.service;
  SimOptions options;
  options.keep_timeline = true;

  ListArrivals before({4.9, 4.9});  // both go to the old replica: the second waits
  const SimResult r1 = Simulate(before, cluster, Fixed(2), options);
  EXPECT_EQ(r1.scale_events, 1);
  EXPECT_NEAR(r1.max_latency_s, 2 * s.BatchSeconds(1), 1e-12);
  ASSERT_GE(r1.timeline.size(), 5u);
  EXPECT_EQ(r1.timeline[0].desired, 2);
  EXPECT_EQ(r1.timeline[4].ready, 1);  // t = 4

  ListArrivals after({5.1, 5.1});  // two ready replicas: one each
  const SimResult r2 = Simulate(after, cluster, Fixed(2), options);
  EXPECT_NEAR(r2.max_latency_s, s.BatchSeconds(1), 1e-12);
  ASSERT_GE(r2.timeline.size(), 6u);
  EXPECT_EQ(r2.timeline[5].ready, 2);  // t = 5
  // Both replicas cost from t = 0, starting or not.
  EXPECT_NEAR(r2.replica_seconds, 2 * 5.1, 1e-9);
}

TEST(AutoscaleSimTest, SameSeedSameResult) {
  std::vector<double> trace;
  for (int i = 0; i < 300; ++i) trace.push_back(0.37 * i * (i % 7 == 0 ? 1.0 : 0.5));
  auto run = [&](uint64_t seed) {
    ScaledTraceArrivals arrivals(trace, 500.5, seed);
    SimOptions options;
    options.seed = seed;
    return Simulate(arrivals, Cluster(1), MakePolicy(PolicyKind::kGalley, 20), options);
  };
  const SimResult a = run(7), b = run(7);
  EXPECT_GT(a.arrived, 100'000);
  EXPECT_EQ(a.arrived, b.arrived);
  EXPECT_EQ(a.within_slo, b.within_slo);
  EXPECT_EQ(a.dropped, b.dropped);
  EXPECT_EQ(a.p99_s, b.p99_s);
  EXPECT_EQ(a.replica_seconds, b.replica_seconds);
  EXPECT_EQ(a.scale_events, b.scale_events);
  EXPECT_GT(a.scale_events, 0);
  const SimResult c = run(8);
  EXPECT_NE(a.arrived, c.arrived);
}

TEST(AutoscaleSimTest, OverloadWithoutScalingNeverRestoresTheSlo) {
  const ClusterModel cluster = Cluster(1);
  SimOptions options;
  options.step_at_s = 20;
  StepArrivals overload(0, 2 * cluster.service.MaxThroughput(), 20, 60, 3);
  const SimResult r = Simulate(overload, cluster, Fixed(1), options);
  EXPECT_GT(r.dropped, 0);
  EXPECT_FALSE(r.restore_s.has_value());

  StepArrivals light(0, 0.3 * cluster.service.MaxThroughput(), 20, 60, 3);
  const SimResult ok = Simulate(light, cluster, Fixed(1), options);
  EXPECT_EQ(ok.dropped, 0);
  ASSERT_TRUE(ok.restore_s.has_value());
  EXPECT_EQ(*ok.restore_s, 0);
}

TEST(AutoscaleSimTest, EveryPolicyScalesUpForAStep) {
  ClusterModel cluster = Cluster(1);
  cluster.service.batch_base_s *= 10;  // a slower model keeps the test short
  cluster.service.batch_per_item_s *= 10;
  const absl::StatusOr<std::vector<PolicyKind>> all = ParsePolicies("all");
  ASSERT_TRUE(all.ok());
  for (PolicyKind kind : *all) {
    SimOptions options;
    options.slo_s = 0.25;
    options.step_at_s = 30;
    StepArrivals step(0, 4 * cluster.service.MaxThroughput(), 30, 300, 5);
    const SimResult r = Simulate(step, cluster, MakePolicy(kind, 20), options);
    SCOPED_TRACE(r.policy);
    EXPECT_GE(r.max_replicas, 5);
    ASSERT_TRUE(r.restore_s.has_value());
    EXPECT_GT(*r.restore_s, 0);  // one replica cannot take the step at once
  }
}

TEST(ParsePoliciesTest, NamesAndErrors) {
  const absl::StatusOr<std::vector<PolicyKind>> all = ParsePolicies("all");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 6u);
  auto two = ParsePolicies("kpa,galley,galley-concurrency");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ((*two)[0], PolicyKind::kKpa);
  EXPECT_EQ((*two)[1], PolicyKind::kGalley);
  EXPECT_EQ((*two)[2], PolicyKind::kGalleyConcurrency);
  auto bad = ParsePolicies("hpa-cpu,hpa-memory");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("hpa-memory"), std::string::npos);
}

TEST(ArrivalsTest, ParsesAzureTimestampsAsOffsets) {
  auto offsets = ParseAzureTrace(
      "TIMESTAMP,ContextTokens,GeneratedTokens\n"
      "2023-11-16 18:17:03.9799600,4808,10\r\n"
      "2023-11-16 18:17:04.0319600,3180,8\n"
      "\n"
      "2023-11-16 18:18:03.9799600,110,27\n",
      "trace.csv");
  ASSERT_TRUE(offsets.ok()) << offsets.status();
  ASSERT_EQ(offsets->size(), 3u);
  EXPECT_EQ((*offsets)[0], 0);
  EXPECT_NEAR((*offsets)[1], 0.052, 1e-9);
  EXPECT_NEAR((*offsets)[2], 60, 1e-9);
  EXPECT_NEAR(PeakRate(*offsets, 60), 2.0 / 60, 1e-12);
}

TEST(ArrivalsTest, BadTraceNamesTheLine) {
  auto bad_time = ParseAzureTrace(
      "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,1,1\n18:17:04,2,2\n",
      "trace.csv");
  ASSERT_FALSE(bad_time.ok());
  EXPECT_NE(bad_time.status().message().find("trace.csv:3: bad TIMESTAMP '18:17:04'"),
            std::string::npos)
      << bad_time.status();
  auto no_column = ParseAzureTrace("time,tokens\n1,2\n", "t.csv");
  ASSERT_FALSE(no_column.ok());
  EXPECT_NE(no_column.status().message().find("t.csv:1: no TIMESTAMP column"), std::string::npos);
  auto short_line = ParseAzureTrace("a,TIMESTAMP\nx\n", "t.csv");
  ASSERT_FALSE(short_line.ok());
  EXPECT_NE(short_line.status().message().find("t.csv:2:"), std::string::npos);
  auto empty = ParseAzureTrace("TIMESTAMP\n", "t.csv");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("no requests"), std::string::npos);
}

TEST(ArrivalsTest, ScaledTraceReplicatesWithinEachSecond) {
  const std::vector<double> trace = {0.2, 0.7, 3.5, 3.9, 3.95};
  ScaledTraceArrivals arrivals(trace, 4, 1);
  std::vector<double> got;
  while (auto t = arrivals.Next()) got.push_back(*t);
  ASSERT_EQ(got.size(), 20u);  // an integer factor gives exactly factor copies
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
  for (size_t i = 0; i < 8; ++i) EXPECT_LT(got[i], 1.0);
  for (size_t i = 8; i < 20; ++i) EXPECT_TRUE(got[i] >= 3.0 && got[i] < 4.0) << got[i];
}

TEST(ArrivalsTest, StepHasNoArrivalsBeforeTheStepWhenIdle) {
  StepArrivals step(0, 1000, 10, 20, 9);
  int64_t n = 0;
  double first = -1;
  while (auto t = step.Next()) {
    if (first < 0) first = *t;
    EXPECT_LT(*t, 20);
    ++n;
  }
  EXPECT_GE(first, 10);
  EXPECT_NEAR(static_cast<double>(n), 10'000, 500);  // 5 standard deviations
}

// Queue: a burst beyond what one replica holds waits in the broker instead of being dropped;
// the replica fetches up to its prefetch and more as batches finish, so every message is
// answered and the first waits nothing while the last waits for the batches before it.
TEST(AutoscaleSimTest, QueueHoldsWhatTheReplicasCannotAndLosesNothing) {
  ClusterModel cluster = Cluster(1);
  cluster.service.max_queue_size = 4;  // ignored with a queue: the broker holds the rest
  cluster.service.max_batch_size = 2;
  SimOptions options;
  options.queue = true;
  options.prefetch = 3;
  ListArrivals arrivals(std::vector<double>(10, 1.0));
  const SimResult r = Simulate(arrivals, cluster, Fixed(1), options);
  EXPECT_EQ(r.arrived, 10);
  EXPECT_EQ(r.dropped, 0);
  EXPECT_EQ(r.stranded, 0);
  EXPECT_EQ(r.completed, 10);
  EXPECT_EQ(r.max_lag, 7);  // the first three fetched at once
  // The first arrival starts a batch of one; as each batch ends the replica refills to three and
  // then forms the next batch: batches of 1, 2, 2, 2, 2, 1. The last message waited in the broker
  // until the fourth batch ended, and was answered by the sixth.
  const ServiceModel& s = cluster.service;
  EXPECT_NEAR(r.age_max_s, s.BatchSeconds(1) + 3 * s.BatchSeconds(2), 1e-9);
  EXPECT_NEAR(r.max_latency_s, 2 * s.BatchSeconds(1) + 4 * s.BatchSeconds(2), 1e-9);
}

// Galley's policy sized by request rate against the replica's full-batch throughput.
PolicySetup RatePolicy(const ClusterModel& cluster) {
  return MakePolicy(PolicyKind::kGalley, 20, /*queue=*/false, cluster.service.MaxThroughput());
}

// A replica ten times slower than the default (599.5 req/s at full batches) with a ten times
// longer SLO: the same fleet dynamics as the default model, for a tenth of the requests.
ClusterModel SlowCluster() {
  ClusterModel c = Cluster(1);
  c.model_load_time_s = 10;
  c.service.batch_base_s *= 10;
  c.service.batch_per_item_s *= 10;
  return c;
}
SimOptions SlowOptions() {
  SimOptions o;
  o.slo_s = 0.25;
  return o;
}

// Periodic bursts: 20-s bursts at 3,000 req/s every 200 s over a base of 200 req/s. Once the
// period is learnt (four onsets), each burst finds the fleet started one load time ahead, so the
// later bursts lose nothing; between them the fleet goes back to the base's size.
TEST(AutoscaleSimTest, RateSizingPrewarmsForPeriodicBursts) {
  const ClusterModel cluster = SlowCluster();
  std::vector<double> rates(2000, 200.0);
  for (int start = 100; start < 2000; start += 200) {
    for (int s = start; s < start + 20; ++s) rates[s] = 3000.0;
  }
  SimOptions options = SlowOptions();
  options.keep_timeline = true;
  RateArrivals arrivals(rates, 3);
  const PolicySetup policy = RatePolicy(cluster);
  const SimResult r = Simulate(arrivals, cluster, policy, options);
  int prewarm = 0;
  int64_t missed_at_1100 = -1;
  int lowest_between = 100;
  for (const TickRecord& t : r.timeline) {
    if (t.reason == "PeriodicPrewarm") ++prewarm;
    if (t.time_s == 1100) missed_at_1100 = t.missed;
    // Between the later bursts (after the hold of the one before has run out).
    if (t.time_s >= 1200 && t.time_s <= 1270) lowest_between = std::min(lowest_between, t.desired);
  }
  EXPECT_GT(prewarm, 0);
  ASSERT_GE(missed_at_1100, 0);
  // The bursts from 1,100 s on (five of them) lose nothing: missed stays where it was.
  EXPECT_EQ(r.timeline.back().missed, missed_at_1100) << "missed " << r.timeline.back().missed;
  EXPECT_LE(lowest_between, 2);  // base 200 req/s: one replica's share (480) is enough
  // Sized by concurrency, the same bursts hold the fleet and cost more.
  RateArrivals again(rates, 3);
  const SimResult c =
      Simulate(again, cluster, MakePolicy(PolicyKind::kGalleyConcurrency, 20), options);
  EXPECT_LT(r.replica_seconds, c.replica_seconds);
}

// A slow climb from 200 to 4,000 req/s over 1,000 s: rate sizing follows it without a miss and
// keeps each replica near its target share.
TEST(AutoscaleSimTest, RateSizingFollowsASlowClimb) {
  const ClusterModel cluster = SlowCluster();
  std::vector<double> rates;
  for (int s = 0; s < 1000; ++s) rates.push_back(200.0 + 3.8 * s);
  RateArrivals arrivals(rates, 5);
  const SimResult r = Simulate(arrivals, cluster, RatePolicy(cluster), SlowOptions());
  EXPECT_EQ(r.dropped, 0);
  EXPECT_EQ(r.within_slo, r.arrived);
  // The mean rate is 2,100 req/s: at the 80% share (480 req/s) about 4.4 replicas on average;
  // a fleet held at the end's 9 would cost 9,000.
  EXPECT_LT(r.replica_seconds, 6500) << r.replica_seconds;
  EXPECT_LE(r.max_replicas, 10);
}

PolicySetup QueuePolicy(PolicyKind kind) {
  PolicySetup p = MakePolicy(kind, 4, /*queue=*/true);
  if (p.keda) p.keda->polling_s = 1;  // poll every second, so the test is about what is counted
  return p;
}

// The blind spots the issue names: with the fleet at zero, nothing is pending (no consumer has
// fetched anything), so a scaler on the pending count never wakes it and every message is
// stranded; one on lag + pending, or Galley's policy (the lag is waiting demand), wakes it and
// answers everything.
TEST(AutoscaleSimTest, APendingOnlyCountCannotWakeAFleetAtZero) {
  ClusterModel cluster = Cluster(0);
  SimOptions options;
  options.queue = true;
  options.drain_limit_s = 120;
  std::vector<double> times;
  for (int i = 0; i < 200; ++i) times.push_back(10 + 0.05 * i);
  for (PolicyKind kind : {PolicyKind::kKedaPending, PolicyKind::kKeda, PolicyKind::kGalley}) {
    const PolicySetup policy = QueuePolicy(kind);
    SCOPED_TRACE(policy.name);
    ListArrivals arrivals(times);
    const SimResult r = Simulate(arrivals, cluster, policy, options);
    EXPECT_EQ(r.arrived, 200);
    if (kind == PolicyKind::kKedaPending) {
      EXPECT_EQ(r.completed, 0);
      EXPECT_EQ(r.stranded, 200);
      EXPECT_EQ(r.max_replicas, 0);
    } else {
      EXPECT_EQ(r.completed, 200);
      EXPECT_EQ(r.stranded, 0);
      EXPECT_GE(r.max_replicas, 1);
      // The first message waited for a replica to start (the 5 s model load at least).
      EXPECT_GE(r.age_max_s, cluster.model_load_time_s);
    }
  }
}

TEST(AutoscaleSimTest, QueuePoliciesParse) {
  auto all = ParsePolicies("all", /*queue=*/true);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 4u);
  auto http = ParsePolicies("all");
  ASSERT_TRUE(http.ok());
  EXPECT_EQ(http->size(), 6u);  // galley by rate and by concurrency
  auto one = ParsePolicies("keda-pending");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->front(), PolicyKind::kKedaPending);
  EXPECT_FALSE(ParsePolicies("keda-lag").ok());
}

}  // namespace
}  // namespace galley::sim
