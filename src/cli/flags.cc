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
  DurationFlag(app, "default-timeout-ms", default_timeout,
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
  DurationFlag(app, "first-byte-timeout-ms", first_byte_timeout,
               "a new connection's time to send its first request byte")
      ->check(CLI::PositiveNumber);
  DurationFlag(app, "idle-timeout-ms", idle_timeout, "keep-alive idle time before closing")
      ->check(CLI::PositiveNumber);
  DurationFlag(app, "request-timeout-ms", request_timeout,
               "time to receive a whole request once it starts (408 beyond)")
      ->check(CLI::PositiveNumber);
  DurationFlag(app, "write-timeout-ms", write_timeout, "time to send a response")
      ->check(CLI::PositiveNumber);
  DurationFlag(app, "drain-delay-ms", drain_delay, "after SIGTERM: serve, not ready, this long")
      ->check(CLI::NonNegativeNumber);
  DurationFlag(app, "grace-period-ms", grace_period, "after SIGTERM: exit within this")
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

absl::Status HttpFlags::Validate() const {
  log::Level level;
  if (!log::ParseLevel(log_level, &level)) {
    return absl::InvalidArgumentError("--log-level: expected debug, info, warn or error, got '" +
                                      log_level + "'");
  }
  if (auto hp = ParseListen(listen); !hp.ok()) {
    return absl::InvalidArgumentError("--listen: " + std::string(hp.status().message()));
  }
  if (!metrics_listen.empty()) {
    if (auto hp = ParseListen(metrics_listen); !hp.ok()) {
      return absl::InvalidArgumentError("--metrics-listen: " + std::string(hp.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status HttpFlags::Apply(http::ServerOptions& api,
                              std::optional<http::ServerOptions>& ops) const {
  if (absl::Status st = Validate(); !st.ok()) return st;
  log::Level level;
  log::ParseLevel(log_level, &level);
  log::SetLevel(level);
  const auto hp = ParseListen(listen);
  api.host = hp->host;
  api.port = hp->port;
  api.io_threads = io_threads;
  api.max_body_bytes = max_body_bytes;
  api.max_header_bytes = max_header_bytes;
  api.max_connections = max_connections;
  api.max_connections_per_peer = max_connections_per_peer;
  api.first_byte_timeout = first_byte_timeout;
  api.idle_timeout = idle_timeout;
  api.request_timeout = request_timeout;
  api.write_timeout = write_timeout;
  if (!tls_cert.empty() || !tls_key.empty() || !tls_client_ca.empty()) {
    auto tls = http::TlsServerContext::Load({tls_cert, tls_key, tls_client_ca});
    if (!tls.ok()) {
      return absl::InvalidArgumentError("--tls-cert/--tls-key/--tls-client-ca: " +
                                        std::string(tls.status().message()));
    }
    api.tls = std::move(tls).value();
  }
  ops.reset();
  if (!metrics_listen.empty()) {
    const auto ops_hp = ParseListen(metrics_listen);
    http::ServerOptions o = api;
    o.host = ops_hp->host;
    o.port = ops_hp->port;
    ops = o;
  }
  return absl::OkStatus();
}

}  // namespace galley::cli
