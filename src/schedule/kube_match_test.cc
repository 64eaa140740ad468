#include "schedule/kube_match.h"

#include <gtest/gtest.h>

namespace galley::schedule {
namespace {

constexpr auto kNS = TaintEffect::kNoSchedule;
constexpr auto kPNS = TaintEffect::kPreferNoSchedule;
constexpr auto kNE = TaintEffect::kNoExecute;

struct TolerationCase {
  const char* name;
  Toleration toleration;
  Taint taint;
  bool tolerates;
};

TEST(TolerationTest, KubeMatchingRules) {
  using Op = TolerationOperator;
  const TolerationCase cases[] = {
      {"equal same key value effect", {"gpu", Op::kEqual, "a100", kNS}, {"gpu", "a100", kNS}, true},
      {"equal other value", {"gpu", Op::kEqual, "t4", kNS}, {"gpu", "a100", kNS}, false},
      {"equal other key", {"team", Op::kEqual, "a100", kNS}, {"gpu", "a100", kNS}, false},
      {"equal no effect = all effects",
       {"gpu", Op::kEqual, "x", std::nullopt},
       {"gpu", "x", kNE},
       true},
      {"effect mismatch", {"gpu", Op::kEqual, "x", kNS}, {"gpu", "x", kNE}, false},
      {"effect PreferNoSchedule only", {"gpu", Op::kEqual, "x", kPNS}, {"gpu", "x", kPNS}, true},
      {"exists ignores value", {"gpu", Op::kExists, "", kNS}, {"gpu", "anything", kNS}, true},
      {"exists other key", {"gpu", Op::kExists, "", kNS}, {"team", "", kNS}, false},
      {"empty key exists tolerates all",
       {"", Op::kExists, "", std::nullopt},
       {"any", "v", kNE},
       true},
      {"empty key exists with effect", {"", Op::kExists, "", kNS}, {"any", "v", kNE}, false},
      {"empty key equal compares value only",
       {"", Op::kEqual, "v", std::nullopt},
       {"k", "v", kNS},
       true},
      {"empty key equal other value", {"", Op::kEqual, "", std::nullopt}, {"k", "v", kNS}, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ToleratesTaint(c.toleration, c.taint), c.tolerates) << c.name;
  }
}

TEST(TolerationTest, OnlyHardTaintsBlock) {
  Node node;
  node.taints = {{"soft", "", kPNS}, {"hard", "x", kNE}};
  auto t = FirstUntoleratedHardTaint(node, {});
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->key, "hard");
  EXPECT_FALSE(FirstUntoleratedHardTaint(node, {{"hard", TolerationOperator::kExists, "", kNE}}));
}

struct RequirementCase {
  const char* name;
  SelectorRequirement req;
  std::optional<std::string_view> value;
  bool matches;
};

TEST(RequirementTest, Operators) {
  using Op = SelectorOperator;
  const RequirementCase cases[] = {
      {"in hit", {"k", Op::kIn, {"a", "b"}}, "b", true},
      {"in miss", {"k", Op::kIn, {"a"}}, "c", false},
      {"in absent", {"k", Op::kIn, {"a"}}, std::nullopt, false},
      {"notin hit", {"k", Op::kNotIn, {"a"}}, "a", false},
      {"notin miss", {"k", Op::kNotIn, {"a"}}, "c", true},
      {"notin absent matches", {"k", Op::kNotIn, {"a"}}, std::nullopt, true},
      {"exists", {"k", Op::kExists, {}}, "", true},
      {"exists absent", {"k", Op::kExists, {}}, std::nullopt, false},
      {"doesnotexist absent", {"k", Op::kDoesNotExist, {}}, std::nullopt, true},
      {"doesnotexist present", {"k", Op::kDoesNotExist, {}}, "x", false},
      {"gt", {"k", Op::kGt, {"4"}}, "8", true},
      {"gt equal", {"k", Op::kGt, {"8"}}, "8", false},
      {"lt", {"k", Op::kLt, {"10"}}, "8", true},
      {"lt not a number", {"k", Op::kLt, {"10"}}, "eight", false},
      {"gt absent", {"k", Op::kGt, {"1"}}, std::nullopt, false},
      {"gt two values", {"k", Op::kGt, {"1", "2"}}, "5", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(RequirementMatches(c.req, c.value), c.matches) << c.name;
  }
}

TEST(NodeAffinityTest, SelectorAndTermsOred) {
  Node node;
  node.name = "n1";
  node.pool = "gpu-a100";
  node.labels = {{"zone", "z1"}, {"gpus", "8"}};
  Pod pod;
  EXPECT_TRUE(NodeMatchesPodRequirements(pod, node));
  pod.node_selector = {{std::string(kNodePoolLabel), "gpu-a100"}};
  EXPECT_TRUE(NodeMatchesPodRequirements(pod, node));
  pod.node_selector = {{"zone", "z2"}};
  EXPECT_FALSE(NodeMatchesPodRequirements(pod, node));
  pod.node_selector.clear();
  pod.required_node_affinity = {NodeSelectorTerm{{{"zone", SelectorOperator::kIn, {"z9"}}}},
                                NodeSelectorTerm{{{"gpus", SelectorOperator::kGt, {"4"}},
                                                  {"zone", SelectorOperator::kExists, {}}}}};
  EXPECT_TRUE(NodeMatchesPodRequirements(pod, node));
  pod.required_node_affinity.pop_back();
  EXPECT_FALSE(NodeMatchesPodRequirements(pod, node));
  EXPECT_FALSE(NodeSelectorTermMatches(NodeSelectorTerm{}, node))
      << "an empty term matches nothing";
}

TEST(LabelSelectorTest, LabelsAndExpressions) {
  LabelSelector s;
  EXPECT_TRUE(LabelSelectorMatches(s, {}));
  s.match_labels = {{"app", "llm"}};
  EXPECT_TRUE(LabelSelectorMatches(s, {{"app", "llm"}, {"tier", "x"}}));
  EXPECT_FALSE(LabelSelectorMatches(s, {{"app", "web"}}));
  s.match_expressions = {{"tier", SelectorOperator::kNotIn, {"x"}}};
  EXPECT_FALSE(LabelSelectorMatches(s, {{"app", "llm"}, {"tier", "x"}}));
  EXPECT_TRUE(LabelSelectorMatches(s, {{"app", "llm"}}));
}

}  // namespace
}  // namespace galley::schedule
