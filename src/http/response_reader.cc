#include "http/response_reader.h"

#include "common/strings.h"

namespace galley::http {

namespace bhttp = boost::beast::http;

ResponseReader::ResponseReader(size_t max_body_bytes) : max_body_bytes_(max_body_bytes) { Reset(); }

void ResponseReader::Reset() {
  min_bytes_ = 0;
  parser_.emplace();
  parser_->body_limit(max_body_bytes_);
  parser_->eager(true);
}

ResponseReader::State ResponseReader::Fail(std::string why) {
  error_ = std::move(why);
  return State::kError;
}

ResponseReader::State ResponseReader::Parse(boost::beast::flat_buffer& buffer) {
  while (buffer.size() > 0) {
    // Beast 1.81 asserts that a last chunk it left unfinished ("0\r\n" without the blank line
    // that ends the trailer) comes back with at least 5 bytes; fed a byte at a time it would
    // come back with 4. Bytes left unparsed are only ever the start of something longer than
    // that, so waiting for 5 costs nothing.
    if (buffer.size() < min_bytes_) return State::kNeedMore;
    min_bytes_ = 0;
    boost::system::error_code ec;
    const size_t used = parser_->put(buffer.data(), ec);
    buffer.consume(used);
    got_some_ = got_some_ || parser_->got_some();
    if (ec == bhttp::error::need_more) {
      if (buffer.size() > 0 && buffer.size() < kMinResume) min_bytes_ = kMinResume;
      return State::kNeedMore;
    }
    if (ec) return Fail(StrCat("malformed answer: ", ec.message()));
    if (parser_->is_header_done() && parser_->get().result_int() < 100) {
      return Fail(StrCat("status ", parser_->get().result_int(), " is not an HTTP status"));
    }
    if (!parser_->is_done()) {
      if (used == 0) return State::kNeedMore;
      continue;
    }
    const unsigned status = parser_->get().result_int();
    if (status >= 200) {
      response_ = parser_->release();
      return State::kDone;
    }
    if (status == 101) return Fail("unexpected 101 Switching Protocols");
    if (++interim_ > kMaxInterim)
      return Fail(StrCat("more than ", kMaxInterim, " interim answers"));
    Reset();  // an interim answer: the final one follows
  }
  return State::kNeedMore;
}

ResponseReader::State ResponseReader::OnEndOfStream() {
  if (!parser_->is_header_done() || !parser_->need_eof()) {
    return Fail(got_some_ ? "the connection closed inside an answer" : "the connection closed");
  }
  boost::system::error_code ec;
  parser_->put_eof(ec);
  if (ec) return Fail(StrCat("malformed answer: ", ec.message()));
  if (parser_->get().result_int() < 200)
    return Fail("the connection closed after an interim answer");
  response_ = parser_->release();
  return State::kDone;
}

}  // namespace galley::http
