// One place that applies Galley's request limits to a Beast parser, shared by the server and the
// fuzz target so that both parse exactly the same way.
#pragma once

#include <cstddef>

#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/string_body.hpp"

namespace galley::http {

inline void ConfigureParser(boost::beast::http::request_parser<boost::beast::http::string_body>& p,
                            size_t max_header_bytes, size_t max_body_bytes) {
  p.header_limit(static_cast<std::uint32_t>(max_header_bytes));
  p.body_limit(max_body_bytes);
}

}  // namespace galley::http
