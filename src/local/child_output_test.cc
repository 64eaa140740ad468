#include "local/child_output.h"

#include "gtest/gtest.h"

namespace galley::local {
namespace {

TEST(ChildOutputTest, ListeningGivesPortAndForwardsWithReplica) {
  const ChildLine l = ParseChildLine(
      R"({"ts":"t","level":"info","event":"listening","host":"127.0.0.1","port":40123})",
      "replica-1");
  EXPECT_TRUE(l.is_json);
  EXPECT_EQ(l.event, "listening");
  ASSERT_TRUE(l.port.has_value());
  EXPECT_EQ(*l.port, 40123);
  EXPECT_EQ(l.level, log::Level::kInfo);
  EXPECT_EQ(l.forwarded,
            "{\"ts\":\"t\",\"level\":\"info\",\"event\":\"listening\",\"replica\":\"replica-1\","
            "\"host\":\"127.0.0.1\",\"port\":40123}\n");
}

TEST(ChildOutputTest, ReadyAndLevels) {
  const ChildLine l = ParseChildLine(R"({"level":"warn","event":"ready"})", "r");
  EXPECT_EQ(l.event, "ready");
  EXPECT_FALSE(l.port.has_value());
  EXPECT_EQ(l.level, log::Level::kWarn);
  EXPECT_EQ(ParseChildLine(R"({"level":"loud","event":"x"})", "r").level, log::Level::kInfo);
}

TEST(ChildOutputTest, BadPortsAreIgnored) {
  EXPECT_FALSE(ParseChildLine(R"({"event":"listening","port":0})", "r").port.has_value());
  EXPECT_FALSE(ParseChildLine(R"({"event":"listening","port":70000})", "r").port.has_value());
  EXPECT_FALSE(ParseChildLine(R"({"event":"listening","port":"80"})", "r").port.has_value());
  EXPECT_FALSE(ParseChildLine(R"({"event":"other","port":80})", "r").port.has_value());
}

TEST(ChildOutputTest, NotJsonObject) {
  for (const char* line : {"plain text", "", "[1,2]", "{\"event\":", "42"}) {
    const ChildLine l = ParseChildLine(line, "r");
    EXPECT_FALSE(l.is_json) << line;
    EXPECT_TRUE(l.event.empty()) << line;
  }
}

TEST(ChildOutputTest, ChildsOwnReplicaFieldIsReplaced) {
  const ChildLine l = ParseChildLine(R"({"replica":"evil","msg":"hi"})", "replica-0");
  EXPECT_EQ(l.forwarded, "{\"msg\":\"hi\",\"replica\":\"replica-0\"}\n");
}

}  // namespace
}  // namespace galley::local
