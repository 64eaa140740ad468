// The executor against a ModelCaller that answers like a model server would (OIP JSON bodies),
// programmed per model: the executor is the component under test; the caller is its seam.
#include "pipeline/executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "common/strings.h"

namespace galley::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace json = boost::json;

struct Seen {
  std::string key, model;
  json::value request;
  TimePoint deadline;
};

// Answers each model with a function of the request, optionally from another thread.
class ScriptedCaller : public ModelCaller {
 public:
  using Answer = std::function<CallResult(const json::value& request)>;
  std::map<std::string, Answer> models;
  bool threaded = false;

  void Call(const std::string& key, const std::string& model, std::string body, TimePoint deadline,
            CallDone done) override {
    json::value req = json::parse(body);
    {
      absl::MutexLock lock(&mu);
      seen.push_back({key, model, req, deadline});
    }
    auto it = models.find(model);
    CallResult r = it == models.end()
                       ? CallResult{absl::UnavailableError("no such model here"), "", ""}
                       : it->second(req);
    if (!threaded) return done(std::move(r));
    absl::MutexLock lock(&mu);
    threads.emplace_back(
        [r = std::move(r), done = std::move(done)]() mutable { done(std::move(r)); });
  }
  void StepSet(const std::string& step) override {
    absl::MutexLock lock(&mu);
    set_steps.push_back(step);
  }
  ~ScriptedCaller() override {
    for (auto& t : threads) t.join();
  }
  std::vector<std::string> SetSteps() {
    absl::MutexLock lock(&mu);
    return set_steps;
  }
  std::vector<Seen> Calls() {
    absl::MutexLock lock(&mu);
    return seen;
  }

  absl::Mutex mu;
  std::vector<Seen> seen ABSL_GUARDED_BY(mu);
  std::vector<std::thread> threads ABSL_GUARDED_BY(mu);
  std::vector<std::string> set_steps ABSL_GUARDED_BY(mu);  // the steps StepSet was told of
};

CallResult Output(std::string name, std::string datatype, json::array data,
                  std::string replica = "r0") {
  json::object out{{"name", name},
                   {"datatype", datatype},
                   {"shape", json::array{static_cast<int64_t>(data.size())}},
                   {"data", data}};
  return {absl::OkStatus(),
          json::serialize(json::object{{"model_name", "m"}, {"outputs", json::array{out}}}),
          replica};
}

std::string FirstString(const json::value& req) {
  return std::string(req.at("inputs").at(0).at("data").at(0).as_string());
}

const Pipeline& Load(std::string_view text, PipelineSet& holder, const std::string& name) {
  auto set = ParsePipelines(text);
  EXPECT_TRUE(set.ok()) << set.status();
  holder = *std::move(set);
  EXPECT_TRUE(
      ValidatePipelines(holder, {"safety", "router", "retrieval", "backup", "a", "b", "c"}).ok());
  return holder.pipelines.at(name);
}

RunResult RunSync(const Pipeline& p, Tensors in, ModelCaller& caller, const Clock& clock,
                  uint64_t seed = 1, TimePoint deadline = TimePoint::max()) {
  std::promise<RunResult> done;
  Run(p, std::move(in), deadline, caller, clock, seed,
      [&](RunResult&& r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

constexpr std::string_view kChat = R"({"pipelines": {"chat": {
  "inputs": ["message"], "root": "main",
  "nodes": {
    "main": {"kind": "sequence", "steps": [
      {"name": "safety_in", "model": "safety", "inputs": {"text": {"from": "message", "shape": [-1, 1]}}},
      {"name": "gate", "node": "gate"},
      {"name": "route", "model": "router", "inputs": {"query": "message"}, "dependency": "soft"},
      {"name": "answer", "node": "answer"},
      {"name": "done", "set": {"finished": "yes"}}]},
    "gate": {"kind": "switch", "steps": [
      {"name": "refuse", "condition": {"tensor": "safety_in.label", "op": "==", "value": 1},
       "set": {"answer": "I will not answer that."}, "halt": true}]},
    "answer": {"kind": "switch", "steps": [
      {"name": "direct", "condition": {"tensor": "route.sources", "value": "smalltalk"},
       "set": {"answer": "hello"}},
      {"name": "docs", "model": "retrieval", "inputs": {"query": "message"},
       "outputs": {"passages": "answer"}, "timeout_ms": 500, "fallback_model": "backup"}]}
  }}}})";

void ProgramChat(ScriptedCaller& c) {
  c.models["safety"] = [](const json::value& req) {
    const bool bad = FirstString(req).find("idiot") != std::string::npos;
    return Output("label", "INT64", json::array{bad ? 1 : 0});
  };
  c.models["router"] = [](const json::value& req) {
    const bool hi = FirstString(req).starts_with("hello");
    return Output("sources", "BYTES", json::array{hi ? "smalltalk" : "docs"});
  };
  c.models["retrieval"] = [](const json::value& req) {
    return Output("passages", "BYTES", json::array{"passage about " + FirstString(req), "second"});
  };
}

std::vector<std::string> Statuses(const RunResult& r) {
  std::vector<std::string> out;
  for (const auto& s : r.steps) out.push_back(StrCat(s.step, ":", s.status));
  return out;
}

TEST(PipelineExecutorTest, ASequenceRoutesThroughSwitchesAndPassesTensorsBetweenSteps) {
  PipelineSet set;
  const Pipeline& p = Load(kChat, set, "chat");
  ScriptedCaller c;
  ProgramChat(c);
  ManualClock clock;
  RunResult r = RunSync(p, {{"message", StringTensor({"how do I scale"})}}, c, clock);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_FALSE(r.halted);
  EXPECT_THAT(Statuses(r), ElementsAre("safety_in:ok", "route:ok", "docs:ok", "done:set"));
  // The reshape: one string as [1, 1] for the safety model.
  const auto calls = c.Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(json::serialize(calls[0].request.at("inputs").at(0).at("shape")), "[1,1]");
  EXPECT_EQ(calls[0].request.at("inputs").at(0).at("name"), "text");
  EXPECT_EQ(calls[0].key, "chat/safety_in");
  // The alias and STEP.OUTPUT both hold the retrieval's passages.
  EXPECT_EQ(r.tensors.at("answer").data.at(0), "passage about how do I scale");
  EXPECT_EQ(r.tensors.at("docs.passages").data.size(), 2u);
  EXPECT_EQ(r.tensors.at("finished").data.at(0), "yes");
  EXPECT_EQ(r.steps[2].replica, "r0");
  // The caller hears of the set step too (it traces it), and of no step that did not run.
  EXPECT_THAT(c.SetSteps(), ElementsAre("done"));
}

TEST(PipelineExecutorTest, AHaltingStepEndsTheRunAndNothingAfterItIsCalled) {
  PipelineSet set;
  const Pipeline& p = Load(kChat, set, "chat");
  ScriptedCaller c;
  ProgramChat(c);
  ManualClock clock;
  RunResult r = RunSync(p, {{"message", StringTensor({"you idiot"})}}, c, clock);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.halted);
  EXPECT_THAT(Statuses(r), ElementsAre("safety_in:ok", "refuse:set"));
  EXPECT_EQ(c.Calls().size(), 1u);
  EXPECT_THAT(c.SetSteps(), ElementsAre("refuse"));
  EXPECT_EQ(r.tensors.at("answer").data.at(0), "I will not answer that.");
  EXPECT_FALSE(r.tensors.contains("finished"));
}

TEST(PipelineExecutorTest, ASoftStepThatFailsIsSkippedAndMarkedAndTheSwitchTakesItsDefault) {
  PipelineSet set;
  const Pipeline& p = Load(kChat, set, "chat");
  ScriptedCaller c;
  ProgramChat(c);
  c.models.erase("router");
  ManualClock clock;
  RunResult r = RunSync(p, {{"message", StringTensor({"hello there"})}}, c, clock);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(Statuses(r), ElementsAre("safety_in:ok", "route:skipped", "docs:ok", "done:set"));
  EXPECT_EQ(r.steps[1].error, "no such model here");
  // With the router answering, the same message takes the other branch.
  ScriptedCaller c2;
  ProgramChat(c2);
  r = RunSync(p, {{"message", StringTensor({"hello there"})}}, c2, clock);
  EXPECT_THAT(Statuses(r), ElementsAre("safety_in:ok", "route:ok", "direct:set", "done:set"));
}

TEST(PipelineExecutorTest, AHardStepThatFailsFailsTheRunNamingItAndStopsTheSequence) {
  PipelineSet set;
  const Pipeline& p = Load(kChat, set, "chat");
  ScriptedCaller c;
  ProgramChat(c);
  c.models["safety"] = [](const json::value&) {
    return CallResult{absl::UnavailableError("model breaker open"), "", ""};
  };
  ManualClock clock;
  RunResult r = RunSync(p, {{"message", StringTensor({"hi"})}}, c, clock);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status.message(),
              HasSubstr("step 'safety_in' (model 'safety') failed: model breaker open"));
  EXPECT_EQ(r.failed_step, "safety_in");
  EXPECT_THAT(Statuses(r), ElementsAre("safety_in:failed"));
  EXPECT_EQ(c.Calls().size(), 1u);
}

TEST(PipelineExecutorTest, AFailingModelWithAFallbackIsAnsweredByTheFallbackAndMarked) {
  PipelineSet set;
  const Pipeline& p = Load(kChat, set, "chat");
  ScriptedCaller c;
  ProgramChat(c);
  c.models["retrieval"] = [](const json::value&) {
    return CallResult{absl::DeadlineExceededError("no answer within 500 ms"), "", ""};
  };
  c.models["backup"] = [](const json::value&) {
    return Output("passages", "BYTES", json::array{"from the backup"}, "r9");
  };
  ManualClock clock;
  RunResult r = RunSync(p, {{"message", StringTensor({"how"})}}, c, clock);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(Statuses(r), ElementsAre("safety_in:ok", "route:ok", "docs:fallback", "done:set"));
  EXPECT_EQ(r.steps[2].model, "backup");
  EXPECT_EQ(r.steps[2].replica, "r9");
  EXPECT_EQ(r.steps[2].error, "no answer within 500 ms");
  EXPECT_EQ(r.tensors.at("answer").data.at(0), "from the backup");
  EXPECT_EQ(c.Calls().back().key, "chat/docs#fallback");
  // The step's 500 ms bounded the primary; the fallback has the run's deadline.
  EXPECT_EQ(c.Calls().back().deadline, TimePoint::max());
  // Both failing: a hard step fails the run with both reasons.
  c.models.erase("backup");
  r = RunSync(p, {{"message", StringTensor({"how"})}}, c, clock);
  EXPECT_THAT(r.status.message(),
              HasSubstr("no answer within 500 ms; fallback 'backup': no such model here"));
}

TEST(PipelineExecutorTest, AStepDeadlineIsItsTimeoutWithinTheRunsDeadline) {
  PipelineSet set;
  const Pipeline& p = Load(kChat, set, "chat");
  ScriptedCaller c;
  ProgramChat(c);
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  const TimePoint run_deadline = clock.Now() + std::chrono::seconds(10);
  RunSync(p, {{"message", StringTensor({"how"})}}, c, clock, 1, run_deadline);
  const auto calls = c.Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].deadline, run_deadline);
  EXPECT_EQ(calls[2].deadline, clock.Now() + std::chrono::milliseconds(500));
  // A run deadline sooner than the step's timeout wins.
  ScriptedCaller c2;
  ProgramChat(c2);
  RunSync(p, {{"message", StringTensor({"how"})}}, c2, clock, 1,
          clock.Now() + std::chrono::milliseconds(100));
  EXPECT_EQ(c2.Calls()[2].deadline, clock.Now() + std::chrono::milliseconds(100));
}

constexpr std::string_view kFan = R"({"pipelines": {
  "fan": {"inputs": ["x"], "root": "all", "nodes": {
    "all": {"kind": "ensemble", "steps": [
      {"name": "one", "model": "a", "inputs": {"in": "x"}},
      {"name": "two", "model": "b", "inputs": {"in": "x"}},
      {"name": "three", "model": "c", "inputs": {"in": "x"}, "dependency": "soft"}]}}},
  "canary": {"inputs": ["x"], "root": "split", "nodes": {
    "split": {"kind": "splitter", "steps": [
      {"name": "stable", "model": "a", "inputs": {"in": "x"}, "weight": 80},
      {"name": "canary", "model": "b", "inputs": {"in": "x"}, "weight": 20}]}}},
  "shape": {"inputs": ["x"], "root": "s", "nodes": {
    "s": {"kind": "sequence", "steps": [
      {"name": "bad", "model": "a", "inputs": {"in": {"from": "x", "shape": [2, 2]}}}]}}}}})";

TEST(PipelineExecutorTest, AnEnsembleRunsEveryStepAtOnceAndMergesTheirOutputs) {
  PipelineSet set;
  const Pipeline& p = Load(kFan, set, "fan");
  ScriptedCaller c;
  c.threaded = true;
  for (std::string m : {"a", "b"}) {
    c.models[m] = [m](const json::value&) { return Output("y", "BYTES", json::array{m}); };
  }
  ManualClock clock;
  RunResult r = RunSync(p, {{"x", StringTensor({"v"})}}, c, clock);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.tensors.at("one.y").data.at(0), "a");
  EXPECT_EQ(r.tensors.at("two.y").data.at(0), "b");
  EXPECT_EQ(r.steps.size(), 3u);
  EXPECT_EQ(c.Calls().size(), 3u);
  // A hard member failing fails the ensemble (after every member has ended).
  c.models.erase("b");
  r = RunSync(p, {{"x", StringTensor({"v"})}}, c, clock);
  EXPECT_THAT(r.status.message(), HasSubstr("step 'two'"));
  EXPECT_EQ(r.steps.size(), 3u);
}

TEST(PipelineExecutorTest, ASplitterSendsTrafficByWeight) {
  PipelineSet set;
  const Pipeline& p = Load(kFan, set, "canary");
  ScriptedCaller c;
  for (std::string m : {"a", "b"}) {
    c.models[m] = [m](const json::value&) { return Output("y", "BYTES", json::array{m}); };
  }
  ManualClock clock;
  int canary = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    RunResult r = RunSync(p, {{"x", StringTensor({"v"})}}, c, clock, 1000 + i);
    ASSERT_EQ(r.steps.size(), 1u);
    canary += r.steps[0].step == "canary";
  }
  // 20% of 2000 is 400; the binomial's standard deviation is about 18: 6 sigma either side.
  EXPECT_GT(canary, 290);
  EXPECT_LT(canary, 510);
}

TEST(PipelineExecutorTest, AnInputThatDoesNotFitItsShapeFailsTheStepClearly) {
  PipelineSet set;
  const Pipeline& p = Load(kFan, set, "shape");
  ScriptedCaller c;
  ManualClock clock;
  RunResult r = RunSync(p, {{"x", StringTensor({"a", "b", "c"})}}, c, clock);
  EXPECT_THAT(r.status.message(),
              HasSubstr("input 'in' from 'x': 3 elements do not fit shape [2,2]"));
  EXPECT_TRUE(c.Calls().empty());
}

TEST(PipelineExecutorTest, AnAnswerThatIsNotAnInferResponseFailsTheStep) {
  PipelineSet set;
  const Pipeline& p = Load(kFan, set, "canary");
  ScriptedCaller c;
  for (std::string m : {"a", "b"}) {
    c.models[m] = [](const json::value&) {
      return CallResult{absl::OkStatus(), R"({"error": "x"})", "r0"};
    };
  }
  ManualClock clock;
  RunResult r = RunSync(p, {{"x", StringTensor({"v"})}}, c, clock);
  EXPECT_THAT(r.status.message(), HasSubstr("has no 'outputs' list"));
}

}  // namespace
}  // namespace galley::pipeline
