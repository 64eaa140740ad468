#include "queue/queue_message.h"

#include "gtest/gtest.h"
#include "inference/model_metrics.h"
#include "inference/model_service.h"
#include "metrics/registry.h"
#include "model/vader_backend.h"

namespace galley::queue {
namespace {

using inference::Outcome;

class QueueMessageTest : public ::testing::Test {
 protected:
  QueueMessageTest() {
    std::vector<std::unique_ptr<model::Backend>> v;
    v.push_back(std::make_unique<model::VaderBackend>("vader", 8));
    service_.AddModel(std::make_unique<inference::ModelRunner>(
        std::move(v), inference::RunnerOptions{}, clock_, &model_metrics_));
    options_.results_stream = "jobs:results";
  }

  absl::StatusOr<QueueRequest> Parse(StreamEntry e) {
    return ParseMessage(e, service_, options_, kNowMs, now_);
  }

  static constexpr int64_t kNowMs = 1'800'000'000'000;
  ManualClock clock_{TimePoint{} + std::chrono::hours(1)};
  metrics::Registry registry_;
  inference::ModelMetrics model_metrics_{registry_};
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
  inference::ModelService service_;
  MessageOptions options_;
};

TEST_F(QueueMessageTest, AnalyzeBodyBecomesATextRequestForTheDefaultModel) {
  auto q = Parse({"5-0", {{"body", R"({"text":"great food"})"}}});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_TRUE(q->analyze);
  EXPECT_EQ(q->request.model, "vader");
  EXPECT_EQ(q->key, "5-0");  // no id field: the entry id keys the result
  EXPECT_EQ(q->reply, "jobs:results");
  ASSERT_EQ(q->request.input.inputs.size(), 1u);
  EXPECT_EQ(q->request.input.inputs[0].bytes.at(0), "great food");
  EXPECT_EQ(q->request.deadline, TimePoint::max());
}

TEST_F(QueueMessageTest, IdReplyModelAndDeadlineFieldsAreHonoured) {
  auto q = Parse({"5-0",
                  {{"id", "job-7"},
                   {"reply", "mine"},
                   {"model", "vader"},
                   {"deadline_ms", std::to_string(kNowMs + 2500)},
                   {"body", R"({"text":"ok"})"}}});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->key, "job-7");
  EXPECT_EQ(q->reply, "mine");
  EXPECT_EQ(q->request.deadline, now_ + std::chrono::milliseconds(2500));
}

TEST_F(QueueMessageTest, TraceContextAndEnqueueTimeAreReadForTraces) {
  auto q = Parse({"1799999999000-3",
                  {{"body", R"({"text":"ok"})"},
                   {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}});
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_TRUE(q->trace);
  EXPECT_EQ(tracing::Hex(q->trace->span_id), "00f067aa0ba902b7");
  EXPECT_EQ(q->enqueued_ms, 1'799'999'999'000);  // the entry id's time
  // An explicit enqueue time wins; an invalid trace context is no context (a new trace), and
  // neither makes the message fail.
  q = Parse(
      {"job-1", {{"body", R"({"text":"ok"})"}, {"traceparent", "garbage"}, {"enqueued_ms", "42"}}});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_FALSE(q->trace);
  EXPECT_EQ(q->enqueued_ms, 42);
  q = Parse({"job-1", {{"body", R"({"text":"ok"})"}, {"enqueued_ms", "soon"}}});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->enqueued_ms, 0);
}

TEST_F(QueueMessageTest, InferenceProtocolBodyIsDecodedAgainstTheModel) {
  auto q = Parse(
      {"5-0",
       {{"body",
         R"({"id":"r1","inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["nice"]}]})"}}});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_FALSE(q->analyze);
  EXPECT_EQ(q->oip_id, "r1");
  EXPECT_EQ(q->request.input.inputs.at(0).bytes.at(0), "nice");
}

struct BadCase {
  const char* name;
  StreamEntry entry;
  absl::StatusCode code;
  const char* says;
};

TEST_F(QueueMessageTest, BadMessagesAreRefusedWithTheirReason) {
  const std::string big(options_.max_body_bytes + 1, 'x');
  const std::vector<BadCase> cases = {
      {"no body", {"1-0", {{"model", "vader"}}}, absl::StatusCode::kInvalidArgument, "no 'body'"},
      {"not JSON", {"1-0", {{"body", "{not json"}}}, absl::StatusCode::kInvalidArgument, ""},
      {"unknown model",
       {"1-0", {{"model", "nope"}, {"body", R"({"text":"a"})"}}},
       absl::StatusCode::kInvalidArgument,
       "unknown model 'nope'"},
      {"too large", {"1-0", {{"body", big}}}, absl::StatusCode::kInvalidArgument, "over the limit"},
      {"past deadline",
       {"1-0", {{"deadline_ms", std::to_string(kNowMs - 10)}, {"body", R"({"text":"a"})"}}},
       absl::StatusCode::kDeadlineExceeded,
       "deadline passed 10 ms"},
      {"bad deadline",
       {"1-0", {{"deadline_ms", "soon"}, {"body", R"({"text":"a"})"}}},
       absl::StatusCode::kInvalidArgument,
       "deadline_ms 'soon'"},
      {"bad tensor",
       {"1-0",
        {{"body", R"({"inputs":[{"name":"text","datatype":"FP32","shape":[1],"data":[1]}]})"}}},
       absl::StatusCode::kInvalidArgument,
       ""},
  };
  for (const BadCase& c : cases) {
    auto q = Parse(c.entry);
    ASSERT_FALSE(q.ok()) << c.name;
    EXPECT_EQ(q.status().code(), c.code) << c.name << ": " << q.status();
    EXPECT_NE(q.status().message().find(c.says), std::string::npos) << c.name << ": " << q.status();
    EXPECT_FALSE(q.status().message().empty()) << c.name;
  }
}

TEST(EntryMillisTest, ReadsTheTimePartOfAnEntryId) {
  EXPECT_EQ(EntryMillis("1733300000000-3"), 1733300000000);
  EXPECT_EQ(EntryMillis("42"), 42);
  EXPECT_EQ(EntryMillis("x-1"), std::nullopt);
  EXPECT_EQ(EntryMillis(""), std::nullopt);
}

TEST(DispositionTest, OnlyHopelessOutcomesAreDeadLetteredAndOnlyOkWritesAResult) {
  EXPECT_EQ(DispositionFor(Outcome::kOk), Disposition::kResult);
  EXPECT_EQ(DispositionFor(Outcome::kInvalidInput), Disposition::kDeadLetter);
  EXPECT_EQ(DispositionFor(Outcome::kModelNotFound), Disposition::kDeadLetter);
  EXPECT_EQ(DispositionFor(Outcome::kDeadlineExceeded), Disposition::kDeadLetter);
  EXPECT_EQ(DispositionFor(Outcome::kQueueFull), Disposition::kResubmit);
  EXPECT_EQ(DispositionFor(Outcome::kModelNotReady), Disposition::kRelease);
  EXPECT_EQ(DispositionFor(Outcome::kShuttingDown), Disposition::kRelease);
  EXPECT_EQ(DispositionFor(Outcome::kInternal), Disposition::kRelease);
}

}  // namespace
}  // namespace galley::queue
