#include "http/ops_listener.h"

#include <algorithm>

#include "common/log.h"
#include "common/strings.h"

namespace galley::http {
namespace {

std::string_view PathOf(const Request& req) {
  std::string_view target(req.target().data(), req.target().size());
  return target.substr(0, target.find('?'));
}

// The paths the operations listener serves.
bool IsOpsPath(std::string_view target) {
  return target == "/metrics" || target == "/v2/health/live" || target == "/v2/health/ready" ||
         target == "/livez" || target == "/readyz";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> StartOpsListener(
    const std::optional<ServerOptions>& options, Handler& handler) {
  if (!options) return std::unique_ptr<Server>();
  auto shared = std::make_shared<Handler>(std::move(handler));
  handler = [shared](Request&& req, Responder respond) {
    if (PathOf(req) == "/metrics") {
      return respond(
          JsonError(Status::not_found, "no such endpoint: /metrics (see --metrics-listen)"));
    }
    (*shared)(std::move(req), std::move(respond));
  };
  Handler ops = [shared](Request&& req, Responder respond) {
    const std::string_view path = PathOf(req);
    if (!IsOpsPath(path))
      return respond(JsonError(Status::not_found, StrCat("no such endpoint: ", path)));
    (*shared)(std::move(req), std::move(respond));
  };
  ServerOptions o = *options;
  o.io_threads = 1;
  o.tls = nullptr;
  o.max_connections = std::min<size_t>(o.max_connections, 256);
  auto server = Server::Create(o, std::move(ops));
  if (!server.ok()) return server.status();
  if (absl::Status st = (*server)->Start(); !st.ok()) return st;
  log::Info("listening", {{"host", o.host}, {"port", (*server)->port()}, {"protocol", "metrics"}});
  return server;
}

}  // namespace galley::http
