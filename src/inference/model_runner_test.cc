#include "inference/model_runner.h"

#include <future>

#include "common/thread_name.h"
#include "gtest/gtest.h"
#include "model/testing/fake_backend.h"

namespace galley::inference {
namespace {

using model::testing::FakeBackend;

InferRequest Req(float x, TimePoint deadline = TimePoint::max()) {
  InferRequest r;
  r.model = "fake";
  model::Tensor t{"x", model::DataType::kFp32, {1}, {}, {}};
  t.Append<float>(x);
  r.input.inputs.push_back(std::move(t));
  r.deadline = deadline;
  return r;
}

class ModelRunnerTest : public ::testing::Test {
 protected:
  std::unique_ptr<ModelRunner> Make(size_t capacity, int max_batch, BatchPolicy policy = {}) {
    auto backend = std::make_unique<FakeBackend>("fake", max_batch);
    fake_ = backend.get();
    std::vector<std::unique_ptr<model::Backend>> v;
    v.push_back(std::move(backend));
    RunnerOptions o;
    o.queue_capacity = capacity;
    o.batch = std::move(policy);
    o.batch.max_batch_size = max_batch;
    return std::make_unique<ModelRunner>(std::move(v), o, clock_, &metrics_);
  }

  metrics::Registry registry_;
  ModelMetrics metrics_{registry_};
  ManualClock clock_{TimePoint{} + std::chrono::seconds(100)};
  FakeBackend* fake_ = nullptr;
};

TEST_F(ModelRunnerTest, RunsAndAnswersInOrder) {
  auto runner = Make(16, 8);
  ASSERT_TRUE(runner->Load({}).ok());
  ASSERT_TRUE(runner->ready());
  fake_->Block();
  runner->Start();
  // The first request occupies the worker; the next five queue up and form one batch.
  std::vector<std::promise<InferResult>> results(6);
  for (int i = 0; i < 6; ++i) {
    runner->Submit(Req(static_cast<float>(i)),
                   [&results, i](InferResult&& r) { results[i].set_value(std::move(r)); });
    if (i == 0) fake_->WaitEntered(1);
  }
  EXPECT_EQ(runner->inflight(), 6);
  fake_->Unblock();
  for (int i = 0; i < 6; ++i) {
    InferResult r = results[i].get_future().get();
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.message;
    EXPECT_FLOAT_EQ(r.output.outputs[0].At<float>(0), 2.0f * i);
  }
  runner->Stop();
  EXPECT_EQ(fake_->batch_sizes(), (std::vector<size_t>{1, 5}));
  EXPECT_EQ(runner->inflight(), 0);
}

// Submits requests with the given inputs; returns their futures.
std::vector<std::future<InferResult>> SubmitAll(ModelRunner& runner, const std::vector<float>& xs) {
  std::vector<std::future<InferResult>> out;
  for (float x : xs) {
    auto p = std::make_shared<std::promise<InferResult>>();
    out.push_back(p->get_future());
    runner.Submit(Req(x), [p](InferResult&& r) { p->set_value(std::move(r)); });
  }
  return out;
}

TEST_F(ModelRunnerTest, WorkersAreNamedAfterTheModelAndInstance) {
  auto runner = Make(4, 4);
  ASSERT_TRUE(runner->Load({}).ok());
  runner->Start();
  // Answers are given on the worker that ran the batch.
  std::promise<std::string> name;
  runner->Submit(Req(1.0f), [&name](InferResult&&) { name.set_value(ThreadName()); });
  EXPECT_EQ(name.get_future().get(), "fake/0");
  runner->Stop();
}

TEST_F(ModelRunnerTest, PreferredSizeIsSentWithoutWaitingForTheDelay) {
  BatchPolicy policy;
  policy.preferred_batch_sizes = {4};
  policy.max_queue_delay = std::chrono::hours(1);  // the manual clock never gets there
  auto runner = Make(16, 8, policy);
  ASSERT_TRUE(runner->Load({}).ok());
  runner->Start();
  auto results = SubmitAll(*runner, {1, 2, 3, 4});
  for (auto& f : results) EXPECT_EQ(f.get().outcome, Outcome::kOk);
  runner->Stop();
  EXPECT_EQ(fake_->batch_sizes(), (std::vector<size_t>{4}));
}

TEST_F(ModelRunnerTest, QueueDelayHoldsASmallBatchUntilItExpires) {
  BatchPolicy policy;
  policy.preferred_batch_sizes = {4};
  policy.max_queue_delay = std::chrono::milliseconds(20);
  auto runner = Make(16, 8, policy);
  ASSERT_TRUE(runner->Load({}).ok());
  runner->Start();
  auto results = SubmitAll(*runner, {1, 2});
  // Both wait for company until the oldest has waited 20 ms on the runner's clock.
  clock_.Advance(std::chrono::milliseconds(20));
  for (auto& f : results) EXPECT_EQ(f.get().outcome, Outcome::kOk);
  runner->Stop();
  EXPECT_EQ(fake_->batch_sizes(), (std::vector<size_t>{2}));
}

TEST_F(ModelRunnerTest, LengthBucketsKeepSimilarLengthsTogether) {
  BatchPolicy policy;
  policy.length_buckets = {8, 16, 32};
  auto runner = Make(16, 8, policy);
  fake_->set_length_from_input(true);
  ASSERT_TRUE(runner->Load({}).ok());
  fake_->Block();
  runner->Start();
  auto first = SubmitAll(*runner, {1});
  fake_->WaitEntered(1);
  auto rest = SubmitAll(*runner, {5, 30, 6, 31});
  fake_->Unblock();
  EXPECT_EQ(first[0].get().outcome, Outcome::kOk);
  const std::vector<float> xs = {5, 30, 6, 31};
  for (size_t i = 0; i < rest.size(); ++i) {
    InferResult r = rest[i].get();
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.message;
    EXPECT_FLOAT_EQ(r.output.outputs[0].At<float>(0), 2 * xs[i]);  // each got its own answer
  }
  runner->Stop();
  EXPECT_EQ(fake_->batch_sizes(), (std::vector<size_t>{1, 2, 2}));
}

TEST_F(ModelRunnerTest, FullQueueRejectsAtOnce) {
  auto runner = Make(2, 8);
  ASSERT_TRUE(runner->Load({}).ok());
  fake_->Block();
  runner->Start();
  std::vector<std::promise<InferResult>> results(4);
  runner->Submit(Req(0), [&](InferResult&& r) { results[0].set_value(std::move(r)); });
  fake_->WaitEntered(1);
  for (int i = 1; i < 4; ++i) {
    runner->Submit(Req(1), [&results, i](InferResult&& r) { results[i].set_value(std::move(r)); });
  }
  // Two fit in the queue; the fourth was answered synchronously with kQueueFull.
  auto f3 = results[3].get_future();
  ASSERT_EQ(f3.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  InferResult full = f3.get();
  EXPECT_EQ(full.outcome, Outcome::kQueueFull);
  EXPECT_NE(full.message.find("queue is full"), std::string::npos);
  fake_->Unblock();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(results[i].get_future().get().outcome, Outcome::kOk);
  runner->Stop();
}

TEST_F(ModelRunnerTest, ExpiredRequestsAreNeverRun) {
  auto runner = Make(16, 8);
  ASSERT_TRUE(runner->Load({}).ok());
  fake_->Block();
  runner->Start();
  std::promise<InferResult> first, expiring, live;
  runner->Submit(Req(0), [&](InferResult&& r) { first.set_value(std::move(r)); });
  fake_->WaitEntered(1);
  const TimePoint deadline = clock_.Now() + std::chrono::milliseconds(10);
  runner->Submit(Req(-1, deadline), [&](InferResult&& r) { expiring.set_value(std::move(r)); });
  runner->Submit(Req(3), [&](InferResult&& r) { live.set_value(std::move(r)); });
  clock_.Advance(std::chrono::milliseconds(10));  // the deadline passes while it waits
  fake_->Unblock();
  EXPECT_EQ(first.get_future().get().outcome, Outcome::kOk);
  InferResult e = expiring.get_future().get();
  EXPECT_EQ(e.outcome, Outcome::kDeadlineExceeded);
  EXPECT_EQ(live.get_future().get().outcome, Outcome::kOk);
  runner->Stop();
  // The expiring request (input -1 would have failed) never reached the backend.
  EXPECT_EQ(fake_->batch_sizes(), (std::vector<size_t>{1, 1}));
}

TEST_F(ModelRunnerTest, PerRequestErrorFailsOnlyThatRequest) {
  auto runner = Make(16, 8);
  ASSERT_TRUE(runner->Load({}).ok());
  fake_->Block();
  runner->Start();
  std::promise<InferResult> a, bad, c;
  runner->Submit(Req(1), [&](InferResult&& r) { a.set_value(std::move(r)); });
  fake_->WaitEntered(1);
  runner->Submit(Req(-5), [&](InferResult&& r) { bad.set_value(std::move(r)); });
  runner->Submit(Req(2), [&](InferResult&& r) { c.set_value(std::move(r)); });
  fake_->Unblock();
  EXPECT_EQ(a.get_future().get().outcome, Outcome::kOk);
  InferResult b = bad.get_future().get();
  EXPECT_EQ(b.outcome, Outcome::kInvalidInput);
  EXPECT_EQ(b.message, "negative input");
  EXPECT_EQ(c.get_future().get().outcome, Outcome::kOk);
  runner->Stop();
}

TEST_F(ModelRunnerTest, StopFinishesAcceptedWorkThenRefuses) {
  auto runner = Make(16, 8);
  ASSERT_TRUE(runner->Load({}).ok());
  fake_->Block();
  runner->Start();
  std::vector<std::promise<InferResult>> results(3);
  for (int i = 0; i < 3; ++i) {
    runner->Submit(Req(1), [&results, i](InferResult&& r) { results[i].set_value(std::move(r)); });
    if (i == 0) fake_->WaitEntered(1);
  }
  std::thread stopper([&] { runner->Stop(); });
  fake_->Unblock();
  stopper.join();
  for (auto& p : results) EXPECT_EQ(p.get_future().get().outcome, Outcome::kOk);
  std::promise<InferResult> late;
  runner->Submit(Req(1), [&](InferResult&& r) { late.set_value(std::move(r)); });
  EXPECT_EQ(late.get_future().get().outcome, Outcome::kShuttingDown);
  EXPECT_FALSE(runner->ready());
}

TEST_F(ModelRunnerTest, LoadFailureIsReportedAndNotReady) {
  auto runner = Make(16, 8);
  fake_->set_load_status(absl::NotFoundError("weights missing"));
  absl::Status st = runner->Load({});
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(st.message().find("weights missing"), std::string_view::npos);
  EXPECT_FALSE(runner->ready());
}

TEST_F(ModelRunnerTest, MetricsCountExecutionsAndInferences) {
  auto runner = Make(16, 8);
  ASSERT_TRUE(runner->Load({}).ok());
  runner->Start();
  std::promise<InferResult> p;
  runner->Submit(Req(1), [&](InferResult&& r) { p.set_value(std::move(r)); });
  ASSERT_EQ(p.get_future().get().outcome, Outcome::kOk);
  runner->Stop();
  const std::string text = registry_.Exposition();
  EXPECT_NE(text.find("galley_model_executions_total{model=\"fake\"} 1"), std::string::npos)
      << text;
  EXPECT_NE(text.find("galley_model_inferences_total{model=\"fake\"} 1"), std::string::npos)
      << text;
  EXPECT_NE(text.find("galley_batch_size_count{model=\"fake\"} 1"), std::string::npos) << text;
}

}  // namespace
}  // namespace galley::inference
