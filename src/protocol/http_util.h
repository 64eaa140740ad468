// Request helpers shared by the HTTP front-ends of `galley serve` and `galley gateway`.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "http/message.h"
#include "inference/inference_service.h"

namespace galley::protocol {

// The header that carries a request's timeout in milliseconds (0: use the default).
inline constexpr std::string_view kTimeoutHeader = "X-Request-Timeout-Ms";

// True for "application/json" with any parameters, case-insensitively.
bool IsJsonContentType(std::string_view value);
// True if the request's Content-Type is JSON.
bool HasJsonContentType(const http::Request& req);

// The request's deadline: kTimeoutHeader if set and > 0, else `timeout_us` (the protocol's
// parameters.timeout) if > 0, else now + `default_timeout` if > 0, else none (TimePoint::max()).
// InvalidArgument for a malformed header.
absl::StatusOr<TimePoint> RequestDeadline(const http::Request& req,
                                          std::optional<int64_t> timeout_us,
                                          std::chrono::milliseconds default_timeout, TimePoint now);

// Triton's binary tensor data extension: the request's Inference-Header-Content-Length (the
// length of the JSON part), none when absent; InvalidArgument when it is not a byte count.
inline constexpr std::string_view kInferenceHeaderLength = "Inference-Header-Content-Length";
absl::StatusOr<std::optional<size_t>> InferenceHeaderLength(const http::Request& req);

// The HTTP status for an outcome (429 for kQueueFull, 504 for kDeadlineExceeded, ...).
http::Status HttpStatusFor(inference::Outcome outcome);

}  // namespace galley::protocol
