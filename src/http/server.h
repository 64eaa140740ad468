// An HTTP/1.1 server on Boost.Beast with keep-alive and the limits a public endpoint needs:
// body size (413), header size (431), open connections (at the cap the longest-idle keep-alive
// connection makes room; 503 when none is idle), connections per client address (503), a short
// time for a new connection's first byte, keep-alive idle time, and a deadline for receiving a
// whole request (a client that trickles bytes is cut off with 408).
//
// Handlers run on an I/O thread and must not block: they answer through a Responder, which may
// be called later from any thread (e.g. a model worker). See docs/threading.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/lifecycle.h"
#include "http/message.h"
#include "http/tls.h"

namespace galley::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0 picks a free port; see Server::port()
  int io_threads = 2;
  size_t max_body_bytes = 1 << 20;         // larger bodies get 413
  size_t max_header_bytes = 16 << 10;      // larger header blocks get 431
  size_t max_connections = 4096;           // at the cap: evict the longest idle, else 503
  size_t max_connections_per_peer = 1024;  // from one client address; further get 503
  std::chrono::milliseconds first_byte_timeout{5'000};  // a new connection's first byte
  std::chrono::milliseconds idle_timeout{60'000};       // keep-alive: idle time before close
  std::chrono::milliseconds request_timeout{10'000};    // first byte to last byte of a request
  std::chrono::milliseconds write_timeout{30'000};      // sending one response
  // Set: HTTPS only (every connection starts with a TLS handshake; see tls.h).
  std::shared_ptr<TlsServerContext> tls;
};

// Sends the response for one request. Call exactly once, from any thread.
using Responder = std::function<void(Response&&)>;
// Handles one request. Runs on an I/O thread; must not block.
using Handler = std::function<void(Request&& request, Responder respond)>;
// Told of each answer the server gives on its own, before routing (408, 413, 431, a malformed
// request's 400, or 503 for too many connections). Runs on an I/O thread; must not block.
using RejectHook = std::function<void(Status status)>;

// Counters for tests and metrics. All monotonically increasing except `open_connections`.
struct ServerStats {
  std::atomic<int64_t> open_connections{0};
  std::atomic<int64_t> accepted_connections{0};
  std::atomic<int64_t> rejected_connections{0};
  std::atomic<int64_t> evicted_connections{0};  // idle ones closed to make room at the cap
  std::atomic<int64_t> requests{0};
};

// A Component (common/lifecycle.h): BeginDrain() is CloseAfterEachAnswer(); Drain(deadline) is
// StopAccepting() and WaitForConnectionsClosed(deadline).
class Server : public Component {
 public:
  // Binds and listens (so port() is valid on return), but accepts nothing until Start().
  static absl::StatusOr<std::unique_ptr<Server>> Create(const ServerOptions& options,
                                                        Handler handler,
                                                        RejectHook on_rejected = {});
  virtual ~Server() = default;

  // The bound port (the chosen one when options.port was 0).
  virtual uint16_t port() const = 0;
  // Starts the I/O threads and accepting. Never fails: the port was bound by Create().
  absl::Status Start() override = 0;
  // Starts a drain: from now on every answer carries `Connection: close`, so keep-alive clients
  // open a new connection (to another instance) for their next request, while new connections
  // are still accepted. Thread-safe, idempotent.
  virtual void CloseAfterEachAnswer() = 0;
  // Stops accepting new connections and closes idle keep-alive connections (one whose next
  // request is already arriving reads and answers it); requests already received are answered
  // (with `Connection: close`). Thread-safe, idempotent.
  void StopAccepting() override = 0;
  // Blocks until no connection is open or `deadline` passes; true if none is open.
  virtual bool WaitForConnectionsClosed(std::chrono::steady_clock::time_point deadline) = 0;
  // Closes everything and joins the I/O threads. Idempotent.
  void Stop() override = 0;
  std::string_view component_name() const override { return "http"; }
  void BeginDrain() override { CloseAfterEachAnswer(); }
  bool Drain(TimePoint deadline) override {
    StopAccepting();
    return WaitForConnectionsClosed(deadline);
  }
  virtual const ServerStats& stats() const = 0;
};

}  // namespace galley::http
