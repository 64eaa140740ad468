#include "http/message.h"

#include <ctime>

#include "common/json.h"
#include "boost/json/value.hpp"

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

Response JsonError(Status status, std::string_view message) {
  boost::json::object o;
  o["error"] = message;
  return JsonResponse(status, galley::JsonSerialize(o));
}

}  // namespace galley::http
