// A second listener for operations: with --metrics-listen, /metrics moves off the API's listener
// (where it would need no key and any client could read it) to an address of its own, usually
// loopback or a private network that only the monitoring system reaches. The probes
// (/v2/health/live, /v2/health/ready, /livez, /readyz) are answered on both.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "http/server.h"

namespace galley::http {

// With `options` set: /metrics moves off `handler` (which goes on serving the API's listener) to
// an operations listener started here on `options` (one I/O thread, plain HTTP, at most 256
// connections) that answers /metrics and the probes only, and logs its `listening` line
// (protocol "metrics"). Without: `handler` is left as is and the result is null.
absl::StatusOr<std::unique_ptr<Server>> StartOpsListener(
    const std::optional<ServerOptions>& options, Handler& handler);

}  // namespace galley::http
