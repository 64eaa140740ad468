// Reads one final HTTP/1.1 response from bytes as they arrive, for a client that sends a request
// and waits for its answer (the gateway's upstream connections). Interim 1xx answers are skipped
// (RFC 9110 §15.2: never a final answer); 101 (a protocol switch nobody asked for) and more than
// a few interim answers are errors. Bytes after the final answer stay in the buffer, so the
// caller can tell a clean connection from one that must not be reused. No sockets: the caller
// reads, this parses.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/parser.hpp"
#include "http/message.h"

namespace galley::http {

class ResponseReader {
 public:
  enum class State { kNeedMore, kDone, kError };
  static constexpr int kMaxInterim = 8;

  explicit ResponseReader(size_t max_body_bytes);

  // Parses what `buffer` holds, consuming what it used. kDone: response() is the final answer
  // and `buffer` holds whatever followed it. kError: error() says why.
  State Parse(boost::beast::flat_buffer& buffer);
  // The peer closed the connection: completes an answer delimited by the close, else an error.
  State OnEndOfStream();

  // Whether any byte of a response (interim answers included) has been parsed.
  bool got_some() const { return got_some_; }
  Response& response() { return response_; }
  const std::string& error() const { return error_; }

 private:
  State Fail(std::string why);
  void Reset();

  const size_t max_body_bytes_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
  Response response_;
  std::string error_;
  static constexpr size_t kMinResume = 5;
  size_t min_bytes_ = 0;  // parse again once the buffer holds this many bytes
  int interim_ = 0;
  bool got_some_ = false;
};

}  // namespace galley::http
