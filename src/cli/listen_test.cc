#include "cli/listen.h"

#include "gtest/gtest.h"

namespace galley::cli {
namespace {

TEST(ParseListenTest, Accepts) {
  auto a = ParseListen("127.0.0.1:0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 0);
  auto b = ParseListen("[::1]:8080");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 8080);
  auto c = ParseListen(":9000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "0.0.0.0");
  EXPECT_EQ(c->port, 9000);
}

TEST(ParseListenTest, RejectsWithReason) {
  for (const char* bad : {"8080", "host:", "host:abc", "host:65536", "host:-1", "host:80x"}) {
    auto r = ParseListen(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace galley::cli
