#include "http/response_reader.h"

#include <cstring>
#include <string_view>

#include "gtest/gtest.h"

namespace galley::http {
namespace {

using State = ResponseReader::State;

void Append(boost::beast::flat_buffer& b, std::string_view s) {
  auto dst = b.prepare(s.size());
  std::memcpy(dst.data(), s.data(), s.size());
  b.commit(s.size());
}

std::string Left(const boost::beast::flat_buffer& b) {
  return {static_cast<const char*>(b.data().data()), b.size()};
}

TEST(ResponseReaderTest, SkipsInterimAnswersAndKeepsWhatFollowsTheFinalOne) {
  ResponseReader r(1 << 20);
  boost::beast::flat_buffer b;
  Append(b, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n");
  EXPECT_EQ(r.Parse(b), State::kNeedMore);
  EXPECT_TRUE(r.got_some());
  Append(b, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhel");
  EXPECT_EQ(r.Parse(b), State::kNeedMore);
  Append(b, "loHTTP/1.1 200 OK\r\n");
  ASSERT_EQ(r.Parse(b), State::kDone);
  EXPECT_EQ(r.response().result_int(), 200u);
  EXPECT_EQ(r.response().body(), "hello");
  EXPECT_EQ(r.response()["X-A"], "1");
  EXPECT_EQ(Left(b), "HTTP/1.1 200 OK\r\n");  // a second answer nobody asked for
}

TEST(ResponseReaderTest, ByteByByte) {
  const std::string wire =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}";
  ResponseReader r(1 << 20);
  boost::beast::flat_buffer b;
  State s = State::kNeedMore;
  for (size_t i = 0; i < wire.size() && s == State::kNeedMore; ++i) {
    Append(b, wire.substr(i, 1));
    s = r.Parse(b);
  }
  ASSERT_EQ(s, State::kDone);
  EXPECT_EQ(r.response().result_int(), 404u);
  EXPECT_EQ(r.response().body(), "{}");
  EXPECT_EQ(b.size(), 0u);
}

TEST(ResponseReaderTest, ChunkedAnswersFedAByteAtATime) {
  // Found by the fuzzer: a last chunk whose header arrives a byte at a time (the empty body's
  // "0\r\n" right after the header block is the sharpest case).
  for (const std::string body : {"", "3\r\nabc\r\n"}) {
    const std::string wire =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + "0\r\n\r\nEXTRA";
    ResponseReader r(1 << 20);
    boost::beast::flat_buffer b;
    State s = State::kNeedMore;
    size_t i = 0;
    for (; i < wire.size() && s == State::kNeedMore; ++i) {
      Append(b, wire.substr(i, 1));
      s = r.Parse(b);
    }
    ASSERT_EQ(s, State::kDone) << body;
    EXPECT_EQ(r.response().body(), body.empty() ? "" : "abc");
    Append(b, wire.substr(i));
    EXPECT_EQ(Left(b), "EXTRA");
  }
}

TEST(ResponseReaderTest, SwitchingProtocolsTooManyInterimAndGarbageAreErrors) {
  {
    ResponseReader r(1 << 20);
    boost::beast::flat_buffer b;
    Append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n");
    EXPECT_EQ(r.Parse(b), State::kError);
    EXPECT_NE(r.error().find("101"), std::string::npos);
  }
  {
    ResponseReader r(1 << 20);
    boost::beast::flat_buffer b;
    for (int i = 0; i <= ResponseReader::kMaxInterim; ++i)
      Append(b, "HTTP/1.1 100 Continue\r\n\r\n");
    EXPECT_EQ(r.Parse(b), State::kError);
    EXPECT_NE(r.error().find("interim"), std::string::npos);
  }
  {
    ResponseReader r(1 << 20);
    boost::beast::flat_buffer b;
    Append(b, "{\"ready\":true}\r\n\r\n");
    EXPECT_EQ(r.Parse(b), State::kError);
    EXPECT_NE(r.error().find("malformed"), std::string::npos);
  }
  {
    ResponseReader r(
        1 << 20);  // found by the fuzzer: a status below 100 with a close-delimited body
    boost::beast::flat_buffer b;
    Append(b,
           "HTTP/1.1 099 Odd\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(r.Parse(b), State::kError);
    EXPECT_NE(r.error().find("status 99 is not an HTTP status"), std::string::npos);
  }
  {
    ResponseReader r(4);
    boost::beast::flat_buffer b;
    Append(b, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
    EXPECT_EQ(r.Parse(b), State::kError);  // over the body limit
  }
}

TEST(ResponseReaderTest, EndOfStreamCompletesOnlyACloseDelimitedAnswer) {
  {
    ResponseReader r(1 << 20);
    boost::beast::flat_buffer b;
    Append(b, "HTTP/1.0 200 OK\r\n\r\nuntil the end");
    EXPECT_EQ(r.Parse(b), State::kNeedMore);
    ASSERT_EQ(r.OnEndOfStream(), State::kDone);
    EXPECT_EQ(r.response().body(), "until the end");
  }
  {
    ResponseReader r(1 << 20);
    boost::beast::flat_buffer b;
    Append(b, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
    EXPECT_EQ(r.Parse(b), State::kNeedMore);
    EXPECT_EQ(r.OnEndOfStream(), State::kError);
  }
  {
    ResponseReader r(1 << 20);
    EXPECT_FALSE(r.got_some());
    EXPECT_EQ(r.OnEndOfStream(), State::kError);
  }
}

}  // namespace
}  // namespace galley::http
