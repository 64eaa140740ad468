// Table-driven tests of Galley's inference policy at a fixed `now`.
#include "autoscale/inference_policy.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace galley::autoscale {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

PodState Ready(int i) {
  PodState p;
  p.name = "r" + std::to_string(i);
  p.ready = true;
  p.start_time = kNow - absl::Minutes(30);
  return p;
}
PodState Starting(int i, absl::Duration ago) {
  PodState p = Ready(i);
  p.ready = false;
  p.start_time = kNow - ago;
  return p;
}

// `current` ready replicas; a constant demand over the last 60 s (one sample every 2 s) and,
// optionally, a different demand over the last 6 s (the panic window).
Snapshot Load(int current, double stable_demand, double burst = -1) {
  Snapshot s;
  s.current_replicas = current;
  for (int i = 0; i < current; ++i) s.pods.push_back(Ready(i));
  for (int t = 58; t >= 0; t -= 2) {
    Observation o;
    o.time = kNow - absl::Seconds(t);
    o.inflight = (burst >= 0 && t < 6) ? burst : stable_demand;
    s.observations.push_back(o);
  }
  return s;
}

InferencePolicy Policy(int min = 1, int max = 20) {
  InferencePolicy p;
  p.min_replicas = min;
  p.max_replicas = max;
  p.target_concurrency = 10;
  return p;
}

History Recs(std::vector<std::pair<int, int>> ago_replicas) {
  History h;
  for (auto [ago, n] : ago_replicas) h.recommendations.push_back({kNow - absl::Seconds(ago), n});
  return h;
}

struct Case {
  std::string name;
  InferencePolicy policy;
  Snapshot snapshot;
  History history;
  int want;
  std::string want_reason;
  bool want_panic = false;
};

std::vector<Case> Cases() {
  std::vector<Case> c;
  // Stable demand 45 against 10 per replica -> ceil(4.5) = 5.
  c.push_back({"ConcurrencyScaleUp", Policy(), Load(3, 45), {}, 5, "ScaleUp"});
  // Demand that matches capacity: steady.
  c.push_back({"Steady", Policy(), Load(3, 30), {}, 3, "Steady"});
  // A burst in the last 6 s at >= 200% of capacity: panic, sized by the panic window.
  c.push_back({"PanicOnBurst", Policy(), Load(2, 10, 60), {}, 6, "ScaleUp", true});
  // A burst below the panic threshold (150%) only moves the stable average.
  c.push_back({"NoPanicBelowThreshold", Policy(), Load(2, 10, 30), {}, 2, "Steady", false});
  // In panic mode the count never goes down.
  {
    History h;
    h.panic_since = kNow - absl::Seconds(20);
    c.push_back({"PanicNeverScalesDown", Policy(), Load(8, 10), h, 8, "Steady", true});
  }
  // Panic ends one stable window after the last crossing.
  {
    History h;
    h.panic_since = kNow - absl::Seconds(61);
    c.push_back({"PanicExpires", Policy(), Load(8, 60), h, 6, "ScaleDown", false});
  }
  // Starting replicas count as capacity: 2 ready + 2 starting (recommended 5 s ago) against a
  // burst of 60 (6 pods) is 150%, below the panic threshold: no panic, nothing added.
  {
    Snapshot s = Load(2, 10, 60);
    s.current_replicas = 4;
    s.pods.push_back(Starting(10, absl::Seconds(5)));
    s.pods.push_back(Starting(11, absl::Seconds(5)));
    c.push_back(
        {"StartingReplicasAreCapacity", Policy(), s, Recs({{5, 4}}), 4, "ScaleDownDelayed", false});
    // A replica starting for more than two load times is stuck: not capacity, so panic.
    s.pods[3].start_time = kNow - absl::Seconds(25);
    s.pods[2].start_time = kNow - absl::Seconds(25);
    c.push_back({"StuckReplicasAreNot", Policy(), s, {}, 6, "ScaleUp", true});
  }
  // Scale-down is held by the highest recommendation of the scale-down delay...
  c.push_back({"ScaleDownDelayed", Policy(), Load(6, 20), Recs({{30, 6}}), 6, "ScaleDownDelayed"});
  // ...and otherwise limited to halving per decision (max scale-down rate 2).
  c.push_back({"ScaleDownRateLimited", Policy(), Load(10, 10), {}, 5, "ScaleDownLimit"});
  // Never below the warm pool.
  c.push_back({"WarmPool", Policy(2, 20), Load(3, 0), {}, 2, "WarmPool"});
  // Scale to zero: off by default (min 0 still keeps one replica)...
  c.push_back({"NoScaleToZeroByDefault", Policy(0, 20), Load(1, 0), {}, 1, "WarmPool"});
  // ...on, after the grace period without demand...
  {
    InferencePolicy p = Policy(0, 20);
    p.scale_to_zero = true;
    History h;
    h.last_active = kNow - absl::Seconds(90);
    c.push_back({"ScaleToZero", p, Load(1, 0), h, 0, "ScaleDown"});
    h.last_active = kNow - absl::Seconds(10);
    c.push_back({"ScaleToZeroGrace", p, Load(1, 0), h, 1, "ScaleToZeroGrace"});
    // From zero, queued requests at the gateway bring replicas back.
    Snapshot s = Load(0, 0);
    s.observations.back().queued = 25;
    c.push_back({"ScaleFromZero", p, s, {}, 1, "ScaleUp"});
  }
  // Latency guard: p99 0.3 s against 0.1 s scales 2 replicas to 6 although concurrency is fine.
  {
    InferencePolicy p = Policy();
    p.target_latency_seconds = 0.1;
    Snapshot s = Load(2, 15);
    s.observations.back().latency_seconds = 0.3;
    c.push_back({"LatencyGuard", p, s, {}, 6, "ScaleUp"});
    s.observations.back().latency_seconds = 0.05;  // fast replicas do not shrink the pool
    c.push_back({"LatencyBelowTargetNoEffect", p, s, {}, 2, "Steady"});
  }
  // GPU memory guard: 95% used against 80% target on 4 replicas -> 5.
  {
    InferencePolicy p = Policy();
    p.target_gpu_memory_fraction = 0.8;
    Snapshot s = Load(4, 35);
    s.observations.back().gpu_memory_fraction = 0.95;
    c.push_back({"GpuMemoryGuard", p, s, {}, 5, "ScaleUp"});
  }
  // maxReplicas caps everything.
  c.push_back({"MaxReplicas", Policy(1, 4), Load(2, 100), {}, 4, "TooManyReplicas", true});
  // Burst recurrence: onsets 600 s and 300 s ago (gap 300 s, the series lasts until 600 s after
  // the newest) hold the 12 recommended 500 s ago, which the 5 min delay alone would let go.
  {
    History h = Recs({{500, 12}});
    h.burst_onsets = {kNow - absl::Seconds(600), kNow - absl::Seconds(300)};
    c.push_back({"BurstHoldWhileRecurring", Policy(), Load(12, 10), h, 12, "BurstHold"});
    InferencePolicy off = Policy();
    off.burst_gap_max = absl::ZeroDuration();
    c.push_back({"BurstHoldOff", off, Load(12, 10), h, 6, "ScaleDownLimit"});
    // The series has lapsed: no onset for more than twice its longest gap (200 s).
    h.burst_onsets = {kNow - absl::Seconds(1000), kNow - absl::Seconds(800)};
    c.push_back({"BurstSeriesLapsed", Policy(), Load(12, 10), h, 6, "ScaleDownLimit"});
    // A gap longer than burst_gap_max (20 min) is no recurrence.
    h.burst_onsets = {kNow - absl::Seconds(1700), kNow - absl::Seconds(400)};
    c.push_back({"BurstGapTooLong", Policy(), Load(12, 10), h, 6, "ScaleDownLimit"});
    // One burst is no series.
    h.burst_onsets = {kNow - absl::Seconds(400)};
    c.push_back({"SingleBurstNoHold", Policy(), Load(12, 10), h, 6, "ScaleDownLimit"});
  }
  // No observations in the stable window: keep the current count.
  {
    Snapshot s = Load(3, 10);
    s.observations.clear();
    c.push_back({"NoMetrics", Policy(), s, {}, 3, "NoMetrics"});
  }
  return c;
}

class InferencePolicyTest : public testing::TestWithParam<Case> {};

TEST_P(InferencePolicyTest, Recommends) {
  const Case& tc = GetParam();
  const Decision d = RecommendInference(tc.snapshot, tc.policy, tc.history, kNow);
  EXPECT_EQ(d.replicas, tc.want) << d.reason << ": " << d.message;
  EXPECT_EQ(d.reason, tc.want_reason) << d.message;
  EXPECT_EQ(d.panic, tc.want_panic) << d.message;
}

// A burst onset is demand in the panic window at >= 200% of the stable window's (at least one
// replica's worth), whatever the capacity; at most one per stable window; old ones are forgotten.
TEST(InferencePolicyBursts, RecordsOnsets) {
  // From idle to 60 (6 pods) in the last 6 s, 20 replicas ready: no panic, but a burst.
  Decision d = RecommendInference(Load(20, 0, 60), Policy(), {}, kNow);
  EXPECT_FALSE(d.panic);
  ASSERT_EQ(d.burst_onsets.size(), 1u);
  EXPECT_EQ(d.burst_onsets[0], kNow);
  // Steady demand is no burst.
  EXPECT_TRUE(RecommendInference(Load(4, 40), Policy(), {}, kNow).burst_onsets.empty());
  // A second onset within the stable window is the same burst.
  History h;
  h.burst_onsets = {kNow - absl::Seconds(30)};
  d = RecommendInference(Load(20, 0, 60), Policy(), h, kNow);
  EXPECT_EQ(d.burst_onsets, h.burst_onsets);
  // Onsets older than burst_memory (1 h) are dropped; a new one is appended.
  h.burst_onsets = {kNow - absl::Hours(2), kNow - absl::Seconds(90)};
  d = RecommendInference(Load(20, 0, 60), Policy(), h, kNow);
  EXPECT_EQ(d.burst_onsets, (std::vector<absl::Time>{kNow - absl::Seconds(90), kNow}));
  // Off: nothing recorded.
  InferencePolicy off = Policy();
  off.burst_gap_max = absl::ZeroDuration();
  EXPECT_TRUE(RecommendInference(Load(20, 0, 60), off, {}, kNow).burst_onsets.empty());
}

// `current` ready replicas, a request rate `rate` over the last 60 s (one sample every 2 s) and,
// optionally, `burst` over the last 6 s; concurrency stays low, as for a fast batching model.
Snapshot Rates(int current, double rate, double burst = -1) {
  Snapshot s = Load(current, 1);
  for (Observation& o : s.observations) {
    o.request_rate = (burst >= 0 && o.time > kNow - absl::Seconds(6)) ? burst : rate;
  }
  return s;
}

InferencePolicy RatePolicy(int max = 20) {
  InferencePolicy p = Policy(1, max);
  p.replica_capacity_rps = 1000;  // one replica: 800 req/s at the default 80%
  return p;
}

// Sized by request rate: ceil(rate / (capacity x target utilization)); concurrency is reported
// but does not size; without rates in the window the policy falls back to concurrency.
TEST(InferencePolicyRate, SizesByRequestRateAgainstCapacity) {
  Decision d = RecommendInference(Rates(2, 4000), RatePolicy(), {}, kNow);
  EXPECT_EQ(d.replicas, 5) << d.message;  // 4000 / 800
  EXPECT_EQ(d.reason, "ScaleUp");
  ASSERT_GE(d.proposals.size(), 3u);
  EXPECT_EQ(d.proposals[0].metric, "rate/stable");
  EXPECT_EQ(d.proposals[0].replicas, 5);
  EXPECT_EQ(d.proposals[2].metric, "concurrency/stable");
  ASSERT_TRUE(d.rate.has_value());
  EXPECT_EQ(*d.rate, 4000);
  // A burst in the panic window at >= 200% of capacity: panic, sized by the panic window's rate.
  d = RecommendInference(Rates(2, 1000, 9000), RatePolicy(), {}, kNow);
  EXPECT_TRUE(d.panic);
  EXPECT_EQ(d.replicas, 12) << d.message;  // ceil(9000 / 800)
  // The same load without rates: concurrency (1 against 10 per replica) wants 1.
  d = RecommendInference(Load(2, 1), RatePolicy(), {}, kNow);
  EXPECT_EQ(d.replicas, 1) << d.message;
  EXPECT_EQ(d.proposals[0].metric, "concurrency/stable");
  // The newest observation has no rate (no replica could be counted: the fleet at zero while the
  // gateway holds 400 requests): concurrency decides, so the held requests are seen.
  Snapshot held = Rates(2, 100);
  held.observations.back().request_rate.reset();
  held.observations.back().queued = 400;
  d = RecommendInference(held, RatePolicy(), {}, kNow);
  EXPECT_EQ(d.proposals[0].metric, "concurrency/stable") << d.message;
  EXPECT_GE(d.replicas, 2) << d.message;
  EXPECT_FALSE(d.rate.has_value());
  // Capacity unknown: concurrency, even with rates.
  d = RecommendInference(Rates(2, 4000), Policy(), {}, kNow);
  EXPECT_EQ(d.replicas, 1) << d.message;
  EXPECT_EQ(d.proposals[0].metric, "concurrency/stable");
}

// While bursts recur, the floor is the cheapest fleet that would have served the cover share of
// the remembered requests at one replica's share (800 req/s); without a series (or once it
// lapses) there is none.
TEST(InferencePolicyRate, BurstFloorCoversTheRememberedRequests) {
  History h;
  // The last 10 minutes at 2 s: 100 req/s, with 20-s bursts at 5,000 req/s every 100 s. Burst
  // ticks carry about 5,000 x 20 s x 5 = 500,000 of about 550,000 requests.
  for (int ago = 600; ago >= 2; ago -= 2) {
    const bool burst = (ago % 100) < 20;
    h.rates.push_back({kNow - absl::Seconds(ago), burst ? 5000.0 : 100.0});
  }
  h.burst_onsets = {kNow - absl::Seconds(320), kNow - absl::Seconds(220),
                    kNow - absl::Seconds(120)};
  // Now quiet: 100 req/s wants 1 replica, the floor holds what the bursts need (7 x 800 req/s
  // serves them all; 6 would leave 200 req/s of each burst tick, 3.6% of the requests, unserved).
  Decision d = RecommendInference(Rates(8, 100), RatePolicy(), h, kNow);
  EXPECT_EQ(d.replicas, 7) << d.message;
  EXPECT_EQ(d.reason, "BurstFloor");
  // A cover share that tolerates losing a fifth of the requests: 5 (4 would lose 1,800 req/s of
  // each burst tick, a third of them).
  InferencePolicy loose = RatePolicy();
  loose.burst_cover_share = 0.8;
  d = RecommendInference(Rates(8, 100), loose, h, kNow);
  EXPECT_EQ(d.replicas, 5) << d.message;
  // The series has lapsed (no onset for more than twice its longest gap): no floor, and the
  // scale-down goes by the usual rules (the 5-minute delay holds the recommendations made).
  h.burst_onsets = {kNow - absl::Seconds(900), kNow - absl::Seconds(800)};
  h.recommendations.clear();
  d = RecommendInference(Rates(8, 100), RatePolicy(), h, kNow);
  EXPECT_EQ(d.replicas, 4) << d.message;  // halved per decision (max scale-down rate 2)
  EXPECT_EQ(d.reason, "ScaleDownLimit");
  // The floor never passes max_replicas.
  h.burst_onsets = {kNow - absl::Seconds(320), kNow - absl::Seconds(220),
                    kNow - absl::Seconds(120)};
  d = RecommendInference(Rates(3, 100), RatePolicy(3), h, kNow);
  EXPECT_EQ(d.replicas, 3) << d.message;
}

// Sized by rate, smooth demand (no burst remembered) holds a replica three model load times (30 s)
// after the last recommendation that needed it, not the 5-minute scale-down delay; once a burst is
// remembered, the delay applies again.
TEST(InferencePolicyRate, SmoothDemandGetsTheShortHold) {
  History h = Recs({{40, 6}});  // 6 replicas were recommended 40 s ago; now 1,600 req/s wants 2
  Decision d = RecommendInference(Rates(6, 1600), RatePolicy(), h, kNow);
  EXPECT_EQ(d.replicas, 3) << d.message;  // not held; halved at most per decision
  EXPECT_EQ(d.reason, "ScaleDownLimit");
  EXPECT_EQ(d.hold, absl::Seconds(30));
  h.burst_onsets = {kNow - absl::Seconds(200)};
  d = RecommendInference(Rates(6, 1600), RatePolicy(), h, kNow);
  EXPECT_EQ(d.replicas, 6) << d.message;
  EXPECT_EQ(d.reason, "ScaleDownDelayed");
  EXPECT_EQ(d.hold, absl::Minutes(5));
  // Sized by concurrency, the 5-minute delay holds in both cases.
  d = RecommendInference(Load(6, 20), Policy(), Recs({{40, 6}}), kNow);
  EXPECT_EQ(d.replicas, 6) << d.message;
}

// Periodic bursts (three gaps within 10% of their mean): pre-warmed from one load time plus the
// panic window before the next is due, to what the last bursts were recommended; not between.
TEST(InferencePolicyRate, PeriodicBurstsArePrewarmed) {
  auto onsets = [](std::vector<int> ago) {
    std::vector<absl::Time> out;
    for (int a : ago) out.push_back(kNow - absl::Seconds(a));
    return out;
  };
  // Bursts every 200 s, the last 100 s ago: the next is due in 100 s. Nothing is held between
  // bursts (the short hold, 30 s, has passed): 3 replicas halve towards the 1 that 500 req/s needs.
  History h = Recs({{90, 9}});
  h.burst_onsets = onsets({700, 500, 300, 100});
  Decision d = RecommendInference(Rates(3, 500), RatePolicy(), h, kNow);
  EXPECT_EQ(d.replicas, 1) << d.message;
  EXPECT_EQ(d.hold, absl::Seconds(30));
  // The last 188 s ago: the next is due in 12 s, within one load time (10 s) plus the panic
  // window (6 s): the fleet goes to what the last burst was recommended.
  h = Recs({{180, 9}});
  h.burst_onsets = onsets({788, 588, 388, 188});
  d = RecommendInference(Rates(1, 500), RatePolicy(), h, kNow);
  EXPECT_EQ(d.replicas, 9) << d.message;
  EXPECT_EQ(d.reason, "PeriodicPrewarm");
  // Irregular gaps (260, 140, 200 s): no prediction, so no pre-warming.
  h.burst_onsets = onsets({788, 528, 388, 188});
  d = RecommendInference(Rates(1, 500), RatePolicy(), h, kNow);
  EXPECT_EQ(d.replicas, 1) << d.message;
  EXPECT_NE(d.reason, "PeriodicPrewarm");
}

INSTANTIATE_TEST_SUITE_P(Table, InferencePolicyTest, testing::ValuesIn(Cases()),
                         [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
}  // namespace galley::autoscale
