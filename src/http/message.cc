#include "http/message.h"

#include <ctime>
#include <string>
#include <vector>

#include "boost/beast/http/rfc7230.hpp"
#include "boost/json/value.hpp"
#include "common/json.h"

namespace galley::http {

Response JsonResponse(Status status, std::string body) {
  Response res{status, 11};
  res.set(boost::beast::http::field::content_type, "application/json");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

std::string_view HttpDateNow() {
  thread_local std::time_t cached_second = 0;
  thread_local char cached[40] = {0};
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return cached;
}

void AppendFields(const boost::beast::http::fields& fields, std::string& out,
                  boost::beast::http::field skip_a, boost::beast::http::field skip_b) {
  for (const auto& f : fields) {
    const auto name = f.name();
    if (name != boost::beast::http::field::unknown && (name == skip_a || name == skip_b)) continue;
    out.append(f.name_string().data(), f.name_string().size())
        .append(": ")
        .append(f.value().data(), f.value().size())
        .append("\r\n");
  }
}

void RemoveHopByHopFields(boost::beast::http::fields& fields) {
  namespace bhttp = boost::beast::http;
  // Fields named by Connection's tokens go too (RFC 9110 §7.6.1); copied first, since erasing
  // Connection frees its value.
  std::vector<std::string> named;
  for (auto [it, end] = fields.equal_range(bhttp::field::connection); it != end; ++it) {
    for (const auto& token : bhttp::token_list(it->value())) named.emplace_back(token);
  }
  for (const std::string& name : named) fields.erase(name);
  for (auto f : {bhttp::field::connection, bhttp::field::keep_alive, bhttp::field::proxy_connection,
                 bhttp::field::te, bhttp::field::trailer, bhttp::field::transfer_encoding,
                 bhttp::field::upgrade, bhttp::field::expect}) {
    fields.erase(f);
  }
}

void AppendHttpVersion(unsigned version, std::string& out) {
  out.append("HTTP/");
  const char v[] = {static_cast<char>('0' + version / 10 % 10), '.',
                    static_cast<char>('0' + version % 10)};
  out.append(v, sizeof(v));
}

Response JsonError(Status status, std::string_view message) {
  boost::json::object o;
  o["error"] = message;
  return JsonResponse(status, galley::JsonSerialize(o));
}

}  // namespace galley::http
