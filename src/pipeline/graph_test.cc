#include "pipeline/graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace galley::pipeline {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kModels = {"safety", "router", "retrieval", "backup"};

absl::Status Check(std::string_view json) {
  auto set = ParsePipelines(json);
  if (!set.ok()) return set.status();
  return ValidatePipelines(*set, kModels);
}

constexpr std::string_view kChat = R"({"pipelines": {"chat": {
  "inputs": ["message"], "root": "main",
  "nodes": {
    "main": {"kind": "sequence", "steps": [
      {"name": "safety_in", "model": "safety", "inputs": {"text": {"from": "message", "shape": [-1, 1]}}},
      {"name": "gate", "node": "gate"},
      {"name": "route", "model": "router", "inputs": {"query": "message"}, "dependency": "soft"},
      {"name": "answer", "node": "answer"}]},
    "gate": {"kind": "switch", "steps": [
      {"name": "refuse", "condition": {"tensor": "safety_in.label", "op": "==", "value": 1},
       "set": {"answer": "no"}, "halt": true}]},
    "answer": {"kind": "switch", "steps": [
      {"name": "direct", "condition": {"tensor": "route.sources", "value": "smalltalk"},
       "set": {"answer": "hello"}},
      {"name": "docs", "model": "retrieval", "inputs": {"query": "message"},
       "outputs": {"passages": "answer"}, "timeout_ms": 500, "fallback_model": "backup"}]}
  }}}})";

TEST(PipelineGraphTest, ParsesEveryFieldOfAValidGraph) {
  auto set = ParsePipelines(kChat);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_TRUE(ValidatePipelines(*set, kModels).ok()) << ValidatePipelines(*set, kModels);
  const Pipeline& p = set->pipelines.at("chat");
  EXPECT_EQ(p.root, "main");
  EXPECT_EQ(p.inputs, std::vector<std::string>{"message"});
  const Node& main = p.nodes.at("main");
  EXPECT_EQ(main.kind, NodeKind::kSequence);
  ASSERT_EQ(main.steps.size(), 4u);
  EXPECT_EQ(main.steps[0].inputs.at("text").from, "message");
  EXPECT_EQ(*main.steps[0].inputs.at("text").shape, (std::vector<int64_t>{-1, 1}));
  EXPECT_TRUE(main.steps[0].hard);
  EXPECT_FALSE(main.steps[2].hard);
  const Step& refuse = p.nodes.at("gate").steps[0];
  EXPECT_TRUE(refuse.halt);
  EXPECT_EQ(refuse.condition->tensor, "safety_in.label");
  EXPECT_EQ(refuse.condition->number_value, 1);
  EXPECT_EQ(refuse.set.at("answer").strings, std::vector<std::string>{"no"});
  const Step& docs = p.nodes.at("answer").steps[1];
  EXPECT_EQ(*docs.timeout_ms, 500);
  EXPECT_EQ(docs.fallback_model, "backup");
  EXPECT_EQ(docs.outputs.at("passages"), "answer");
  EXPECT_TRUE(p.nodes.at("answer").steps[0].condition->is_string);
}

TEST(PipelineGraphTest, RefusesACycleNamingIt) {
  const auto st = Check(R"({"pipelines": {"p": {"root": "a", "nodes": {
    "a": {"kind": "sequence", "steps": [{"name": "s1", "node": "b"}]},
    "b": {"kind": "sequence", "steps": [{"name": "s2", "node": "c"}]},
    "c": {"kind": "ensemble", "steps": [{"name": "s3", "node": "a"}]}}}}})");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("pipeline 'p': cycle: a -> b -> c -> a"));
}

TEST(PipelineGraphTest, RefusesAnUnknownModelNamingItAndTheKnownOnes) {
  const auto st = Check(R"({"pipelines": {"p": {"inputs": ["m"], "root": "a", "nodes": {
    "a": {"kind": "sequence", "steps": [
      {"name": "s1", "model": "nope", "inputs": {"x": "m"}},
      {"name": "s2", "model": "safety", "inputs": {"x": "m"}, "fallback_model": "gone"}]}}}}})");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("step 's1' calls unknown model 'nope' (known: backup, "
                                      "retrieval, router, safety)"));
  EXPECT_THAT(st.message(), HasSubstr("step 's2' calls unknown model 'gone'"));
}

TEST(PipelineGraphTest, RefusesAnUnreachableNodeAndAnUndefinedOne) {
  const auto st = Check(R"({"pipelines": {"p": {"root": "a", "nodes": {
    "a": {"kind": "sequence", "steps": [{"name": "s1", "node": "ghost"}]},
    "orphan": {"kind": "sequence", "steps": [{"name": "s2", "set": {"x": 1}}]}}}}})");
  EXPECT_THAT(st.message(), HasSubstr("node 'orphan' is unreachable from root 'a'"));
  EXPECT_THAT(st.message(), HasSubstr("step 's1' runs node 'ghost', which is not defined"));
}

TEST(PipelineGraphTest, RefusesReadingATensorNothingProduces) {
  const auto st = Check(R"({"pipelines": {"p": {"inputs": ["message"], "root": "a", "nodes": {
    "a": {"kind": "switch", "steps": [
      {"name": "s1", "condition": {"tensor": "nobody.label", "value": 1}, "set": {"x": 1}},
      {"name": "s2", "model": "safety", "inputs": {"text": "mesage"}}]}}}}})");
  EXPECT_THAT(st.message(), HasSubstr("step 's1' tests 'nobody.label', which no step produces"));
  EXPECT_THAT(st.message(), HasSubstr("step 's2' reads 'mesage' for input 'text'"));
}

TEST(PipelineGraphTest, RefusesSplitterWeightsNotSummingTo100AndDefaultsBeforeTheEnd) {
  const auto st = Check(R"({"pipelines": {"p": {"inputs": ["m"], "root": "a", "nodes": {
    "a": {"kind": "sequence", "steps": [{"name": "x", "node": "b"}, {"name": "y", "node": "c"}]},
    "b": {"kind": "splitter", "steps": [
      {"name": "s1", "model": "safety", "inputs": {"t": "m"}, "weight": 60},
      {"name": "s2", "model": "backup", "inputs": {"t": "m"}, "weight": 30}]},
    "c": {"kind": "switch", "steps": [{"name": "s3", "set": {"x": 1}},
                                      {"name": "s4", "set": {"x": 2}}]}}}}})");
  EXPECT_THAT(st.message(), HasSubstr("node 'b' is a splitter whose weights sum to 90, not 100"));
  EXPECT_THAT(st.message(), HasSubstr("step 's3' has no condition; only a switch's last step"));
}

TEST(PipelineGraphTest, MalformedInputIsAClearErrorNamingThePlace) {
  struct Case {
    std::string_view json, want;
  } cases[] = {
      {"{", "not JSON"},
      {R"({"pipelines": {}})", "'pipelines' must be a non-empty object"},
      {R"({"pipelines": {"p": {"root": "a", "nodes": {"a": {"kind": "loop", "steps": [{}]}}}}})",
       "kind 'loop' is not sequence, switch, ensemble or splitter"},
      {R"({"pipelines": {"p": {"root": "a", "nodes": {"a": {"kind": "sequence", "steps": [
          {"name": "s", "model": "safety", "node": "a"}]}}}}})",
       "exactly one of 'model', 'node' or 'set'"},
      {R"({"pipelines": {"p": {"root": "a", "nodes": {"a": {"kind": "sequence", "steps": [
          {"name": "s", "model": "safety", "input": {}}]}}}}})",
       "unknown field 'input'"},
      {R"({"pipelines": {"p": {"root": "a", "nodes": {"a": {"kind": "sequence", "steps": [
          {"name": "s", "model": "safety"}]}}}}})",
       "a model step needs 'inputs'"},
      {R"({"pipelines": {"p": {"root": "a", "nodes": {"a": {"kind": "sequence", "steps": [
          {"name": "s", "set": {"x": 1}, "condition": {"tensor": "x", "value": 1}}]}}}}})",
       "'condition' belongs to a switch node's step"},
      {R"({"pipelines": {"p": {"root": "a", "nodes": {"a": {"kind": "switch", "steps": [
          {"name": "s", "set": {"x": 1}, "condition": {"tensor": "x", "op": "<", "value": "a"}}]}}}}})",
       "a string value compares only with == or !="},
      {R"({"pipelines": {"p": {"root": "a", "nodes": {"a": {"kind": "sequence", "steps": [
          {"name": "s", "model": "safety", "inputs": {"t": {"from": "m", "shape": [-1, -1]}}}]}}}}})",
       "at most one dimension may be -1"},
      {R"({"pipelines": {"p": {"root": "a", "nodes": {"a": {"kind": "sequence", "steps": [
          {"name": "a.b", "set": {"x": 1}}]}}}}})",
       "must not contain '.'"},
      {R"({"pipelines": {"p": {"root": "a", "root": "b", "nodes": {}}}})", "appears twice"},
  };
  for (const auto& c : cases) {
    const auto st = ParsePipelines(c.json);
    EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(st.status().message(), HasSubstr(c.want)) << c.json;
  }
}

}  // namespace
}  // namespace galley::pipeline
