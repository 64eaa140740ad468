#include "cli/flags.h"

#include <iostream>

#include "cli/listen.h"
#include "common/log.h"

namespace galley::cli {

void HttpFlags::Add(CLI::App* app) {
  Flag(app, "listen", listen,
       "HOST:PORT to listen on (port 0 picks a free port; 0.0.0.0 for every address)");
  Flag(app, "io-threads", io_threads,
       "HTTP I/O threads (galley serve: as many gRPC completion threads)")
      ->check(CLI::Range(1, 64));
  Flag(app, "default-timeout-ms", default_timeout_ms,
       "deadline of a request that sets none (0: none)")
      ->check(CLI::NonNegativeNumber);
  Flag(app, "max-body-bytes", max_body_bytes, "largest request body (413 beyond)");
  Flag(app, "max-header-bytes", max_header_bytes, "largest request header (431 beyond)");
  Flag(app, "max-connections", max_connections,
       "open connections; beyond, the longest-idle keep-alive connection is closed for a new one "
       "(503 when none is idle)");
  Flag(app, "max-connections-per-peer", max_connections_per_peer,
       "open connections from one client address (503 beyond)")
      ->check(CLI::PositiveNumber);
  Flag(app, "first-byte-timeout-ms", first_byte_timeout_ms,
       "a new connection's time to send its first request byte")
      ->check(CLI::PositiveNumber);
  Flag(app, "idle-timeout-ms", idle_timeout_ms, "keep-alive idle time before closing")
      ->check(CLI::PositiveNumber);
  Flag(app, "request-timeout-ms", request_timeout_ms,
       "time to receive a whole request once it starts (408 beyond)")
      ->check(CLI::PositiveNumber);
  Flag(app, "write-timeout-ms", write_timeout_ms, "time to send a response")
      ->check(CLI::PositiveNumber);
  Flag(app, "drain-delay-ms", drain_delay_ms, "after SIGTERM: serve, not ready, this long")
      ->check(CLI::NonNegativeNumber);
  Flag(app, "grace-period-ms", grace_period_ms, "after SIGTERM: exit within this")
      ->check(CLI::PositiveNumber);
  Flag(app, "log-level", log_level, "debug, info, warn or error");
  Flag(app, "metrics-listen", metrics_listen,
       "HOST:PORT for /metrics (and the probes) instead of --listen, e.g. 127.0.0.1:9090");
  Flag(app, "tls-cert", tls_cert,
       "PEM certificate chain: serve HTTPS (with --tls-key); reloaded when it changes");
  Flag(app, "tls-key", tls_key, "PEM private key of --tls-cert");
  Flag(app, "tls-client-ca", tls_client_ca,
       "PEM CA bundle: HTTPS clients must present a certificate it signed (mutual TLS)");
}

bool HttpFlags::Apply(http::ServerOptions& out) const {
  log::Level level;
  if (!log::ParseLevel(log_level, &level)) {
    std::cerr << "--log-level: expected debug, info, warn or error, got '" << log_level << "'\n";
    return false;
  }
  log::SetLevel(level);
  auto hp = ParseListen(listen);
  if (!hp.ok()) {
    std::cerr << "--listen: " << hp.status().message() << "\n";
    return false;
  }
  out.host = hp->host;
  out.port = hp->port;
  out.io_threads = io_threads;
  out.max_body_bytes = max_body_bytes;
  out.max_header_bytes = max_header_bytes;
  out.max_connections = max_connections;
  out.max_connections_per_peer = max_connections_per_peer;
  out.first_byte_timeout = std::chrono::milliseconds(first_byte_timeout_ms);
  out.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  out.request_timeout = std::chrono::milliseconds(request_timeout_ms);
  out.write_timeout = std::chrono::milliseconds(write_timeout_ms);
  if (!tls_cert.empty() || !tls_key.empty() || !tls_client_ca.empty()) {
    auto tls = http::TlsServerContext::Load({tls_cert, tls_key, tls_client_ca});
    if (!tls.ok()) {
      std::cerr << "--tls-cert/--tls-key/--tls-client-ca: " << tls.status().message() << "\n";
      return false;
    }
    out.tls = std::move(tls).value();
  }
  return true;
}

bool HttpFlags::ApplyMetrics(const http::ServerOptions& api,
                             std::optional<http::ServerOptions>& out) const {
  out.reset();
  if (metrics_listen.empty()) return true;
  auto hp = ParseListen(metrics_listen);
  if (!hp.ok()) {
    std::cerr << "--metrics-listen: " << hp.status().message() << "\n";
    return false;
  }
  http::ServerOptions o = api;
  o.host = hp->host;
  o.port = hp->port;
  out = o;
  return true;
}

}  // namespace galley::cli
