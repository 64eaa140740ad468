#include "grpc/grpc_frontend.h"

#include <algorithm>
#include <climits>
#include <cstddef>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/strings.h"
#include "grpc/grpc_frontend_impl.h"

namespace galley::rpc {

::grpc::StatusCode GrpcCodeFor(inference::Outcome outcome) {
  switch (outcome) {
    case inference::Outcome::kOk:
      return ::grpc::StatusCode::OK;
    case inference::Outcome::kInvalidInput:
      return ::grpc::StatusCode::INVALID_ARGUMENT;
    case inference::Outcome::kModelNotFound:
      return ::grpc::StatusCode::NOT_FOUND;
    case inference::Outcome::kModelNotReady:
      return ::grpc::StatusCode::UNAVAILABLE;
    case inference::Outcome::kQueueFull:
      return ::grpc::StatusCode::RESOURCE_EXHAUSTED;
    case inference::Outcome::kDeadlineExceeded:
      return ::grpc::StatusCode::DEADLINE_EXCEEDED;
    case inference::Outcome::kShuttingDown:
      return ::grpc::StatusCode::UNAVAILABLE;
    case inference::Outcome::kInternal:
      return ::grpc::StatusCode::INTERNAL;
  }
  return ::grpc::StatusCode::INTERNAL;
}

// --- GrpcFrontend

GrpcOptions GrpcOptionsLike(const http::ServerOptions& http, int port) {
  GrpcOptions go;
  go.host = http.host;
  go.port = port;
  go.max_receive_message_bytes = http.max_body_bytes;
  go.completion_threads = http.io_threads;
  go.max_connections = http.max_connections;
  go.max_connections_per_peer = http.max_connections_per_peer;
  go.first_byte_timeout = std::min(http.first_byte_timeout, http.idle_timeout);
  go.max_connection_idle = http.idle_timeout;
  if (http.tls) {  // the same certificate, key and client CA as HTTPS
    go.tls_cert = http.tls->files().cert;
    go.tls_key = http.tls->files().key;
    go.tls_client_ca = http.tls->files().client_ca;
  }
  return go;
}

namespace {

absl::Status CheckOptions(const GrpcOptions& options) {
  if (options.host.empty()) return absl::InvalidArgumentError("gRPC host must not be empty");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(StrCat("gRPC port ", options.port, " is not in 0..65535"));
  }
  for (size_t v : {options.max_receive_message_bytes, options.max_send_message_bytes}) {
    if (v == 0 || v > static_cast<size_t>(INT_MAX)) {
      return absl::InvalidArgumentError(
          StrCat("gRPC message size limit ", v, " is not in 1..", INT_MAX));
    }
  }
  if (options.completion_threads < 1 || options.completion_threads > 64) {
    return absl::InvalidArgumentError(
        StrCat("gRPC completion_threads ", options.completion_threads, " is not in 1..64"));
  }
  if (options.max_concurrent_streams < 1) {
    return absl::InvalidArgumentError("gRPC max_concurrent_streams must be at least 1");
  }
  if (options.default_timeout.count() < 0) {
    return absl::InvalidArgumentError("gRPC default timeout must not be negative");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcFrontend>> GrpcFrontend::Create(
    inference::InferenceService& service, GrpcOptions options) {
  if (absl::Status st = CheckOptions(options); !st.ok()) return st;
  return std::unique_ptr<GrpcFrontend>(
      new GrpcFrontend(std::make_unique<Impl>(&service, GrpcProxy{}, std::move(options))));
}

absl::StatusOr<std::unique_ptr<GrpcFrontend>> GrpcFrontend::CreateProxy(GrpcProxy proxy,
                                                                        GrpcOptions options) {
  if (!proxy.forward || !proxy.ready) {
    return absl::InvalidArgumentError("a gRPC proxy needs a handler and a readiness check");
  }
  if (options.metrics != nullptr) {
    return absl::InvalidArgumentError(
        "a gRPC proxy counts no requests itself (metrics must be null)");
  }
  if (absl::Status st = CheckOptions(options); !st.ok()) return st;
  return std::unique_ptr<GrpcFrontend>(
      new GrpcFrontend(std::make_unique<Impl>(nullptr, std::move(proxy), std::move(options))));
}

GrpcFrontend::GrpcFrontend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcFrontend::~GrpcFrontend() = default;

absl::Status GrpcFrontend::Start() { return impl_->Start(); }
int GrpcFrontend::port() const { return impl_->port(); }
void GrpcFrontend::RefreshHealth() { impl_->RefreshHealth(); }
void GrpcFrontend::SetDraining() { impl_->SetDraining(); }
void GrpcFrontend::Shutdown(TimePoint deadline) { impl_->Shutdown(deadline); }

}  // namespace galley::rpc
