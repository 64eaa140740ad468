#include "http/message.h"

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

Response JsonError(Status status, std::string_view message) {
  boost::json::object o;
  o["error"] = message;
  return JsonResponse(status, galley::JsonSerialize(o));
}

}  // namespace galley::http
