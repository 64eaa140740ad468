// TLS for the gRPC front-end, in front of gRPC rather than inside it: gRPC 1.51 takes TLS only on
// its own listener, where the connection acceptor's limits (conn_acceptor.h) cannot apply. With
// the relay, the acceptor admits TCP connections as it does without TLS (the caps, the first-byte
// timeout); the relay finishes each one's TLS handshake (within a timeout, HTTP/2 selected by
// ALPN, client certificates checked when a client CA is set, the files reloaded when they
// change, http/tls.h), and joins it to a new gRPC channel over one end of a socket pair, copying
// bytes both ways. The TCP connection is closed when either side ends, which is when the
// acceptor stops counting it.
//
// Threads: `threads` threads of its own run every handshake and copy (Boost.Asio).
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "http/tls.h"

namespace galley::rpc {

struct TlsRelayOptions {
  http::TlsServerFiles files;
  std::chrono::milliseconds handshake_timeout{5'000};
  int threads = 1;
};

class TlsRelay {
 public:
  // Loads the files; InvalidArgument naming one that does not load.
  static absl::StatusOr<std::unique_ptr<TlsRelay>> Create(TlsRelayOptions options);
  ~TlsRelay();  // Stop()
  TlsRelay(const TlsRelay&) = delete;
  TlsRelay& operator=(const TlsRelay&) = delete;

  // Takes `tcp_fd` (a connected TCP socket, which it owns from now on). After the handshake,
  // `adopt(fd)` gets the plaintext end for gRPC, on a relay thread.
  void Relay(int tcp_fd, std::function<void(int fd)> adopt);
  // Closes every connection and joins the threads. Idempotent.
  void Stop();

 private:
  class Impl;
  explicit TlsRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace galley::rpc
