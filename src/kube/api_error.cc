#include "kube/api_error.h"

#include <charconv>

#include "absl/strings/cord.h"
#include "boost/json/parse.hpp"
#include "common/strings.h"

namespace galley::kube {
namespace {

constexpr char kHttpCodeUrl[] = "type.googleapis.com/galley.kube.HttpCode";
constexpr char kReasonUrl[] = "type.googleapis.com/galley.kube.Reason";

std::string_view StringField(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return {};
  return v->get_string();
}

absl::Status Make(int http_code, std::string_view reason, std::string_view message) {
  absl::Status status(ApiCodeFor(http_code, reason),
                      StrCat("kubernetes API: ", message.empty() ? reason : message, " (HTTP ",
                             http_code, reason.empty() ? "" : ", ", reason, ")"));
  status.SetPayload(kHttpCodeUrl, absl::Cord(StrCat(http_code)));
  if (!reason.empty()) status.SetPayload(kReasonUrl, absl::Cord(std::string(reason)));
  return status;
}

}  // namespace

absl::StatusCode ApiCodeFor(int http_code, std::string_view reason) {
  switch (http_code) {
    case 400:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return reason == "AlreadyExists" ? absl::StatusCode::kAlreadyExists
                                       : absl::StatusCode::kAborted;
    case 410:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 503:
      return absl::StatusCode::kUnavailable;
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      if (http_code >= 500) return absl::StatusCode::kInternal;
      return absl::StatusCode::kUnknown;
  }
}

absl::Status ApiErrorFromStatusObject(const boost::json::value& status_object) {
  if (!status_object.is_object()) return Make(0, "", "malformed Status object");
  const auto& o = status_object.get_object();
  int code = 0;
  if (const auto* c = o.if_contains("code"); c != nullptr && c->is_number()) {
    code = static_cast<int>(c->to_number<double>());
  }
  return Make(code, StringField(o, "reason"), StringField(o, "message"));
}

absl::Status ApiErrorFromResponse(int http_code, std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (!ec && v.is_object() && StringField(v.get_object(), "kind") == "Status") {
    const auto& o = v.get_object();
    return Make(http_code, StringField(o, "reason"), StringField(o, "message"));
  }
  std::string_view text = StripWhitespace(body);
  if (text.size() > 200) text = text.substr(0, 200);
  return Make(http_code, "", text.empty() ? std::string_view("empty response body") : text);
}

int HttpCode(const absl::Status& status) {
  const auto payload = status.GetPayload(kHttpCodeUrl);
  if (!payload.has_value()) return 0;
  const std::string text(*payload);
  int code = 0;
  std::from_chars(text.data(), text.data() + text.size(), code);
  return code;
}

std::string ApiReason(const absl::Status& status) {
  const auto payload = status.GetPayload(kReasonUrl);
  return payload.has_value() ? std::string(*payload) : std::string();
}

}  // namespace galley::kube
