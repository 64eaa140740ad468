// The operations listener of the cluster commands (`galley operator run`, `galley schedule run`):
// GET /metrics, /healthz (200 while the process runs) and /readyz, on its own small HTTP server.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/listen.h"
#include "http/server.h"

namespace galley::cli {

struct OpsEndpoints {
  std::function<std::string()> exposition;  // the /metrics body (Prometheus text format)
  std::function<bool()> ready;              // /readyz: 200 when true, else 503
  std::function<std::string()> ready_body;  // /readyz's JSON body
};

// An HTTP server on `listen` (port 0: a free one) answering the three paths, not yet started (a
// Component for the process runner). An error when the address cannot be bound.
absl::StatusOr<std::unique_ptr<http::Server>> MakeOpsServer(const HostPort& listen,
                                                            OpsEndpoints endpoints);

}  // namespace galley::cli
