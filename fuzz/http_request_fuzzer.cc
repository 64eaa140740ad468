// Fuzzes HTTP request parsing with the server's limits, then the JSON decoding of the body.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "boost/asio/buffer.hpp"
#include "fuzz/fuzz_models.h"
#include "http/parser_limits.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace bhttp = boost::beast::http;
  bhttp::request_parser<bhttp::string_body> parser;
  galley::http::ConfigureParser(parser, 16 << 10, 1 << 20);
  parser.eager(true);
  boost::system::error_code ec;
  size_t used = 0;
  // Feed the bytes in two pieces, as a network would deliver them.
  const size_t split = size / 2;
  used += parser.put(boost::asio::buffer(data, split), ec);
  if ((!ec || ec == bhttp::error::need_more) && !parser.is_done() && used < size) {
    ec = {};
    used += parser.put(boost::asio::buffer(data + used, size - used), ec);
  }
  if (!ec && parser.is_done()) {
    const auto& req = parser.get();
    (void)req.target();
    galley::fuzz::DecodeEverything(req.body());
  }
  return 0;
}
