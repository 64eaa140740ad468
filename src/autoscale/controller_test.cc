#include "autoscale/controller.h"

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "common/sync.h"
#include "gtest/gtest.h"

namespace galley::autoscale {
namespace {

using std::chrono::milliseconds;

// Replicas that are all ready, each reporting the same in-flight and queued counts.
class FakeSource final : public MetricsSource {
 public:
  explicit FakeSource(const Clock& clock) : clock_(clock) {}
  int replicas = 1;
  double inflight_each = 0;  // queued + running, as galley_model_inflight_requests
  double queued_each = 0;
  double consumer_inflight_each = 0;  // galley_consumer_inflight_messages
  bool fail_scrapes = false;

  absl::StatusOr<MetricsSnapshot> Observe() override {
    MetricsSnapshot s;
    s.time = ToAbslTime(clock_.Now());
    for (int i = 0; i < replicas; ++i) {
      ReplicaObservation o;
      o.id = StrCat("replica-", i);
      o.ready = true;
      o.start_time = o.ready_time = absl::UnixEpoch();
      o.scraped = !fail_scrapes;
      if (o.scraped) {
        o.inflight = inflight_each;
        o.queued = queued_each;
        o.consumer_inflight = consumer_inflight_each;
      }
      s.replicas.push_back(o);
    }
    return s;
  }

 private:
  const Clock& clock_;
  static std::string StrCat(const char* a, int i) { return a + std::to_string(i); }
};

class FakeTarget final : public fleet::ScaleTarget {
 public:
  int desired = 1;
  std::vector<int> calls;
  absl::Status SetReplicas(int replicas) override {
    calls.push_back(replicas);
    desired = replicas;
    return absl::OkStatus();
  }
  int desired_replicas() const override { return desired; }
  int running_replicas() const override { return desired; }
};

ControllerOptions ShortWindows() {
  ControllerOptions o;
  o.sync_period = milliseconds(200);
  o.policy.min_replicas = 1;
  o.policy.max_replicas = 3;
  o.policy.target_concurrency = 2;
  o.policy.stable_window = absl::Seconds(2);
  o.policy.scale_down_delay = absl::Seconds(2);
  o.policy.model_load_time = absl::Seconds(1);
  return o;
}

TEST(AggregateTest, CountsEachRequestOnceAndSkipsMissing) {
  MetricsSnapshot s;
  s.time = absl::UnixEpoch();
  s.replicas.push_back({"a", true, {}, {}, true, "", 5, 2});
  s.replicas.push_back({"b", true, {}, {}, false, "timeout", 0, 0});
  s.replicas.push_back({"c", true, {}, {}, true, "", 1, 0});
  const std::optional<Observation> o = Aggregate(s);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->inflight, 4);  // running: (5 - 2) + 1
  EXPECT_EQ(o->queued, 2);
  s.replicas = {{"b", true, {}, {}, false, "timeout", 0, 0}};
  EXPECT_FALSE(Aggregate(s).has_value());
}

TEST(AggregateTest, NoReplicaMeansTheGatewayHoldsAllTheDemand) {
  MetricsSnapshot s;
  s.time = absl::UnixEpoch();
  std::optional<Observation> o = Aggregate(s);  // scaled to zero, nothing waiting: zero demand
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->inflight + o->queued, 0);
  s.gateway_held = 3;
  o = Aggregate(s);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->queued, 3);
  // Replicas that could not be scraped do not hide the held requests either.
  s.replicas = {{"b", false, {}, {}, false, "timeout", 0, 0}};
  o = Aggregate(s);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->queued, 3);
}

ReplicaObservation Counted(std::string id, std::optional<double> total,
                           std::optional<absl::Time> start = std::nullopt) {
  ReplicaObservation r;
  r.id = std::move(id);
  r.ready = true;
  r.scraped = true;
  r.start_time = start;
  r.requests_total = total;
  return r;
}

// The request rate: increases of each replica's counter between two readings, a reset counted
// from zero, a replica started in between counted whole, one of unknown history left out.
TEST(RequestRateTest, CountsIncreasesResetsAndNewReplicas) {
  const absl::Time t0 = absl::UnixEpoch() + absl::Hours(1);
  MetricsSnapshot before, after;
  before.time = t0;
  after.time = t0 + absl::Seconds(2);
  before.replicas = {Counted("a", 100), Counted("b", 500), Counted("gone", 7)};
  after.replicas = {Counted("a", 160),                           // +60
                    Counted("b", 40),                            // reset: +40
                    Counted("new", 20, t0 + absl::Seconds(1)),   // started since: +20
                    Counted("old", 900, t0 - absl::Minutes(5)),  // first read now: unknown
                    Counted("silent", std::nullopt)};            // not exposed
  std::optional<double> rate = RequestRate(before, after);
  ASSERT_TRUE(rate.has_value());
  EXPECT_DOUBLE_EQ(*rate, (60 + 40 + 20) / 2.0);
  // A replica that was loading at the previous reading (not scraped) and is ready now counts whole.
  {
    MetricsSnapshot loaded = after;
    loaded.replicas = {Counted("a", 160), Counted("warm", 30, t0 - absl::Seconds(10))};
    loaded.replicas[1].ready_time = t0 + absl::Seconds(1);
    MetricsSnapshot was = before;
    ReplicaObservation loading = Counted("warm", std::nullopt, t0 - absl::Seconds(10));
    loading.scraped = false;
    was.replicas.push_back(loading);
    EXPECT_EQ(RequestRate(was, loaded), (60 + 30) / 2.0);
  }
  // Through Aggregate, with the previous snapshot; without it, no rate.
  after.replicas[0].inflight = 3;
  std::optional<Observation> o = Aggregate(after, &before);
  ASSERT_TRUE(o.has_value());
  ASSERT_TRUE(o->request_rate.has_value());
  EXPECT_DOUBLE_EQ(*o->request_rate, 60.0);
  EXPECT_FALSE(Aggregate(after)->request_rate.has_value());
  // Nothing to count, a replica that failed its scrape, or time that does not advance: no rate.
  after.replicas = {Counted("old", 900, t0 - absl::Minutes(5))};
  EXPECT_FALSE(RequestRate(before, after).has_value());
  after.replicas = {Counted("a", 160)};
  after.replicas[0].scraped = false;
  EXPECT_FALSE(RequestRate(before, after).has_value());
  after.replicas = {Counted("a", 160)};
  after.time = t0;
  EXPECT_FALSE(RequestRate(before, after).has_value());
  // An idle fleet is a real zero, not a missing sample.
  after.time = t0 + absl::Seconds(2);
  after.replicas = {Counted("a", 100)};
  EXPECT_EQ(RequestRate(before, after), 0.0);
}

TEST(BuildSnapshotTest, StoppingReplicasAreNotCapacity) {
  MetricsSnapshot s;
  const absl::Time t = absl::UnixEpoch();
  s.replicas.push_back({"ready", true, t, t, true, "", 0, 0});
  s.replicas.push_back({"starting", false, t, std::nullopt, true, "", 0, 0});
  s.replicas.push_back({"stopping", false, t, t, true, "", 0, 0});
  const Snapshot snap = BuildSnapshot(s, 3, {});
  ASSERT_EQ(snap.pods.size(), 3u);
  EXPECT_EQ(snap.current_replicas, 3);
  EXPECT_FALSE(snap.pods[0].deleted);
  EXPECT_FALSE(snap.pods[1].deleted);
  EXPECT_TRUE(snap.pods[2].deleted);
}

// A load step scales up within a tick (panic), holds while the load lasts, and after the load
// stops comes back to the warm pool once the stable window and the scale-down delay have passed,
// never below it.
TEST(ControllerTest, ScalesUpOnLoadAndBackDownToTheWarmPool) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  FakeSource source(clock);
  FakeTarget target;
  metrics::Registry registry;
  Controller controller(source, target, clock, ShortWindows(), &registry);

  Decision d = controller.Tick();  // idle
  EXPECT_EQ(d.replicas, 1);
  EXPECT_TRUE(target.calls.empty());

  source.inflight_each = 6;  // 6 per replica against a target of 2
  clock.Advance(milliseconds(200));
  d = controller.Tick();
  EXPECT_EQ(d.replicas, 3) << d.reason << ": " << d.message;
  EXPECT_TRUE(d.panic);
  EXPECT_EQ(target.calls, std::vector<int>{3});
  source.replicas = 3;
  source.inflight_each = 2;  // the same load spread over 3
  for (int i = 0; i < 10; ++i) {
    clock.Advance(milliseconds(200));
    d = controller.Tick();
    EXPECT_EQ(d.replicas, 3) << i << " " << d.reason;
  }
  const std::string text = registry.Exposition();
  EXPECT_NE(text.find("galley_autoscale_desired_replicas 3"), std::string::npos) << text;
  EXPECT_NE(text.find("galley_autoscale_current_replicas 3"), std::string::npos) << text;
  EXPECT_NE(text.find("galley_autoscale_metric_value{metric=\"concurrency/stable\"}"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("galley_autoscale_panic_mode"), std::string::npos) << text;

  // The load stops: no scale-down within the stable window; back to 1 within a few windows.
  source.inflight_each = 0;
  int ticks = 0;
  while (target.desired > 1 && ticks < 100) {
    clock.Advance(milliseconds(200));
    d = controller.Tick();
    ++ticks;
    if (ticks * 200 < 2000) {
      EXPECT_EQ(target.desired, 3) << ticks << " " << d.reason;
    }
    source.replicas = target.desired;
  }
  EXPECT_EQ(target.desired, 1);
  EXPECT_LT(ticks, 60);
  for (int c : target.calls) EXPECT_GE(c, 1);
  for (int i = 0; i < 20; ++i) {
    clock.Advance(milliseconds(200));
    EXPECT_EQ(controller.Tick().replicas, 1);
  }
}

// Without any metric the controller keeps the count (no scrape reads as zero demand).
TEST(ControllerTest, MissingMetricsKeepTheCount) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  FakeSource source(clock);
  FakeTarget target;
  target.desired = 2;
  source.replicas = 2;
  source.fail_scrapes = true;
  Controller controller(source, target, clock, ShortWindows());
  for (int i = 0; i < 30; ++i) {
    clock.Advance(milliseconds(200));
    const Decision d = controller.Tick();
    EXPECT_EQ(d.replicas, 2);
    EXPECT_EQ(d.reason, "NoMetrics");
  }
  EXPECT_TRUE(target.calls.empty());
}

// Scale to zero: with no demand for the grace period the last replica goes; a request held at
// the gateway brings one back on the next tick.
TEST(ControllerTest, ScalesToZeroAndBackForHeldRequests) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  FakeSource source(clock);
  FakeTarget target;
  ControllerOptions o = ShortWindows();
  o.policy.min_replicas = 0;
  o.policy.scale_to_zero = true;
  o.policy.scale_to_zero_grace = absl::Seconds(1);
  double held = 0;
  o.gateway_held = [&held] { return held; };
  Controller controller(source, target, clock, o);
  source.inflight_each = 1;
  Decision d = controller.Tick();
  EXPECT_EQ(d.replicas, 1);
  source.inflight_each = 0;
  int ticks = 0;
  while (target.desired > 0 && ticks < 100) {
    clock.Advance(milliseconds(200));
    d = controller.Tick();
    ++ticks;
    // Never before the grace period has passed since the last demand.
    if (ticks * 200 <= 1000) {
      EXPECT_EQ(target.desired, 1) << ticks << " " << d.reason;
    }
    source.replicas = target.desired;
  }
  ASSERT_EQ(target.desired, 0) << d.reason << ": " << d.message;
  for (int i = 0; i < 5; ++i) {
    clock.Advance(milliseconds(200));
    EXPECT_EQ(controller.Tick().replicas, 0);
  }
  held = 2;  // two requests wait at the gateway
  clock.Advance(milliseconds(200));
  d = controller.Tick();
  EXPECT_EQ(d.replicas, 1) << d.reason << ": " << d.message;
  EXPECT_EQ(target.desired, 1);
}

// A target whose scale calls can be waited for from the test's thread.
class SignallingTarget final : public fleet::ScaleTarget {
 public:
  absl::Status SetReplicas(int replicas) override {
    absl::MutexLock lock(&mu_);
    desired_ = replicas;
    changed_.SignalAll();
    return absl::OkStatus();
  }
  int desired_replicas() const override {
    absl::MutexLock lock(&mu_);
    return desired_;
  }
  int running_replicas() const override { return desired_replicas(); }
  bool WaitFor(int replicas, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    absl::MutexLock lock(&mu_);
    while (desired_ != replicas && galley::WaitUntil(changed_, mu_, deadline)) {
    }
    return desired_ == replicas;
  }

 private:
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  int desired_ ABSL_GUARDED_BY(mu_) = 0;
};

// Poke ticks at once: with a sync period of an hour, only a poke can scale from zero.
TEST(ControllerTest, PokeTicksWithoutWaitingForThePeriod) {
  // No replica; says when it has been observed, so the test knows the first tick is over.
  class NoReplicas final : public MetricsSource {
   public:
    absl::StatusOr<MetricsSnapshot> Observe() override {
      absl::MutexLock lock(&mu);
      ++observed;
      cv.SignalAll();
      return MetricsSnapshot{};
    }
    absl::Mutex mu;
    absl::CondVar cv;
    int observed ABSL_GUARDED_BY(mu) = 0;
  } source;
  SignallingTarget target;
  ControllerOptions o = ShortWindows();
  o.sync_period = std::chrono::hours(1);
  o.policy.min_replicas = 0;
  o.policy.scale_to_zero = true;
  std::atomic<double> held{0};
  o.gateway_held = [&held] { return held.load(); };
  Controller controller(source, target, SteadyClock::Get(), o);
  ASSERT_TRUE(controller.Start().ok());  // the first tick sees no demand: stays at zero
  {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    absl::MutexLock lock(&source.mu);
    while (source.observed <= 0 && galley::WaitUntil(source.cv, source.mu, deadline)) {
    }
    ASSERT_TRUE(source.observed > 0);
  }
  held = 1;
  controller.Poke();
  EXPECT_TRUE(target.WaitFor(1, std::chrono::seconds(30)));
  controller.Stop();
}

TEST(ControllerTest, StartStopLifecycle) {
  FakeSource source(SteadyClock::Get());
  FakeTarget target;
  ControllerOptions o = ShortWindows();
  o.sync_period = milliseconds(5);
  Controller controller(source, target, SteadyClock::Get(), o);
  ASSERT_TRUE(controller.Start().ok());
  EXPECT_EQ(controller.Start().code(), absl::StatusCode::kFailedPrecondition);
  controller.Stop();
  controller.Stop();
  EXPECT_EQ(controller.Start().code(), absl::StatusCode::kFailedPrecondition);
}

// A source whose replicas all report the same load, or that fails as a whole (as the
// Prometheus source does when the server is down).
class SwitchableSource final : public MetricsSource {
 public:
  explicit SwitchableSource(const Clock& clock) : clock_(clock) {}
  int replicas = 1;
  double inflight_each = 0;
  double queued_each = 0;
  bool unavailable = false;
  int missing = 0;  // the last `missing` replicas are not scraped

  absl::StatusOr<MetricsSnapshot> Observe() override {
    if (unavailable) return absl::UnavailableError("Prometheus at http://127.0.0.1:9 is down");
    MetricsSnapshot s;
    s.time = ToAbslTime(clock_.Now());
    for (int i = 0; i < replicas; ++i) {
      ReplicaObservation o;
      o.id = "replica-" + std::to_string(i);
      o.ready = true;
      o.start_time = o.ready_time = absl::UnixEpoch();
      o.scraped = i < replicas - missing;
      if (o.scraped) o.inflight = inflight_each, o.queued = queued_each;
      s.replicas.push_back(o);
    }
    return s;
  }

 private:
  const Clock& clock_;
};

// While the source is unavailable the controller neither scales nor remembers anything: an
// outage reads as "no data", never as "no demand".
// At zero with the metrics backend down, requests held at the gateway still bring a replica up:
// that demand needs no source.
TEST(ControllerTest, HeldRequestsScaleFromZeroWithoutMetrics) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  SwitchableSource source(clock);
  source.replicas = 0;
  source.unavailable = true;
  FakeTarget target;
  target.desired = 0;
  ControllerOptions o = ShortWindows();
  o.policy.min_replicas = 0;
  o.policy.scale_to_zero = true;
  double held = 0;
  o.gateway_held = [&held] { return held; };
  Controller controller(source, target, clock, o);
  Decision d = controller.Tick();
  EXPECT_EQ(d.reason, "MetricsUnavailable");
  EXPECT_EQ(d.replicas, 0);
  held = 1;
  clock.Advance(milliseconds(200));
  d = controller.Tick();
  EXPECT_EQ(d.replicas, 1) << d.reason << ": " << d.message;
  EXPECT_EQ(target.calls, std::vector<int>{1});
}

TEST(ControllerTest, UnavailableSourceSkipsTheTick) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  SwitchableSource source(clock);
  FakeTarget target;
  metrics::Registry registry;
  Controller controller(source, target, clock, ShortWindows(), &registry);
  source.inflight_each = 6;
  Decision d = controller.Tick();
  ASSERT_EQ(d.replicas, 3) << d.reason;
  source.replicas = 3;
  source.inflight_each = 0;
  source.unavailable = true;
  // Far longer than the stable window and the scale-down delay (2 s each).
  for (int i = 0; i < 40; ++i) {
    clock.Advance(milliseconds(200));
    d = controller.Tick();
    EXPECT_EQ(d.replicas, 3) << i;
    EXPECT_EQ(d.reason, "MetricsUnavailable") << i;
    EXPECT_FALSE(d.recommendation.has_value());
  }
  EXPECT_EQ(target.calls, std::vector<int>{3});
  EXPECT_NE(registry.Exposition().find("galley_autoscale_desired_replicas 3"), std::string::npos);
  // Back: decisions resume on fresh data. NOTE: the outage outlasted the scale-down delay, so
  // no earlier recommendation holds the count (as the HPA, which records none while its
  // metrics fail) and the idle replicas go on the first tick with data.
  source.unavailable = false;
  clock.Advance(milliseconds(200));
  d = controller.Tick();
  EXPECT_EQ(d.replicas, 1) << d.reason << ": " << d.message;
  EXPECT_EQ(target.calls, (std::vector<int>{3, 1}));
}

ControllerOptions HpaOptions(const char* metric, double target) {
  ControllerOptions o = ShortWindows();
  HpaSpec hpa;
  hpa.min_replicas = 1;
  hpa.max_replicas = 4;
  hpa.metrics = {{MetricSourceType::kPods, metric, "", TargetType::kAverageValue, 0, target}};
  hpa.downscale_stabilization = absl::Seconds(2);
  o.hpa = hpa;
  return o;
}

TEST(AddPodsMetricsTest, OnlyObservedReplicasGetSamples) {
  MetricsSnapshot m;
  m.time = absl::UnixEpoch() + absl::Seconds(5);
  m.replicas.push_back({"a", true, {}, {}, true, "", 5, 2});
  m.replicas.push_back({"b", true, {}, {}, false, "stale", 0, 0});
  Snapshot s = BuildSnapshot(m, 2, {});
  AddPodsMetrics(m, s);
  ASSERT_EQ(s.pods.size(), 2u);
  EXPECT_EQ(s.pods[0].metrics.at(kPodsInflight).value, 5);
  EXPECT_EQ(s.pods[0].metrics.at(kPodsQueueLength).value, 2);
  EXPECT_EQ(s.pods[0].metrics.at(kPodsInflight).timestamp, m.time);
  EXPECT_TRUE(s.pods[1].metrics.empty());
}

TEST(RecommendationMemoryTest, CoversTheModesWindows) {
  ControllerOptions o = ShortWindows();
  EXPECT_EQ(RecommendationMemory(o), absl::Hours(1));  // the burst-recurrence hold's memory
  o.policy.burst_gap_max = absl::ZeroDuration();       // off: the 2 s windows
  EXPECT_EQ(RecommendationMemory(o), absl::Seconds(2));
  o.hpa = HpaSpec{};
  EXPECT_EQ(RecommendationMemory(o), absl::Minutes(5));  // legacy downscale stabilisation
  o.hpa->behavior = Behavior{};
  EXPECT_EQ(RecommendationMemory(o), absl::Seconds(300));  // behavior's scale-down default
  o.hpa->behavior->scale_up = ScalingRules{};
  o.hpa->behavior->scale_up->stabilization_window_seconds = 600;
  EXPECT_EQ(RecommendationMemory(o), absl::Seconds(600));
}

// HPA mode on the replicas' in-flight requests as a Pods metric (AverageValue 2): a load step
// scales up at once (ceil(6 / 2) = 3), and after the load the count holds for the downscale
// stabilisation window (read from the History the controller keeps) before it comes down.
TEST(ControllerTest, HpaModeScalesOnPodsMetricsAndStabilisesScaleDown) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  SwitchableSource source(clock);
  FakeTarget target;
  Controller controller(source, target, clock, HpaOptions(kPodsInflight, 2));
  Decision d = controller.Tick();
  EXPECT_EQ(d.replicas, 1) << d.reason << ": " << d.message;
  source.inflight_each = 6;
  clock.Advance(milliseconds(200));
  d = controller.Tick();
  EXPECT_EQ(d.replicas, 3) << d.reason << ": " << d.message;
  ASSERT_EQ(d.proposals.size(), 1u);
  EXPECT_EQ(d.proposals[0].current, 6);
  EXPECT_EQ(target.calls, std::vector<int>{3});
  source.replicas = 3;
  source.inflight_each = 2;  // on target
  for (int i = 0; i < 5; ++i) {
    clock.Advance(milliseconds(200));
    EXPECT_EQ(controller.Tick().replicas, 3);
  }
  source.inflight_each = 0;
  const TimePoint idle_from = clock.Now();
  while (target.desired > 1 && clock.Now() - idle_from < std::chrono::seconds(20)) {
    clock.Advance(milliseconds(200));
    d = controller.Tick();
    if (clock.Now() - idle_from < std::chrono::seconds(2)) {
      EXPECT_EQ(target.desired, 3) << d.reason;
      EXPECT_EQ(d.reason, "ScaleDownStabilized");
    }
    source.replicas = target.desired;
  }
  EXPECT_EQ(target.desired, 1);
  EXPECT_LE(clock.Now() - idle_from, std::chrono::milliseconds(2'400));
}

// HPA mode on the queue length; a replica without metrics is a missing pod, which the HPA
// counts as 0 when scaling up (replica_calculator.go), and a source outage skips the tick.
TEST(ControllerTest, HpaModeOnQueueLengthWithMissingPods) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  SwitchableSource source(clock);
  FakeTarget target;
  target.desired = 2;
  source.replicas = 2;
  source.missing = 1;
  source.inflight_each = 100;  // not the metric: ignored
  source.queued_each = 5;
  Controller controller(source, target, clock, HpaOptions(kPodsQueueLength, 1));
  // One pod reports 5 (ratio 5 > 1): the missing pod counts as 0, so (5 + 0) / 1 = 5 replicas;
  // the legacy scale-up limit max(2 * 2, 4) = 4 and max_replicas 4 cap it.
  Decision d = controller.Tick();
  EXPECT_EQ(d.replicas, 4) << d.reason << ": " << d.message;
  source.replicas = 4;
  source.missing = 0;
  source.unavailable = true;
  clock.Advance(milliseconds(200));
  d = controller.Tick();
  EXPECT_EQ(d.reason, "MetricsUnavailable");
  EXPECT_EQ(d.replicas, 4);
  EXPECT_EQ(target.calls, std::vector<int>{4});
}

// Scaling on a queue: the lag is demand no replica reports, so it wakes a fleet at zero; pending
// messages count only when no replica can be observed (a live replica already counts what it
// holds); a depth that cannot be read skips the tick instead of scaling on a missing metric.
TEST(ControllerTest, QueueLagWakesAFleetAtZeroAndAMissingDepthSkipsTheTick) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  FakeSource source(clock);
  source.replicas = 0;
  FakeTarget target;
  target.desired = 0;
  ControllerOptions o = ShortWindows();
  o.policy.min_replicas = 0;
  o.policy.scale_to_zero = true;
  o.policy.scale_to_zero_grace = absl::Seconds(1);
  absl::StatusOr<QueueDepth> depth = QueueDepth{0, 0};
  o.queue_depth = [&depth] { return depth; };
  Controller controller(source, target, clock, o);
  Decision d = controller.Tick();
  EXPECT_EQ(d.replicas, 0) << d.reason;

  depth = QueueDepth{5, 0};  // five messages waiting, target 2 per replica
  clock.Advance(milliseconds(200));
  d = controller.Tick();
  EXPECT_EQ(d.replicas, 3) << d.reason << ": " << d.message;
  EXPECT_EQ(target.calls, std::vector<int>{3});

  // Redis unreachable: no decision on a missing metric.
  depth = absl::UnavailableError("cannot connect to Redis");
  clock.Advance(milliseconds(200));
  d = controller.Tick();
  EXPECT_EQ(d.reason, "MetricsUnavailable");
  EXPECT_EQ(d.replicas, 3);
  EXPECT_EQ(target.calls, std::vector<int>{3});
}

TEST(ControllerTest, PendingMessagesCountOnlyWhenNoReplicaIsObserved) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  FakeSource source(clock);
  source.replicas = 0;
  FakeTarget target;
  target.desired = 0;
  ControllerOptions o = ShortWindows();
  o.policy.min_replicas = 0;
  o.policy.scale_to_zero = true;
  // Messages held by consumers that died: no lag, only pending. A pending-only or lag-only
  // count would leave them at zero replicas for ever.
  o.queue_depth = [] { return absl::StatusOr<QueueDepth>(QueueDepth{0, 4}); };
  Controller controller(source, target, clock, o);
  Decision d = controller.Tick();
  EXPECT_EQ(d.replicas, 2) << d.reason << ": " << d.message;

  // With live replicas the same pending messages are in their in-flight counts: not twice.
  source.replicas = 2;
  source.inflight_each = 2;
  target.desired = 2;
  for (int i = 0; i < 5; ++i) {
    clock.Advance(milliseconds(200));
    d = controller.Tick();
  }
  EXPECT_EQ(d.replicas, 2) << d.reason << ": " << d.message;
}

TEST(ControllerTest, HpaModeScalesOnTheQueueBacklogAsAnExternalMetric) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  FakeSource source(clock);
  FakeTarget target;
  ControllerOptions o = ShortWindows();
  HpaSpec hpa;
  hpa.min_replicas = 1;
  hpa.max_replicas = 10;
  hpa.metrics = {
      {MetricSourceType::kExternal, kExternalQueueBacklog, "", TargetType::kAverageValue, 0, 20}};
  o.hpa = hpa;
  o.queue_depth = [] { return absl::StatusOr<QueueDepth>(QueueDepth{90, 10}); };
  Controller controller(source, target, clock, o);
  const Decision d = controller.Tick();
  // ceil((90 + 10) / 20) = 5, within the HPA's scale-up limit of max(2 * 1, 4).
  EXPECT_EQ(d.replicas, 4) << d.reason << ": " << d.message;
  ASSERT_EQ(d.proposals.size(), 1u);
  EXPECT_EQ(d.proposals[0].replicas, 5) << d.proposals[0].metric;
}

// RabbitMQ's declare-ok counts ready messages only: what the consumers hold comes from their own
// gauges (pending_from_replicas), so the backlog is ready + held, and a replica that could not be
// scraped adds nothing it was not seen to hold.
TEST(ControllerTest, PendingFromTheReplicasGaugesJoinsTheBacklogWhenTheBrokerCannotSayIt) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  FakeSource source(clock);
  source.replicas = 2;
  source.consumer_inflight_each = 15;
  FakeTarget target;
  target.desired = 2;
  ControllerOptions o = ShortWindows();
  HpaSpec hpa;
  hpa.min_replicas = 1;
  hpa.max_replicas = 10;
  hpa.metrics = {
      {MetricSourceType::kExternal, kExternalQueueBacklog, "", TargetType::kAverageValue, 0, 10}};
  o.hpa = hpa;
  o.queue_depth = [] {
    QueueDepth d;
    d.lag = 50;
    d.pending = 1000;  // ignored: the broker does not know it
    d.pending_from_replicas = true;
    return absl::StatusOr<QueueDepth>(d);
  };
  Controller controller(source, target, clock, o);
  Decision d = controller.Tick();
  ASSERT_EQ(d.proposals.size(), 1u);
  // ceil((50 + 2 * 15) / 10) = 8.
  EXPECT_EQ(d.proposals[0].replicas, 8) << d.proposals[0].metric;

  source.fail_scrapes = true;  // nothing observed: only the ready messages are known
  clock.Advance(milliseconds(200));
  d = controller.Tick();
  ASSERT_EQ(d.proposals.size(), 1u);
  EXPECT_EQ(d.proposals[0].replicas, 5) << d.proposals[0].metric;  // ceil(50 / 10)
}

}  // namespace
}  // namespace galley::autoscale
