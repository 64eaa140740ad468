#include "cli/ops_server.h"

namespace galley::cli {

absl::StatusOr<std::unique_ptr<http::Server>> MakeOpsServer(const HostPort& listen,
                                                            OpsEndpoints e) {
  http::ServerOptions so;
  so.host = listen.host;
  so.port = listen.port;
  so.io_threads = 1;
  so.max_connections = 64;
  return http::Server::Create(so, [e = std::move(e)](http::Request&& req, http::Responder respond) {
    const std::string_view target(req.target().data(), req.target().size());
    if (target == "/metrics") {
      http::Response res = http::JsonResponse(http::Status::ok, e.exposition());
      res.set(boost::beast::http::field::content_type, "text/plain; version=0.0.4");
      return respond(std::move(res));
    }
    if (target == "/healthz")
      return respond(http::JsonResponse(http::Status::ok, R"({"ok":true})"));
    if (target == "/readyz") {
      return respond(http::JsonResponse(
          e.ready() ? http::Status::ok : http::Status::service_unavailable, e.ready_body()));
    }
    respond(http::JsonError(http::Status::not_found, "not found"));
  });
}

}  // namespace galley::cli
