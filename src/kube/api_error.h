// API errors as absl::Status. A failed call carries the HTTP status code and the Status object's
// `reason` (metav1.StatusReason: "NotFound", "AlreadyExists", "Conflict", "Gone", ...) as
// payloads; the message is the API server's own `message`.
//
// Code mapping (HTTP -> absl): 400 InvalidArgument, 401 Unauthenticated, 403 PermissionDenied,
// 404 NotFound, 409 AlreadyExists when the reason is AlreadyExists and Aborted otherwise (a write
// conflict), 410 OutOfRange (Gone: the resourceVersion is older than the server keeps), 422
// InvalidArgument, 429 ResourceExhausted, 500 Internal, 503 Unavailable, 504 DeadlineExceeded.
// Transport failures (connect, TLS, reset) are Unavailable with HTTP code 0.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "boost/json/value.hpp"

namespace galley::kube {

// Builds the status for an HTTP error response: `body` is the response body (a metav1.Status
// JSON object when the server sent one; anything else is quoted in the message).
absl::Status ApiErrorFromResponse(int http_code, std::string_view body);
// Builds the status for a metav1.Status object (as in a watch ERROR event).
absl::Status ApiErrorFromStatusObject(const boost::json::value& status_object);
// The absl code for an HTTP status code and reason.
absl::StatusCode ApiCodeFor(int http_code, std::string_view reason);

// The HTTP status code carried by `status`; 0 when none (OK, or a transport error).
int HttpCode(const absl::Status& status);
// The metav1.StatusReason carried by `status`, or "" when none.
std::string ApiReason(const absl::Status& status);

// Not found and already-exists are absl::IsNotFound(s) and absl::IsAlreadyExists(s) (404 and 409
// with reason AlreadyExists map to exactly those codes).
inline bool IsConflict(const absl::Status& s) {
  return s.code() == absl::StatusCode::kAborted && HttpCode(s) == 409;
}
inline bool IsGone(const absl::Status& s) { return HttpCode(s) == 410; }

}  // namespace galley::kube
