// GrpcFrontend::Impl (grpc_frontend_impl.h): the server's lifecycle (Start, Shutdown), the
// health status and its Watch streams, proxy forwarding, and the counting of calls.
#include "grpc/grpc_frontend_impl.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/thread_name.h"
#include "grpc/conn_acceptor.h"
#include "grpc/support/log.h"
#include "grpc/tls_relay.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_posix.h"
#include "protocol/request_metrics.h"

namespace galley::rpc {
namespace {

// The HTTP status whose `outcome` label a gRPC code is counted under, so that both front-ends
// fill the same series (protocol/request_metrics.h).
http::Status HttpEquivalent(::grpc::StatusCode code) {
  switch (code) {
    case ::grpc::StatusCode::OK:
      return http::Status::ok;
    case ::grpc::StatusCode::INVALID_ARGUMENT:
      return http::Status::bad_request;
    case ::grpc::StatusCode::NOT_FOUND:
      return http::Status::not_found;
    case ::grpc::StatusCode::RESOURCE_EXHAUSTED:
      return http::Status::too_many_requests;
    case ::grpc::StatusCode::DEADLINE_EXCEEDED:
      return http::Status::gateway_timeout;
    case ::grpc::StatusCode::UNAVAILABLE:
      return http::Status::service_unavailable;
    case ::grpc::StatusCode::CANCELLED:
      return static_cast<http::Status>(499);  // client_error
    default:
      return http::Status::internal_server_error;
  }
}

// The metadata a proxied call passes on as REST headers of the same names: the API key, and the
// W3C trace context (https://www.w3.org/TR/trace-context/ names the same `traceparent` and
// `tracestate` for every carrier).
constexpr std::string_view kForwardedMetadata[] = {"authorization", "x-api-key", "traceparent",
                                                   "tracestate"};

}  // namespace

// --- Impl

GrpcFrontend::Impl::Impl(inference::InferenceService* service, GrpcProxy proxy, GrpcOptions options)
    : service_(service),
      proxy_(std::move(proxy)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SteadyClock::Get()) {
  if (options_.metrics != nullptr && service_ != nullptr) {
    std::vector<std::string> names;
    for (const auto& md : service_->Models()) names.push_back(md.name);
    request_metrics_ =
        std::make_unique<protocol::RequestMetrics>(*options_.metrics, std::move(names));
  }
}

ServingStatus GrpcFrontend::Impl::CurrentStatus() const {
  return ServerReady() ? HealthResponse::SERVING : HealthResponse::NOT_SERVING;
}

void GrpcFrontend::Impl::AddWatcher(WatchCall* w) {
  absl::MutexLock l(&mu_);
  watchers_.insert(w);
  // Under mu_, so that no change between reading the status and registering is missed.
  if (shutting_down_) {
    w->End(HealthResponse::NOT_SERVING);
  } else {
    w->Update(CurrentStatus());
  }
}

void GrpcFrontend::Impl::RemoveWatcher(WatchCall* w) {
  absl::MutexLock l(&mu_);
  watchers_.erase(w);
}

void GrpcFrontend::Impl::RefreshHealth() {
  absl::MutexLock l(&mu_);
  if (shutting_down_) return;
  const ServingStatus status = CurrentStatus();
  for (WatchCall* w : watchers_) w->Update(status);
}

void GrpcFrontend::Impl::SetDraining() {
  draining_.store(true);
  RefreshHealth();
}

void GrpcFrontend::Impl::Record(Endpoint endpoint, std::string_view model, ::grpc::StatusCode code,
                                TimePoint start) {
  const double secs = std::chrono::duration<double>(clock_.Now() - start).count();
  if (request_metrics_) {
    request_metrics_->Record(endpoint, model.empty() ? -1 : request_metrics_->ModelIndex(model),
                             HttpEquivalent(code), secs);
  }
  if (log::Enabled(log::Level::kDebug)) {
    log::Debug("request", {{"protocol", "grpc"},
                           {"endpoint", protocol::EndpointName(endpoint)},
                           {"model", model},
                           {"grpc_code", static_cast<int>(code)},
                           {"duration_s", secs}});
  }
}

// gRPC core's own messages go to the process's JSON log as `grpc_core` lines instead of free
// text on stderr.
void LogFromGrpcCore(gpr_log_func_args* args) {
  const log::Level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? log::Level::kError
                           : args->severity == GPR_LOG_SEVERITY_INFO ? log::Level::kInfo
                                                                     : log::Level::kDebug;
  if (!log::Enabled(level)) return;
  log::Write(level, "grpc_core",
             {{"message", args->message != nullptr ? args->message : ""},
              {"file", args->file != nullptr ? args->file : ""},
              {"line", args->line}});
}

absl::Status GrpcFrontend::Impl::Start() {
  static std::once_flag route_logs;
  std::call_once(route_logs, [] { gpr_set_log_function(&LogFromGrpcCore); });
  absl::MutexLock l(&lifecycle_mu_);
  if (server_ || shut_down_)
    return absl::FailedPreconditionError("the gRPC front-end was started before");
  const std::string address = options_.host.find(':') != std::string::npos
                                  ? StrCat("[", options_.host, "]:", options_.port)
                                  : StrCat(options_.host, ":", options_.port);
  const bool tls = !options_.tls_cert.empty();
  ::grpc::ServerBuilder builder;
  int selected = 0;
  std::unique_ptr<TlsRelay> relay;
  if (tls) {  // before anything listens: a file that does not load stops the start
    TlsRelayOptions ro;
    ro.files = {options_.tls_cert, options_.tls_key, options_.tls_client_ca};
    ro.handshake_timeout = options_.first_byte_timeout;
    ro.threads = options_.completion_threads;
    auto made = TlsRelay::Create(std::move(ro));
    if (!made.ok()) {
      log::Error("grpc_listen_failed",
                 {{"address", address}, {"error", std::string(made.status().message())}});
      return absl::InvalidArgumentError(std::string(made.status().message()));
    }
    relay = std::move(made).value();
  }
  AcceptorOptions ao;
  ao.host = options_.host;
  ao.port = options_.port;
  ao.max_connections = options_.max_connections;
  ao.max_connections_per_peer = options_.max_connections_per_peer;
  ao.first_byte_timeout = options_.first_byte_timeout;
  auto listening = ConnectionAcceptor::Listen(ao);
  if (!listening.ok()) {
    log::Error("grpc_listen_failed",
               {{"address", address}, {"error", std::string(listening.status().message())}});
    return absl::UnavailableError(StrCat("cannot listen for gRPC on ", address));
  }
  std::unique_ptr<ConnectionAcceptor> acceptor = std::move(listening).value();
  selected = acceptor->port();
  // gRPC listens on no port of its own: connections come from the acceptor (through the TLS
  // relay with TLS on).
  ::grpc::ResourceQuota quota("galley-grpc");
  quota.Resize(options_.memory_quota_bytes);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             static_cast<int>(options_.max_connection_idle.count()));
  builder.RegisterService(&oip_);
  builder.RegisterService(&health_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_receive_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options_.max_send_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams);
  // Without this, a second server on the same port would share it silently (SO_REUSEPORT).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  cq_ = builder.AddCompletionQueue();
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || selected == 0) {
    server_.reset();
    {
      absl::MutexLock l(&cq_mu_);
      cq_closed_ = true;
    }
    cq_->Shutdown();
    PollCompletions();  // drains the queue, which gRPC requires before destroying it
    return absl::UnavailableError(StrCat("cannot listen for gRPC on ", address));
  }
  acceptor_ = std::move(acceptor);
  relay_ = std::move(relay);
  port_.store(selected);
  OfferSlots();  // each call that arrives offers the next slot of its kind
  for (int i = 0; i < options_.completion_threads; ++i) {
    cq_threads_.emplace_back([this, i] {
      SetThreadName("grpc-cq-", StrCat(i));
      PollCompletions();
    });
  }
  auto adopt = [server = server_.get()](int fd) { ::grpc::AddInsecureChannelFromFd(server, fd); };
  if (relay_) {
    acceptor_->Start([relay = relay_.get(), adopt](int fd) { relay->Relay(fd, adopt); });
  } else {
    acceptor_->Start(adopt);
  }
  return absl::OkStatus();
}

void GrpcFrontend::Impl::Shutdown(TimePoint deadline) {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  {
    absl::MutexLock l(&mu_);
    shutting_down_ = true;
    for (WatchCall* w : watchers_) w->End(HealthResponse::NOT_SERVING);
  }
  if (server_ == nullptr) return;
  if (acceptor_) acceptor_->Stop();  // no new connections
  const Duration left = deadline - std::chrono::steady_clock::now();
  if (left > std::chrono::hours(24 * 365)) {
    server_->Shutdown();
  } else {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(left));
  }
  // Every call is over (gRPC's Shutdown waits for that): close the queue, and let the
  // completion threads take what is left in it (the slots no call came for) and stop.
  {
    absl::MutexLock l(&cq_mu_);
    cq_closed_ = true;
  }
  cq_->Shutdown();
  for (std::thread& t : cq_threads_) t.join();
  cq_threads_.clear();
  if (relay_) relay_->Stop();  // after gRPC: its calls ran over the relay's connections
  // A forwarded request's answer may still come (its call was cancelled): it touches this.
  absl::MutexLock l(&forward_mu_);
  while (forwards_ != 0) forward_cv_.Wait(&forward_mu_);
}

void GrpcFrontend::Impl::Forward(const ::grpc::ServerContext& ctx, http::Request&& request,
                                 std::function<void(http::Response&&)> done) {
  const auto& metadata = ctx.client_metadata();
  for (std::string_view key : kForwardedMetadata) {
    auto it = metadata.find(::grpc::string_ref(key.data(), key.size()));
    if (it != metadata.end())
      request.set(key, std::string_view(it->second.data(), it->second.size()));
  }
  {
    absl::MutexLock l(&forward_mu_);
    ++forwards_;
  }
  proxy_.forward(std::move(request), [this, done = std::move(done)](http::Response&& res) {
    done(std::move(res));
    absl::MutexLock l(&forward_mu_);
    if (--forwards_ == 0) forward_cv_.SignalAll();
  });
}

}  // namespace galley::rpc
