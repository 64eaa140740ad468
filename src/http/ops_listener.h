// A second listener for operations: with --metrics-listen, /metrics moves off the API's listener
// (where it would need no key and any client could read it) to an address of its own, usually
// loopback or a private network that only the monitoring system reaches. The probes
// (/v2/health/live, /v2/health/ready, /livez, /readyz) are answered on both.
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "http/server.h"

namespace galley::http {

// True for the paths the operations listener serves.
bool IsOpsPath(std::string_view target);

struct SplitHandlers {
  Handler api;  // everything but /metrics (404 there)
  Handler ops;  // /metrics and the probes only (404 for the rest)
};
// Splits one front-end's handler between the API's listener and the operations listener.
SplitHandlers SplitOpsHandler(Handler handler);

// Starts the operations listener on `options` (one I/O thread, plain HTTP) with `ops`, and logs
// its `listening` line (protocol "metrics").
absl::StatusOr<std::unique_ptr<Server>> StartOpsListener(ServerOptions options, Handler ops);

}  // namespace galley::http
