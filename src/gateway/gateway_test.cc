// The gateway's forwarding core against a scripted Upstream and a manual clock: which replica an
// attempt goes to, retries, which model names get state, and how long an attempt may take.
#include "gateway/gateway.h"

#include <map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/io_context.hpp"
#include "gtest/gtest.h"
#include "metrics/registry.h"

namespace galley::gateway {
namespace {

using std::chrono::milliseconds;

// Answers each attempt at once (on the calling thread) by the replica's script: an HTTP status,
// or 0 for a timeout. Records every attempt's replica and deadline.
class ScriptedUpstream final : public upstream::Upstream {
 public:
  struct Sent {
    uint16_t port;
    std::string target;
    TimePoint deadline;
  };
  explicit ScriptedUpstream(const Clock& clock) : clock_(clock) {}

  void Answer(uint16_t port, int status, Duration latency = milliseconds(2)) {
    absl::MutexLock l(&mu_);
    script_[port] = {status, latency};
  }
  std::vector<Sent> sent() {
    absl::MutexLock l(&mu_);
    return sent_;
  }
  void Clear() {
    absl::MutexLock l(&mu_);
    sent_.clear();
  }

  void Send(const std::string&, uint16_t port, http::Request request, TimePoint deadline,
            upstream::UpstreamCallback done) override {
    std::pair<int, Duration> how;
    {
      absl::MutexLock l(&mu_);
      sent_.push_back({port, std::string(request.target()), deadline});
      how = script_.count(port) ? script_[port] : std::pair<int, Duration>{200, milliseconds(2)};
    }
    upstream::UpstreamResult r;
    r.latency = how.second;
    if (how.first == 0) {
      r.transport_error = r.timed_out = true;
      r.error = "deadline passed";
    } else {
      r.response = http::Response{static_cast<http::Status>(how.first), 11};
    }
    done(std::move(r));
  }

 private:
  [[maybe_unused]] const Clock& clock_;
  absl::Mutex mu_;
  std::map<uint16_t, std::pair<int, Duration>> script_ ABSL_GUARDED_BY(mu_);
  std::vector<Sent> sent_ ABSL_GUARDED_BY(mu_);
};

class GatewayTest : public ::testing::Test {
 protected:
  void Make(std::vector<uint16_t> ports, GatewayOptions o = {}) {
    std::vector<fleet::ReplicaEndpoint> eps;
    for (uint16_t p : ports) eps.push_back({"r" + std::to_string(p), "127.0.0.1", p, true, {}});
    source_ = std::make_unique<fleet::StaticReplicaSource>(std::move(eps));
    o.backoff.base = milliseconds(1);
    o.backoff.cap = milliseconds(1);
    gateway_ = std::make_unique<Gateway>(*source_, upstream_, io_, clock_, metrics_, o);
  }

  // Forwards one request and runs the timers (back-offs) until it is done.
  ForwardResult Forward(const std::string& model, milliseconds deadline = milliseconds(30'000)) {
    std::optional<ForwardResult> out;
    http::Request req{http::Verb::post, "/v2/models/" + model + "/infer", 11};
    gateway_->Forward(model, std::move(req), clock_.Now() + deadline,
                      [&](ForwardResult&& r) { out = std::move(r); });
    for (int i = 0; i < 1000 && !out; ++i) {
      io_.restart();
      io_.run_one_for(milliseconds(100));
    }
    EXPECT_TRUE(out.has_value());
    return out.value_or(ForwardResult{});
  }

  ManualClock clock_{TimePoint{} + std::chrono::hours(1)};
  boost::asio::io_context io_;
  metrics::Registry registry_;
  GatewayMetrics metrics_{registry_};
  ScriptedUpstream upstream_{clock_};
  std::unique_ptr<fleet::StaticReplicaSource> source_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(GatewayTest, RetriesAFailingReplicaOnAnotherAndLearnsTheModel) {
  Make({1, 2});
  upstream_.Answer(1, 503);
  upstream_.Answer(2, 200);
  EXPECT_FALSE(gateway_->KnownModel("m"));
  for (int i = 0; i < 10; ++i) {
    ForwardResult r = Forward("m");
    ASSERT_TRUE(r.answered);
    EXPECT_EQ(r.replica, "r2");
    EXPECT_EQ(r.response.result(), http::Status::ok);
  }
  EXPECT_TRUE(gateway_->KnownModel("m"));
}

TEST_F(GatewayTest, AReplicaThatNamesItsModelsGetsRequestsForThoseOnly) {
  source_ = std::make_unique<fleet::StaticReplicaSource>(
      std::vector<fleet::ReplicaEndpoint>{{"a", "127.0.0.1", 1, true, {"alpha"}},
                                          {"b", "127.0.0.1", 2, true, {"beta"}},
                                          {"any", "127.0.0.1", 3, true, {}}});
  gateway_ =
      std::make_unique<Gateway>(*source_, upstream_, io_, clock_, metrics_, GatewayOptions{});
  for (int i = 0; i < 20; ++i) {
    EXPECT_NE(Forward("alpha").replica, "b");
    EXPECT_NE(Forward("beta").replica, "a");
    EXPECT_EQ(Forward("gamma").replica, "any");
  }
  // With its only replica failing, a model is not sent to another model's replica.
  upstream_.Answer(1, 503);
  upstream_.Answer(3, 503);
  upstream_.Clear();
  ForwardResult r = Forward("alpha");
  for (const auto& s : upstream_.sent()) EXPECT_NE(s.port, 2) << s.target;
  EXPECT_NE(r.replica, "b");
}

TEST_F(GatewayTest, NamesNoReplicaServesGetNoState) {
  GatewayOptions o;
  o.models = {"seeded"};
  Make({1}, o);
  upstream_.Answer(1, 404);
  for (int i = 0; i < 50; ++i) {
    ForwardResult r = Forward("made-up-" + std::to_string(i));
    ASSERT_TRUE(r.answered);
    EXPECT_EQ(r.response.result(), http::Status::not_found);
  }
  EXPECT_FALSE(gateway_->KnownModel("made-up-0"));
  EXPECT_TRUE(gateway_->KnownModel("seeded"));
  EXPECT_EQ(registry_.Exposition().find("made-up"), std::string::npos);
}

TEST_F(GatewayTest, KnownNamesAreBounded) {
  GatewayOptions o;
  o.max_known_models = 3;
  Make({1}, o);
  for (int i = 0; i < 10; ++i) Forward("m" + std::to_string(i));
  int known = 0;
  for (int i = 0; i < 10; ++i) known += gateway_->KnownModel("m" + std::to_string(i)) ? 1 : 0;
  EXPECT_EQ(known, 3);
}

TEST_F(GatewayTest, AttemptTimeoutFollowsTheModelsLatencyWhileAnotherReplicaCanTakeOver) {
  GatewayOptions o;
  o.try_timeout = milliseconds(5'000);
  o.max_attempts = 3;
  o.attempt_latency.min_samples = 10;
  Make({1, 2}, o);
  upstream_.Answer(1, 200, milliseconds(20));
  upstream_.Answer(2, 200, milliseconds(20));
  Forward("m");  // learns the name; answers from now on fill its window
  upstream_.Clear();
  for (int i = 0; i < 20; ++i) Forward("m");
  // Before ten answers: the whole try timeout; after: 5 x p99 (20 ms) = 100 ms.
  const auto sent = upstream_.sent();
  ASSERT_EQ(sent.size(), 20u);
  EXPECT_EQ(sent.front().deadline - clock_.Now(), milliseconds(5'000));
  EXPECT_EQ(sent.back().deadline - clock_.Now(), milliseconds(100));

  // A replica that times out costs that much, and the retry (the last replica there is to try)
  // gets the whole try timeout.
  upstream_.Answer(1, 0);
  upstream_.Clear();
  for (int i = 0; i < 10; ++i) {
    ForwardResult r = Forward("m");
    ASSERT_TRUE(r.answered);
    EXPECT_EQ(r.replica, "r2");
  }
  bool saw_retry = false;
  const auto attempts = upstream_.sent();
  for (size_t i = 0; i + 1 < attempts.size(); ++i) {
    if (attempts[i].port != 1) continue;
    EXPECT_EQ(attempts[i].deadline - clock_.Now(), milliseconds(100));
    EXPECT_EQ(attempts[i + 1].port, 2);
    EXPECT_EQ(attempts[i + 1].deadline - clock_.Now(), milliseconds(5'000));
    saw_retry = true;
  }
  EXPECT_TRUE(saw_retry);
}

TEST_F(GatewayTest, WithOneReplicaAnAttemptAlwaysGetsTheWholeTryTimeout) {
  GatewayOptions o;
  o.try_timeout = milliseconds(3'000);
  o.attempt_latency.min_samples = 1;
  Make({1}, o);
  for (int i = 0; i < 5; ++i) Forward("m");
  for (const auto& s : upstream_.sent()) EXPECT_EQ(s.deadline - clock_.Now(), milliseconds(3'000));
}

TEST_F(GatewayTest, MultiplierZeroTurnsTheLatencyTimeoutOff) {
  GatewayOptions o;
  o.try_timeout = milliseconds(3'000);
  o.attempt_latency.min_samples = 1;
  o.attempt_latency.multiplier = 0;
  Make({1, 2}, o);
  for (int i = 0; i < 20; ++i) Forward("m");
  for (const auto& s : upstream_.sent()) EXPECT_EQ(s.deadline - clock_.Now(), milliseconds(3'000));
}

}  // namespace
}  // namespace galley::gateway
