#include "autoscale/controller.h"

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
      if (o.scraped) o.inflight = inflight_each, o.queued = queued_each;
      s.replicas.push_back(o);
    }
    return s;
  }

 private:
  const Clock& clock_;
  static std::string StrCat(const char* a, int i) { return a + std::to_string(i); }
};

class FakeTarget final : public local::ScaleTarget {
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
  EXPECT_FALSE(Aggregate(s).has_value());
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
            std::string::npos) << text;
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

}  // namespace
}  // namespace galley::autoscale
