// HTTP message types shared by the server, the handlers and the router.
#pragma once

#include <string>
#include <string_view>

#include "boost/beast/http/message.hpp"
#include "boost/beast/http/string_body.hpp"

namespace galley::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Status = boost::beast::http::status;
using Verb = boost::beast::http::verb;

// A response with a JSON body and Content-Type: application/json.
Response JsonResponse(Status status, std::string body);
// The current time as an HTTP-date (RFC 9110 §5.6.7), cached per second per thread.
std::string_view HttpDateNow();

// {"error": message} with the given status.
Response JsonError(Status status, std::string_view message);

// Appends "Name: value\r\n" for each field of `fields` but those named `skip_a` or `skip_b`, as
// Beast's serializer writes them; for writers that send a whole message as one buffer.
void AppendFields(const boost::beast::http::fields& fields, std::string& out,
                  boost::beast::http::field skip_a = boost::beast::http::field::unknown,
                  boost::beast::http::field skip_b = boost::beast::http::field::unknown);
// Removes the hop-by-hop fields a proxy must not forward (RFC 9110 §7.6.1, RFC 9112 §9.6):
// Connection and every field it names, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade, and Expect (an intermediary answers 100-continue itself and sends
// the whole body on). Content-Length is left for the caller to set from the body it sends.
void RemoveHopByHopFields(boost::beast::http::fields& fields);
// Appends "HTTP/1.1" (or the given version).
void AppendHttpVersion(unsigned version, std::string& out);

}  // namespace galley::http
