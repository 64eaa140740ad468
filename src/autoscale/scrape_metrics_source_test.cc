#include "autoscale/scrape_metrics_source.h"

#include <map>

#include "gtest/gtest.h"

namespace galley::autoscale {
namespace {

// Answers each replica (by port) with a scripted result, at once, on the caller's thread; a port
// with no script never answers (the source's own timeout must end the wait).
class FakeUpstream final : public upstream::Upstream {
 public:
  std::map<uint16_t, upstream::UpstreamResult> answers;
  std::vector<std::string> targets;

  void Send(const std::string& host, uint16_t port, http::Request request, TimePoint deadline,
            upstream::UpstreamCallback done) override {
    targets.push_back(std::string(request.target()));
    auto it = answers.find(port);
    if (it == answers.end()) return;
    upstream::UpstreamResult r = it->second;
    done(std::move(r));
  }
};

upstream::UpstreamResult Ok(std::string body, http::Status status = http::Status::ok) {
  upstream::UpstreamResult r;
  r.response.result(status);
  r.response.body() = std::move(body);
  return r;
}

upstream::UpstreamResult TransportError(bool timed_out) {
  upstream::UpstreamResult r;
  r.transport_error = true;
  r.timed_out = timed_out;
  r.error = "connection refused";
  return r;
}

constexpr const char* kServeMetrics = R"(# HELP galley_queue_length Requests waiting.
# TYPE galley_queue_length gauge
galley_queue_length{model="vader"} 3
galley_queue_length{model="other"} 1
# HELP galley_model_inflight_requests Requests queued or running on the model.
# TYPE galley_model_inflight_requests gauge
galley_model_inflight_requests{model="vader"} 7
galley_model_inflight_requests{model="other"} 1
)";

TEST(ReadReplicaLoadTest, Table) {
  struct Case {
    std::string name;
    std::string body;
    bool ok;
    double inflight, queued, consumer_inflight = 0;
  };
  const std::vector<Case> cases = {
      {"sums over models", kServeMetrics, true, 8, 4},
      {"no queue metric", "galley_model_inflight_requests 2\n", true, 2, 0},
      {"queue consumers' held messages, every broker",
       "galley_model_inflight_requests 2\ngalley_consumer_inflight_messages{broker=\"amqp\"} 5\n"
       "galley_consumer_inflight_messages{broker=\"redis\"} 3\n",
       true, 2, 0, 8},
      {"declared, no series yet", "# TYPE galley_model_inflight_requests gauge\n", true, 0, 0},
      {"missing inflight", "galley_queue_length 2\n", false, 0, 0},
      {"malformed", "galley_model_inflight_requests{ 2\n", false, 0, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<ReplicaLoad> load = ReadReplicaLoad(c.body);
    ASSERT_EQ(load.ok(), c.ok) << load.status();
    if (!c.ok) continue;
    EXPECT_EQ(load->inflight, c.inflight);
    EXPECT_EQ(load->queued, c.queued);
    EXPECT_EQ(load->consumer_inflight, c.consumer_inflight);
  }
}

// The request counter, summed over the inference endpoints, every model and outcome (refusals are
// requests the replica was offered); declared without series it is a zero; not exposed, absent.
TEST(ReadReplicaLoadTest, RequestCounter) {
  absl::StatusOr<ReplicaLoad> load = ReadReplicaLoad(
      "galley_model_inflight_requests 1\n"
      "galley_requests_total{endpoint=\"infer\",model=\"m\",outcome=\"ok\"} 120\n"
      "galley_requests_total{endpoint=\"infer\",model=\"m\",outcome=\"queue_full\"} 30\n"
      "galley_requests_total{endpoint=\"analyze\",model=\"\",outcome=\"ok\"} 7\n"
      "galley_requests_total{endpoint=\"health_ready\",model=\"\",outcome=\"ok\"} 900\n"
      "galley_requests_total{endpoint=\"metrics\",model=\"\",outcome=\"ok\"} 80\n");
  ASSERT_TRUE(load.ok()) << load.status();
  EXPECT_EQ(load->requests_total, 157);  // probes and scrapes are not load
  load =
      ReadReplicaLoad("galley_model_inflight_requests 1\n# TYPE galley_requests_total counter\n");
  ASSERT_TRUE(load.ok()) << load.status();
  EXPECT_EQ(load->requests_total, 0);
  load = ReadReplicaLoad("galley_model_inflight_requests 1\n");
  ASSERT_TRUE(load.ok()) << load.status();
  EXPECT_FALSE(load->requests_total.has_value());
}

TEST(ScrapeMetricsSourceTest, EachReplicaScrapedOrMissing) {
  fleet::StaticReplicaSource replicas({{"ok", "127.0.0.1", 1, true},
                                       {"starting", "127.0.0.1", 2, false},
                                       {"http500", "127.0.0.1", 3, true},
                                       {"refused", "127.0.0.1", 4, true},
                                       {"timeout", "127.0.0.1", 5, true},
                                       {"silent", "127.0.0.1", 6, true},
                                       {"garbage", "127.0.0.1", 7, true}});
  FakeUpstream upstream;
  upstream.answers[1] = Ok(kServeMetrics);
  upstream.answers[2] = Ok("galley_model_inflight_requests 0\n");
  upstream.answers[3] = Ok("oops", http::Status::internal_server_error);
  upstream.answers[4] = TransportError(false);
  upstream.answers[5] = TransportError(true);
  upstream.answers[7] = Ok("not { metrics");
  ManualClock clock;
  ScrapeMetricsSource source(replicas, upstream, clock, {std::chrono::milliseconds(20)});

  absl::StatusOr<MetricsSnapshot> snap = source.Observe();
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->replicas.size(), 7u);
  for (const std::string& t : upstream.targets) EXPECT_EQ(t, "/metrics");
  const auto& r = snap->replicas;
  EXPECT_TRUE(r[0].scraped);
  EXPECT_EQ(r[0].inflight, 8);
  EXPECT_EQ(r[0].queued, 4);
  EXPECT_TRUE(r[0].ready);
  EXPECT_TRUE(r[1].scraped);
  EXPECT_FALSE(r[1].ready);
  EXPECT_FALSE(r[1].ready_time.has_value());
  EXPECT_EQ(r[0].start_time, snap->time);
  EXPECT_EQ(r[0].ready_time, snap->time);
  for (size_t i = 2; i < r.size(); ++i) {
    SCOPED_TRACE(r[i].id);
    EXPECT_FALSE(r[i].scraped);
    EXPECT_FALSE(r[i].error.empty());
    EXPECT_EQ(r[i].inflight, 0);
  }
  EXPECT_NE(r[2].error.find("HTTP 500"), std::string::npos) << r[2].error;
  EXPECT_NE(r[4].error.find("timed out"), std::string::npos) << r[4].error;
  EXPECT_NE(r[5].error.find("no answer"), std::string::npos) << r[5].error;
}

// A replica keeps its first-seen start time across scrapes and gets a ready time when it turns
// ready; a replica that leaves and comes back is new.
TEST(ScrapeMetricsSourceTest, RemembersStartAndReadyTimes) {
  struct Mutable final : fleet::ReplicaSource {
    std::vector<fleet::ReplicaEndpoint> list;
    std::vector<fleet::ReplicaEndpoint> Replicas() const override { return list; }
  } replicas;
  FakeUpstream upstream;
  upstream.answers[1] = Ok("galley_model_inflight_requests 1\n");
  ManualClock clock;
  ScrapeMetricsSource source(replicas, upstream, clock);
  replicas.list = {{"a", "127.0.0.1", 1, false}};
  const absl::Time t0 = source.Observe()->time;
  clock.Advance(std::chrono::seconds(2));
  replicas.list[0].ready = true;
  absl::StatusOr<MetricsSnapshot> s = source.Observe();
  EXPECT_EQ(s->replicas[0].start_time, t0);
  EXPECT_EQ(s->replicas[0].ready_time, t0 + absl::Seconds(2));
  replicas.list.clear();
  ASSERT_TRUE(source.Observe().ok());
  clock.Advance(std::chrono::seconds(1));
  replicas.list = {{"a", "127.0.0.1", 1, false}};
  s = source.Observe();
  EXPECT_EQ(s->replicas[0].start_time, t0 + absl::Seconds(3));
  EXPECT_FALSE(s->replicas[0].ready_time.has_value());
}

}  // namespace
}  // namespace galley::autoscale
