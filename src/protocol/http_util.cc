#include "protocol/http_util.h"

#include <charconv>

#include "common/strings.h"

namespace galley::protocol {

bool IsJsonContentType(std::string_view value) {
  std::string_view media = StripWhitespace(value.substr(0, value.find(';')));
  return EqualsIgnoreCase(media, "application/json");
}

bool HasJsonContentType(const http::Request& req) {
  auto ct = req.find(boost::beast::http::field::content_type);
  return ct != req.end() &&
         IsJsonContentType(std::string_view(ct->value().data(), ct->value().size()));
}

absl::StatusOr<TimePoint> RequestDeadline(const http::Request& req,
                                          std::optional<int64_t> timeout_us,
                                          std::chrono::milliseconds default_timeout,
                                          TimePoint now) {
  auto it = req.find(kTimeoutHeader);
  if (it != req.end()) {
    std::string_view v(it->value().data(), it->value().size());
    int64_t ms = -1;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
    if (ec != std::errc() || p != v.data() + v.size() || ms < 0) {
      return absl::InvalidArgumentError(StrCat(kTimeoutHeader, " must be a non-negative integer"));
    }
    if (ms > 0) return now + std::chrono::milliseconds(std::min<int64_t>(ms, 86'400'000));
  }
  if (timeout_us && *timeout_us > 0) {
    return now + std::chrono::microseconds(std::min<int64_t>(*timeout_us, 86'400'000'000));
  }
  if (default_timeout.count() > 0) return now + default_timeout;
  return TimePoint::max();
}

absl::StatusOr<std::optional<size_t>> InferenceHeaderLength(const http::Request& req) {
  auto it = req.find(kInferenceHeaderLength);
  if (it == req.end()) return std::nullopt;
  const std::string_view v(it->value().data(), it->value().size());
  size_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || v.empty()) {
    return absl::InvalidArgumentError(StrCat(kInferenceHeaderLength, " must be a byte count"));
  }
  return n;
}

http::Status HttpStatusFor(inference::Outcome outcome) {
  switch (outcome) {
    case inference::Outcome::kOk:
      return http::Status::ok;
    case inference::Outcome::kInvalidInput:
      return http::Status::bad_request;
    case inference::Outcome::kModelNotFound:
      return http::Status::not_found;
    case inference::Outcome::kModelNotReady:
      return http::Status::service_unavailable;
    case inference::Outcome::kQueueFull:
      return http::Status::too_many_requests;
    case inference::Outcome::kDeadlineExceeded:
      return http::Status::gateway_timeout;
    case inference::Outcome::kShuttingDown:
      return http::Status::service_unavailable;
    case inference::Outcome::kInternal:
      return http::Status::internal_server_error;
  }
  return http::Status::internal_server_error;
}

}  // namespace galley::protocol
