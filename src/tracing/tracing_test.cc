#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/json/parse.hpp"
#include "http/server.h"
#include "tracing/trace_context.h"
#include "tracing/tracer.h"

namespace galley::tracing {
namespace {

namespace json = boost::json;

TEST(TraceContextTest, ParsesAndFormatsTheSpecExample) {
  const std::string v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto c = ParseTraceparent(v);
  ASSERT_TRUE(c);
  EXPECT_EQ(Hex(c->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(Hex(c->span_id), "00f067aa0ba902b7");
  EXPECT_TRUE(c->sampled);
  EXPECT_EQ(FormatTraceparent(*c), v);
  auto unsampled = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(unsampled);
  EXPECT_FALSE(unsampled->sampled);
  // A later version is read by its first four fields.
  EXPECT_TRUE(ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"));
}

TEST(TraceContextTest, InvalidValuesAreRefused) {
  for (const char* v : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // v00 with more
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // bad separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
       }) {
    EXPECT_FALSE(ParseTraceparent(v)) << v;
  }
}

TEST(TraceContextTest, NewIdsAreNonZeroAndDistinct) {
  EXPECT_NE(NewTraceId(), NewTraceId());
  EXPECT_NE(NewSpanId(), SpanId{});
}

TEST(SpanTest, AChildContinuesItsParentsTraceAndSamplingDecision) {
  const TimePoint now = std::chrono::steady_clock::now();
  Span root = StartSpan("root", SpanKind::kServer, std::nullopt, now);
  EXPECT_EQ(root.parent, SpanId{});
  EXPECT_TRUE(root.sampled);
  Span child = StartSpan("child", SpanKind::kClient, root.Context(), now);
  EXPECT_EQ(child.trace_id, root.trace_id);
  EXPECT_EQ(child.parent, root.span_id);
  TraceContext off = root.Context();
  off.sampled = false;
  EXPECT_FALSE(StartSpan("x", SpanKind::kInternal, off, now).sampled);
  // Unix time: within a minute of the system clock.
  const int64_t sys = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_LT(std::llabs(root.start_ns - sys), int64_t{60'000'000'000});
}

TEST(OtlpJsonTest, EncodesTheExportRequest) {
  Span s =
      StartSpan("step safety", SpanKind::kClient, std::nullopt, std::chrono::steady_clock::now());
  s.parent = NewSpanId();
  s.end_ns = s.start_ns + 1500;
  s.Set("galley.model", std::string("safety"));
  s.Set("galley.rows", int64_t{3});
  s.Set("galley.ok", true);
  s.error = true;
  s.status_message = "no \"replica\"";
  const json::value doc = json::parse(EncodeOtlpJson({s}, "galley-gateway"));
  const auto& rs = doc.at("resourceSpans").at(0);
  EXPECT_EQ(rs.at("resource").at("attributes").at(0).at("value").at("stringValue"),
            "galley-gateway");
  const auto& span = rs.at("scopeSpans").at(0).at("spans").at(0);
  EXPECT_EQ(span.at("traceId").as_string(), Hex(s.trace_id));
  EXPECT_EQ(span.at("spanId").as_string(), Hex(s.span_id));
  EXPECT_EQ(span.at("parentSpanId").as_string(), Hex(s.parent));
  EXPECT_EQ(span.at("kind"), 3);
  EXPECT_EQ(span.at("endTimeUnixNano").as_string(), std::to_string(s.start_ns + 1500));
  EXPECT_EQ(span.at("attributes").at(1).at("value").at("intValue"), "3");
  EXPECT_EQ(span.at("attributes").at(2).at("value").at("boolValue"), true);
  EXPECT_EQ(span.at("status").at("code"), 2);
  EXPECT_EQ(span.at("status").at("message"), "no \"replica\"");
}

// A real HTTP server on loopback stands where the collector would: the tracer's exports arrive
// as OTLP/HTTP JSON POSTs to /v1/traces.
class Receiver {
 public:
  Receiver(int status = 200) {
    http::ServerOptions o;
    o.port = 0;
    o.io_threads = 1;
    auto s = http::Server::Create(o, [this, status](http::Request&& req, http::Responder respond) {
      {
        absl::MutexLock lock(&mu);
        targets.push_back(std::string(req.target()));
        bodies.push_back(req.body());
      }
      cv.SignalAll();
      respond(http::JsonResponse(static_cast<http::Status>(status), "{}"));
    });
    EXPECT_TRUE(s.ok()) << s.status();
    server = std::move(s).value();
    EXPECT_TRUE(server->Start().ok());
  }
  ~Receiver() { server->Stop(); }
  size_t Spans() {
    absl::MutexLock lock(&mu);
    size_t n = 0;
    for (const auto& b : bodies) {
      n += json::parse(b)
               .at("resourceSpans")
               .at(0)
               .at("scopeSpans")
               .at(0)
               .at("spans")
               .as_array()
               .size();
    }
    return n;
  }

  std::unique_ptr<http::Server> server;
  absl::Mutex mu;
  absl::CondVar cv;
  std::vector<std::string> targets ABSL_GUARDED_BY(mu), bodies ABSL_GUARDED_BY(mu);
};

TEST(TracerTest, ExportsBatchesToTheCollectorAndFlushWaitsForThem) {
  Receiver rx;
  auto tracer = Tracer::Create({.endpoint = "http://127.0.0.1:" + std::to_string(rx.server->port()),
                                .service_name = "galley-test",
                                .max_queue = 1000,
                                .max_batch = 4});
  ASSERT_TRUE(tracer.ok()) << tracer.status();
  for (int i = 0; i < 10; ++i) {
    Span s = StartSpan("s" + std::to_string(i), SpanKind::kInternal, std::nullopt,
                       std::chrono::steady_clock::now());
    s.end_ns = s.start_ns + 1;
    (*tracer)->Record(std::move(s));
  }
  Span unsampled =
      StartSpan("off", SpanKind::kInternal, TraceContext{NewTraceId(), NewSpanId(), false},
                std::chrono::steady_clock::now());
  (*tracer)->Record(std::move(unsampled));
  (*tracer)->Flush();
  EXPECT_EQ((*tracer)->exported(), 10u);
  EXPECT_EQ(rx.Spans(), 10u);
  absl::MutexLock lock(&rx.mu);
  EXPECT_GE(rx.bodies.size(), 3u);  // batches of at most 4
  EXPECT_EQ(rx.targets[0], "/v1/traces");
}

TEST(TracerTest, AFullQueueDropsAndAFailingCollectorIsCounted) {
  Receiver rx(503);
  auto tracer = Tracer::Create(
      {.endpoint = "http://127.0.0.1:" + std::to_string(rx.server->port()) + "/otlp/",
       .max_queue = 2,
       .max_batch = 100,
       .flush_interval = std::chrono::hours(1)});
  ASSERT_TRUE(tracer.ok());
  for (int i = 0; i < 5; ++i) {
    (*tracer)->Record(
        StartSpan("s", SpanKind::kInternal, std::nullopt, std::chrono::steady_clock::now()));
  }
  EXPECT_EQ((*tracer)->dropped(), 3u);
  (*tracer)->Flush();
  EXPECT_EQ((*tracer)->exported(), 0u);
  EXPECT_EQ((*tracer)->failed(), 1u);
  absl::MutexLock lock(&rx.mu);
  EXPECT_EQ(rx.targets.at(0), "/otlp/v1/traces");
}

TEST(TracerTest, BadEndpointsAreClearErrors) {
  for (const char* e : {"127.0.0.1:4318", "https://x:1", "http://nohost", "http://:4318",
                        "http://h:0", "http://h:99999"}) {
    auto t = Tracer::Create({.endpoint = e});
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << e;
  }
}

}  // namespace
}  // namespace galley::tracing
