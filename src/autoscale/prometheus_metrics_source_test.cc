#include "autoscale/prometheus_metrics_source.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <map>

#include "gtest/gtest.h"
#include "upstream/http_upstream.h"

namespace galley::autoscale {
namespace {

// An /api/v1/query success document with one series per (instance, value) pair, shaped as the
// HTTP API documents it (values are strings, the time is a number).
std::string Vector(const std::vector<std::pair<std::string, std::string>>& series) {
  std::string out = R"({"status":"success","data":{"resultType":"vector","result":[)";
  for (size_t i = 0; i < series.size(); ++i) {
    if (i) out += ",";
    out += R"({"metric":{"instance":")" + series[i].first +
           R"(","job":"galley"},"value":[1700000000.123,")" + series[i].second + R"("]})";
  }
  return out + "]}}";
}

TEST(ParseInstantVectorTest, Table) {
  struct Case {
    std::string name;
    std::string body;
    absl::StatusCode code;
    std::string message;  // a part of the error message
  };
  const std::vector<Case> cases = {
      {"empty result", Vector({}), absl::StatusCode::kOk, ""},
      {"error document",
       R"({"status":"error","errorType":"bad_data","error":"parse error at char 4"})",
       absl::StatusCode::kUnavailable, "bad_data): parse error at char 4"},
      {"not JSON", "<html>502 Bad Gateway</html>", absl::StatusCode::kInvalidArgument, "not JSON"},
      {"not an object", "[1,2]", absl::StatusCode::kInvalidArgument, "not a JSON object"},
      {"no status", R"({"data":{}})", absl::StatusCode::kInvalidArgument, "\"status\""},
      {"no data", R"({"status":"success"})", absl::StatusCode::kInvalidArgument, "\"data\""},
      {"matrix", R"({"status":"success","data":{"resultType":"matrix","result":[]}})",
       absl::StatusCode::kInvalidArgument, "'matrix', not 'vector'"},
      {"result not an array", R"({"status":"success","data":{"resultType":"vector","result":{}}})",
       absl::StatusCode::kInvalidArgument, "data.result"},
      {"no instance label",
       R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2"]}]}})",
       absl::StatusCode::kInvalidArgument, "data.result[0] has no \"instance\" label"},
      {"value is a number, not a string",
       R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a:1"},"value":[1,2]}]}})",
       absl::StatusCode::kInvalidArgument, "is not [<time>, \"<number>\"]"},
      {"value of one element",
       R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a:1"},"value":["2"]}]}})",
       absl::StatusCode::kInvalidArgument, "is not [<time>"},
      {"value not a number", Vector({{"a:1", "two"}}), absl::StatusCode::kInvalidArgument,
       "'two' is not a number"},
      {"duplicate instance", Vector({{"a:1", "1"}, {"a:1", "2"}}),
       absl::StatusCode::kInvalidArgument, "a second series for instance 'a:1'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<std::map<std::string, double>> v = ParseInstantVector(c.body);
    EXPECT_EQ(v.status().code(), c.code) << v.status();
    if (!v.ok()) {
      EXPECT_NE(std::string(v.status().message()).find(c.message), std::string::npos) << v.status();
    } else {
      EXPECT_TRUE(v->empty());
    }
  }
}

TEST(ParseInstantVectorTest, Values) {
  absl::StatusOr<std::map<std::string, double>> v =
      ParseInstantVector(Vector({{"127.0.0.1:1", "7"},
                                 {"127.0.0.1:2", "0.25"},
                                 {"127.0.0.1:3", "NaN"},
                                 {"127.0.0.1:4", "+Inf"},
                                 {"127.0.0.1:5", "-Inf"},
                                 {"127.0.0.1:6", "1e3"}}));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->at("127.0.0.1:1"), 7);
  EXPECT_EQ(v->at("127.0.0.1:2"), 0.25);
  EXPECT_TRUE(std::isnan(v->at("127.0.0.1:3")));
  EXPECT_EQ(v->at("127.0.0.1:4"), INFINITY);
  EXPECT_EQ(v->at("127.0.0.1:5"), -INFINITY);
  EXPECT_EQ(v->at("127.0.0.1:6"), 1000);
}

TEST(MapPrometheusAnswersTest, EachReplicaObservedOrMissingWithAReason) {
  const std::vector<fleet::ReplicaEndpoint> replicas = {
      {"ok", "127.0.0.1", 1, true},           {"starting", "127.0.0.1", 2, false},
      {"not-a-target", "127.0.0.1", 3, true}, {"down", "127.0.0.1", 4, true},
      {"stale", "127.0.0.1", 5, true},        {"nan", "127.0.0.1", 6, true},
      {"no-age", "127.0.0.1", 7, true},       {"v6", "::1", 8, true}};
  PrometheusAnswers a;
  // Prometheus also scrapes other things (itself here): they match no replica.
  a.inflight = Vector({{"127.0.0.1:1", "7"},
                       {"127.0.0.1:2", "0"},
                       {"127.0.0.1:5", "3"},
                       {"127.0.0.1:6", "NaN"},
                       {"127.0.0.1:7", "1"},
                       {"[::1]:8", "2"},
                       {"127.0.0.1:9090", "99"}});
  a.queued = Vector({{"127.0.0.1:1", "3"}, {"127.0.0.1:5", "1"}});
  a.age = Vector({{"127.0.0.1:1", "0.8"},
                  {"127.0.0.1:2", "0"},
                  {"127.0.0.1:5", "31.5"},
                  {"127.0.0.1:6", "1"},
                  {"[::1]:8", "2"}});
  a.up = Vector({{"127.0.0.1:1", "1"},
                 {"127.0.0.1:2", "1"},
                 {"127.0.0.1:4", "0"},
                 {"127.0.0.1:5", "1"},
                 {"127.0.0.1:6", "1"},
                 {"127.0.0.1:7", "1"},
                 {"[::1]:8", "1"}});
  absl::StatusOr<std::vector<ReplicaObservation>> obs =
      MapPrometheusAnswers(a, replicas, absl::Seconds(30));
  ASSERT_TRUE(obs.ok()) << obs.status();
  ASSERT_EQ(obs->size(), replicas.size());
  const auto& r = *obs;
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].id, replicas[i].id);
    EXPECT_EQ(r[i].ready, replicas[i].ready);
    EXPECT_FALSE(r[i].start_time.has_value());
  }
  EXPECT_TRUE(r[0].scraped);
  EXPECT_EQ(r[0].inflight, 7);
  EXPECT_EQ(r[0].queued, 3);
  EXPECT_TRUE(r[1].scraped) << r[1].error;  // no queue series: 0
  EXPECT_EQ(r[1].inflight, 0);
  EXPECT_EQ(r[1].queued, 0);
  EXPECT_TRUE(r[7].scraped) << r[7].error;
  EXPECT_EQ(r[7].inflight, 2);
  const std::map<size_t, std::string> reasons = {
      {2, "127.0.0.1:3 is not in Prometheus' answer"},
      {3, "last scrape of 127.0.0.1:4 failed (up == 0)"},
      {4, "127.0.0.1:5 is 31.5 s old (stale after 30.0 s)"},
      {5, "non-finite"},
      {6, "no sample time"}};
  for (const auto& [i, reason] : reasons) {
    SCOPED_TRACE(r[i].id);
    EXPECT_FALSE(r[i].scraped);
    EXPECT_EQ(r[i].inflight, 0);
    EXPECT_EQ(r[i].queued, 0);
    EXPECT_NE(r[i].error.find(reason), std::string::npos) << r[i].error;
  }
}

TEST(MapPrometheusAnswersTest, EmptyResultsMeanEveryReplicaIsMissing) {
  PrometheusAnswers a{Vector({}), Vector({}), Vector({}), Vector({})};
  absl::StatusOr<std::vector<ReplicaObservation>> obs =
      MapPrometheusAnswers(a, {{"r", "127.0.0.1", 1, true}}, absl::Seconds(30));
  ASSERT_TRUE(obs.ok()) << obs.status();
  ASSERT_EQ(obs->size(), 1u);
  EXPECT_FALSE((*obs)[0].scraped);
  EXPECT_NE((*obs)[0].error.find("not in Prometheus' answer"), std::string::npos);
  // No replicas: nothing to map, whatever Prometheus has.
  a.inflight = Vector({{"127.0.0.1:1", "3"}});
  obs = MapPrometheusAnswers(a, {}, absl::Seconds(30));
  ASSERT_TRUE(obs.ok());
  EXPECT_TRUE(obs->empty());
}

TEST(MapPrometheusAnswersTest, ABadAnswerFailsTheWholeMappingAndNamesTheQuery) {
  PrometheusAnswers a{Vector({}), Vector({}), "{", Vector({})};
  absl::StatusOr<std::vector<ReplicaObservation>> obs =
      MapPrometheusAnswers(a, {{"r", "127.0.0.1", 1, true}}, absl::Seconds(30));
  ASSERT_EQ(obs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(obs.status().message()).find(kPromAgeQuery), std::string::npos)
      << obs.status();
  a.age = R"({"status":"error","errorType":"timeout","error":"query timed out"})";
  obs = MapPrometheusAnswers(a, {}, absl::Seconds(30));
  EXPECT_EQ(obs.status().code(), absl::StatusCode::kUnavailable);
}

TEST(ParsePrometheusUrlTest, Table) {
  struct Case {
    std::string url;
    bool ok;
    std::string host;
    uint16_t port;
    std::string prefix;
  };
  const std::vector<Case> cases = {
      {"http://127.0.0.1:9090", true, "127.0.0.1", 9090, ""},
      {"http://127.0.0.1:9090/", true, "127.0.0.1", 9090, ""},
      {"http://localhost:9090/prom/", true, "127.0.0.1", 9090, "/prom"},
      {"http://10.0.0.1", true, "10.0.0.1", 80, ""},
      {"http://[::1]:9091", true, "::1", 9091, ""},
      {"https://127.0.0.1:9090", false, "", 0, ""},
      {"127.0.0.1:9090", false, "", 0, ""},
      {"http://prometheus:9090", false, "", 0, ""},
      {"http://127.0.0.1:0", false, "", 0, ""},
      {"http://127.0.0.1:99999", false, "", 0, ""},
      {"http://127.0.0.1:90x", false, "", 0, ""},
      {"http://127.0.0.1:", false, "", 0, ""},
      {"http://127.0.0.1:9090/?q=1", false, "", 0, ""},
      {"http://[::1:9090", false, "", 0, ""},
      {"http://", false, "", 0, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.url);
    absl::StatusOr<PrometheusEndpoint> ep = ParsePrometheusUrl(c.url);
    ASSERT_EQ(ep.ok(), c.ok) << ep.status();
    if (!c.ok) {
      EXPECT_EQ(ep.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(std::string(ep.status().message()).find(c.url), std::string::npos);
      continue;
    }
    EXPECT_EQ(ep->host, c.host);
    EXPECT_EQ(ep->port, c.port);
    EXPECT_EQ(ep->path_prefix, c.prefix);
  }
}

TEST(PrometheusQueryTargetTest, PercentEncodesTheQuery) {
  EXPECT_EQ(PrometheusQueryTarget("", "sum by (instance) (up)"),
            "/api/v1/query?query=sum%20by%20%28instance%29%20%28up%29");
  EXPECT_EQ(PrometheusQueryTarget("/p", "a{b=\"c\"}+1"),
            "/p/api/v1/query?query=a%7Bb%3D%22c%22%7D%2B1");
  EXPECT_EQ(PrometheusQueryTarget("/p", "a_b-c.d~"), "/p/api/v1/query?query=a_b-c.d~");
}

// Answers each query (by its request target) with a scripted result at once; a query with no
// script never answers.
class FakeUpstream final : public upstream::Upstream {
 public:
  std::map<std::string, upstream::UpstreamResult> answers;  // by query text
  std::vector<std::string> targets;

  void Send(const std::string& host, uint16_t port, http::Request request, TimePoint deadline,
            upstream::UpstreamCallback done) override {
    targets.push_back(std::string(request.target()));
    for (const auto& [query, result] : answers) {
      if (request.target() == PrometheusQueryTarget("", query)) {
        upstream::UpstreamResult r = result;
        done(std::move(r));
        return;
      }
    }
  }
};

upstream::UpstreamResult Ok(std::string body, http::Status status = http::Status::ok) {
  upstream::UpstreamResult r;
  r.response.result(status);
  r.response.body() = std::move(body);
  return r;
}

struct MutableReplicas final : fleet::ReplicaSource {
  std::vector<fleet::ReplicaEndpoint> list;
  std::vector<fleet::ReplicaEndpoint> Replicas() const override { return list; }
};

TEST(PrometheusMetricsSourceTest, ObservesAndRemembersStartAndReadyTimes) {
  MutableReplicas replicas;
  replicas.list = {{"a", "127.0.0.1", 1, false}};
  FakeUpstream upstream;
  upstream.answers[std::string(kPromInflightQuery)] = Ok(Vector({{"127.0.0.1:1", "4"}}));
  upstream.answers[std::string(kPromQueueQuery)] = Ok(Vector({{"127.0.0.1:1", "1"}}));
  upstream.answers[std::string(kPromAgeQuery)] = Ok(Vector({{"127.0.0.1:1", "0.5"}}));
  upstream.answers[std::string(kPromUpQuery)] = Ok(Vector({{"127.0.0.1:1", "1"}}));
  ManualClock clock;
  auto source = PrometheusMetricsSource::Create(
      replicas, upstream, clock, {"http://127.0.0.1:9090", std::chrono::milliseconds(50)});
  ASSERT_TRUE(source.ok()) << source.status();
  absl::StatusOr<MetricsSnapshot> s = (*source)->Observe();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(upstream.targets.size(), 4u);
  ASSERT_EQ(s->replicas.size(), 1u);
  EXPECT_TRUE(s->replicas[0].scraped);
  EXPECT_EQ(s->replicas[0].inflight, 4);
  EXPECT_EQ(s->replicas[0].queued, 1);
  const absl::Time t0 = s->time;
  EXPECT_EQ(s->replicas[0].start_time, t0);
  EXPECT_FALSE(s->replicas[0].ready_time.has_value());
  clock.Advance(std::chrono::seconds(2));
  replicas.list[0].ready = true;
  s = (*source)->Observe();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->replicas[0].start_time, t0);
  EXPECT_EQ(s->replicas[0].ready_time, t0 + absl::Seconds(2));
}

TEST(PrometheusMetricsSourceTest, AnyFailedQueryMakesTheWholeObserveUnavailable) {
  MutableReplicas replicas;
  replicas.list = {{"a", "127.0.0.1", 1, true}};
  ManualClock clock;
  struct Case {
    std::string name;
    std::optional<upstream::UpstreamResult> up_answer;  // nullopt: never answers
    std::string message;
  };
  upstream::UpstreamResult refused;
  refused.transport_error = true;
  refused.error = "connection refused";
  const std::vector<Case> cases = {
      {"never answers", std::nullopt, "no answer within the timeout"},
      {"refused", refused, "connection refused"},
      {"HTTP 503 with an error document",
       Ok(R"({"status":"error","errorType":"timeout","error":"query timed out"})",
          http::Status::service_unavailable),
       "HTTP 503: Prometheus answered an error (timeout): query timed out"},
      {"HTTP 200, not JSON", Ok("<html>"), "not JSON"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeUpstream upstream;
    upstream.answers[std::string(kPromInflightQuery)] = Ok(Vector({{"127.0.0.1:1", "4"}}));
    upstream.answers[std::string(kPromQueueQuery)] = Ok(Vector({}));
    upstream.answers[std::string(kPromAgeQuery)] = Ok(Vector({{"127.0.0.1:1", "0.5"}}));
    if (c.up_answer) upstream.answers[std::string(kPromUpQuery)] = *c.up_answer;
    auto source = PrometheusMetricsSource::Create(
        replicas, upstream, clock, {"http://127.0.0.1:9090", std::chrono::milliseconds(20)});
    ASSERT_TRUE(source.ok());
    absl::StatusOr<MetricsSnapshot> s = (*source)->Observe();
    ASSERT_EQ(s.status().code(), absl::StatusCode::kUnavailable) << s.status();
    EXPECT_NE(std::string(s.status().message()).find(c.message), std::string::npos) << s.status();
    EXPECT_NE(std::string(s.status().message()).find("http://127.0.0.1:9090"), std::string::npos);
  }
}

// The real HTTP client against a loopback port where nothing listens: Unavailable, at once.
TEST(PrometheusMetricsSourceTest, NothingListeningIsUnavailable) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  ::close(fd);  // bound, never listened: connections to it are refused

  MutableReplicas replicas;
  replicas.list = {{"a", "127.0.0.1", 1, true}};
  upstream::HttpUpstream upstream;
  auto source = PrometheusMetricsSource::Create(
      replicas, upstream, SteadyClock::Get(),
      {"http://127.0.0.1:" + std::to_string(port), std::chrono::milliseconds(2'000)});
  ASSERT_TRUE(source.ok());
  absl::StatusOr<MetricsSnapshot> s = (*source)->Observe();
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable) << s.status();
  upstream.Shutdown();
}

TEST(PrometheusMetricsSourceTest, CreateRefusesABadUrl) {
  MutableReplicas replicas;
  FakeUpstream upstream;
  ManualClock clock;
  auto source = PrometheusMetricsSource::Create(replicas, upstream, clock, {"prometheus:9090"});
  EXPECT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace galley::autoscale
