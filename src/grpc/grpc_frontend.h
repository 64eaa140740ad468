// The gRPC front-end of `galley serve`: the Open Inference Protocol's GRPCInferenceService
// (proto/grpc_service.proto) and the standard grpc.health.v1.Health service. Like the REST
// front-end it reaches models only through inference::InferenceService, checks requests with the
// same checker (protocol/oip_json.h), and counts them in the same metrics.
//
// Threads: every call runs on gRPC's asynchronous API, on `completion_threads` threads of ours
// that poll the server's completion queue (and do the socket work gRPC hands them). They answer
// the unary calls other than ModelInfer at once; a ModelInfer call they decode, check and queue
// for its model, and it is answered from the model worker's callback, or by its cancellation,
// whichever comes first (an atomic claim decides). Health Watch streams are written from
// whichever thread calls SetDraining/RefreshHealth/Shutdown, under the front-end's mutex, or from
// a completion thread when a write ends. Nothing here holds a lock across model work. (No method
// is on the callback API: with one there, gRPC 1.51 starts callback-queue threads that also poll
// the sockets and add hand-offs per call; leaving it cut ~12% of the CPU per ModelInfer on one
// core, bench/RESULTS.md.)
//
// Proxy mode (CreateProxy, the gateway's gRPC door): the same services, with ModelInfer,
// ModelMetadata and ModelReady forwarded as the REST requests of grpc/oip_rest.h to an HTTP
// handler (the gateway's own), and its answers converted back; the handler decides everything
// else (API keys from the `authorization` / `x-api-key` metadata, breakers, retries, fallback).
//
// Namespace galley::rpc rather than galley::grpc, so that `grpc::` keeps naming the library.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/lifecycle.h"
#include "grpcpp/support/status_code_enum.h"
#include "http/server.h"
#include "inference/inference_service.h"
#include "protocol/frontend_metrics.h"
#include "tracing/tracer.h"

namespace galley::rpc {

struct GrpcOptions {
  std::string host = "127.0.0.1";              // an IPv6 host is written without brackets
  int port = 8081;                             // 0 picks a free port; see GrpcFrontend::port()
  size_t max_receive_message_bytes = 1 << 20;  // as http::ServerOptions::max_body_bytes
  size_t max_send_message_bytes = 1 << 20;
  int max_concurrent_streams = 1024;  // per connection (HTTP/2 streams)
  // Connection limits (conn_acceptor.h): open connections (a newcomer beyond is closed), a new
  // connection's time to send its first byte, and the idle time after which gRPC sends GOAWAY
  // to a connection with no call (GRPC_ARG_MAX_CONNECTION_IDLE_MS).
  size_t max_connections = 4096;
  size_t max_connections_per_peer = 1024;
  std::chrono::milliseconds first_byte_timeout{5'000};
  std::chrono::milliseconds max_connection_idle{60'000};
  // Memory gRPC may use for its connections and calls (a grpc::ResourceQuota); under pressure it
  // shrinks buffers and closes idle connections rather than grow.
  size_t memory_quota_bytes = 256u << 20;
  // TLS (PEM files; a cert and key turn it on; a client CA requires client certificates),
  // terminated by the TLS relay (tls_relay.h) behind the connection acceptor, so the acceptor's
  // limits hold with TLS too; the files are reloaded when they change, and a handshake must
  // finish within first_byte_timeout.
  std::string tls_cert, tls_key, tls_client_ca;
  // Threads that poll ModelInfer's completion queue: they do the socket work, decode requests
  // and queue them for the models (1..64); as http::ServerOptions::io_threads.
  int completion_threads = 2;
  // Deadline of a request that sets none (neither a gRPC deadline nor parameter "timeout");
  // 0: none. As the REST front-end's default timeout.
  std::chrono::milliseconds default_timeout{30'000};
  std::string server_name = "galley";
  std::string server_version;
  // Where requests are counted (galley_requests_total and galley_request_duration_seconds, with
  // the REST front-end's endpoint and outcome labels); null: not counted. Not owned.
  protocol::FrontendMetrics* metrics = nullptr;
  // The clock of request deadlines; must be the model runners'. Null: SteadyClock. Not owned.
  const Clock* clock = nullptr;
  // Where the spans of ModelInfer calls go (the W3C `traceparent` of the call's metadata is
  // continued, as the REST front-end does with the header); null: no tracing. Not owned.
  tracing::Tracer* tracer = nullptr;
};

// Options for a gRPC front-end beside the HTTP server of `http`: on its host, at `port`, with its
// body limit (as the message limit), I/O threads, connection caps, first-byte and idle timeouts,
// and its TLS certificate, key and client CA.
GrpcOptions GrpcOptionsLike(const http::ServerOptions& http, int port);

// The gRPC status code for an outcome: kOk OK, kInvalidInput INVALID_ARGUMENT, kModelNotFound
// NOT_FOUND, kModelNotReady UNAVAILABLE, kQueueFull RESOURCE_EXHAUSTED, kDeadlineExceeded
// DEADLINE_EXCEEDED, kShuttingDown UNAVAILABLE, kInternal INTERNAL.
::grpc::StatusCode GrpcCodeFor(inference::Outcome outcome);

// Where a proxy front-end sends its calls.
struct GrpcProxy {
  // Answers REST requests; it must answer every request it is given, once, from any thread.
  http::Handler forward;
  // Whether the server is ready (ServerReady and health) when not draining.
  std::function<bool()> ready;
};

// Lifecycle: Create() -> Start() -> [SetDraining()] -> Shutdown(deadline). Every method is
// thread-safe. `service` (and options.metrics, options.clock) must outlive the front-end.
// A Component (common/lifecycle.h): BeginDrain() is SetDraining(), Drain(deadline) is
// Shutdown(deadline), Stop() is Shutdown(now).
class GrpcFrontend final : public Component {
 public:
  // Checks the options; binds nothing yet. InvalidArgument for a bad option.
  static absl::StatusOr<std::unique_ptr<GrpcFrontend>> Create(inference::InferenceService& service,
                                                              GrpcOptions options);
  // A proxy front-end (see above); options.metrics must be null (the handler counts requests).
  static absl::StatusOr<std::unique_ptr<GrpcFrontend>> CreateProxy(GrpcProxy proxy,
                                                                   GrpcOptions options);
  // Shuts down at once (in-flight calls are cancelled) if Shutdown() was not called.
  ~GrpcFrontend();
  GrpcFrontend(const GrpcFrontend&) = delete;
  GrpcFrontend& operator=(const GrpcFrontend&) = delete;

  // Binds host:port and starts serving. Unavailable if the address cannot be bound (in use, or
  // a host that does not resolve); FailedPrecondition if called twice.
  absl::Status Start() override;
  // The bound port (the chosen one when options.port was 0); 0 before Start().
  int port() const;

  // Re-reads service.Ready() and tells health Watch streams if the status changed. Call when
  // readiness changes other than by SetDraining() (e.g. once the models are loaded).
  void RefreshHealth();
  // The server is about to stop: health turns NOT_SERVING at once (Check and every Watch stream)
  // and ServerReady answers false. Requests are still served. Idempotent.
  void SetDraining();
  // Stops accepting calls, lets calls in flight finish until `deadline`, then cancels what is
  // left, and returns when no call is left. Watch streams get NOT_SERVING and end with
  // UNAVAILABLE at once. Idempotent; a second call waits for the first.
  void Shutdown(TimePoint deadline);

  std::string_view component_name() const override { return "grpc"; }
  void BeginDrain() override { SetDraining(); }
  bool Drain(TimePoint deadline) override {
    Shutdown(deadline);
    return true;
  }
  void Stop() override { Shutdown(std::chrono::steady_clock::now()); }

 private:
  class Impl;
  explicit GrpcFrontend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace galley::rpc
