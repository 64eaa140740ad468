#include "kube/watch_event.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kube/api_error.h"

namespace galley::kube {
namespace {

using ::testing::HasSubstr;

TEST(WatchEventTest, ParsesEachType) {
  const struct {
    std::string line;
    WatchEventType type;
  } cases[] = {
      {R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})", WatchEventType::kAdded},
      {R"({"type":"MODIFIED","object":{"metadata":{"name":"a"}}})", WatchEventType::kModified},
      {R"({"type":"DELETED","object":{"metadata":{"name":"a"}}})", WatchEventType::kDeleted},
      {R"(  {"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}  )",
       WatchEventType::kBookmark},
  };
  for (const auto& c : cases) {
    auto e = ParseWatchEvent(c.line);
    ASSERT_TRUE(e.ok()) << c.line << ": " << e.status();
    EXPECT_EQ(e->type, c.type);
    EXPECT_TRUE(e->object.is_object());
  }
}

TEST(WatchEventTest, Error410IsGone) {
  auto e = ParseWatchEvent(
      R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",)json"
      R"json("message":"too old resource version: 5 (90)","reason":"Expired","code":410}})json");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->type, WatchEventType::kError);
  const absl::Status s = WatchErrorStatus(*e);
  EXPECT_TRUE(IsGone(s));
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(HttpCode(s), 410);
  EXPECT_EQ(ApiReason(s), "Expired");
  EXPECT_THAT(std::string(s.message()), HasSubstr("too old resource version"));
}

TEST(WatchEventTest, BadLinesAreRejected) {
  for (const std::string line :
       {"", "not json", "[1]", R"({"object":{}})", R"({"type":"SOMETHING","object":{}})",
        R"({"type":"ADDED"})", R"({"type":"ADDED","object":3})"}) {
    auto e = ParseWatchEvent(line);
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << line;
  }
}

TEST(LineSplitterTest, SplitsAcrossArbitraryChunks) {
  const std::string stream = "{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}\n{\"partial";
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    LineSplitter s;
    std::vector<std::string> lines;
    std::string line;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      ASSERT_TRUE(s.Feed(std::string_view(stream).substr(i, chunk)).ok());
      while (s.Next(&line)) lines.push_back(line);
    }
    EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "", "{\"c\":3}"}))
        << "chunk " << chunk;
  }
}

TEST(LineSplitterTest, OverlongLineIsAnError) {
  LineSplitter s(/*max_line=*/8);
  EXPECT_TRUE(s.Feed("12345").ok());
  EXPECT_EQ(s.Feed("67890").code(), absl::StatusCode::kResourceExhausted);
}

TEST(ApiErrorTest, MapsStatusObjects) {
  const struct {
    int http;
    std::string reason;
    absl::StatusCode code;
  } cases[] = {
      {404, "NotFound", absl::StatusCode::kNotFound},
      {409, "AlreadyExists", absl::StatusCode::kAlreadyExists},
      {409, "Conflict", absl::StatusCode::kAborted},
      {410, "Gone", absl::StatusCode::kOutOfRange},
      {401, "Unauthorized", absl::StatusCode::kUnauthenticated},
      {403, "Forbidden", absl::StatusCode::kPermissionDenied},
      {422, "Invalid", absl::StatusCode::kInvalidArgument},
      {429, "TooManyRequests", absl::StatusCode::kResourceExhausted},
      {500, "InternalError", absl::StatusCode::kInternal},
      {503, "ServiceUnavailable", absl::StatusCode::kUnavailable},
  };
  for (const auto& c : cases) {
    const std::string body =
        R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"m )" + c.reason +
        R"(","reason":")" + c.reason + R"(","code":)" + std::to_string(c.http) + "}";
    const absl::Status s = ApiErrorFromResponse(c.http, body);
    EXPECT_EQ(s.code(), c.code) << c.http << " " << c.reason;
    EXPECT_EQ(HttpCode(s), c.http);
    EXPECT_EQ(ApiReason(s), c.reason);
    EXPECT_THAT(std::string(s.message()), HasSubstr("m " + c.reason));
  }
  EXPECT_TRUE(IsConflict(ApiErrorFromResponse(409, R"({"kind":"Status","reason":"Conflict"})")));
  EXPECT_FALSE(
      IsConflict(ApiErrorFromResponse(409, R"({"kind":"Status","reason":"AlreadyExists"})")));
  // A body that is not a Status is quoted.
  const absl::Status plain = ApiErrorFromResponse(502, "bad gateway\n");
  EXPECT_EQ(HttpCode(plain), 502);
  EXPECT_THAT(std::string(plain.message()), HasSubstr("bad gateway"));
  EXPECT_EQ(HttpCode(absl::UnavailableError("x")), 0);
}

}  // namespace
}  // namespace galley::kube
