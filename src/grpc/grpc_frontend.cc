#include "grpc/grpc_frontend.h"

#include <atomic>
#include <climits>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/log.h"
#include "common/strings.h"
#include "grpc/oip_proto.h"
#include "grpc_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "health.grpc.pb.h"
#include "serve/request_metrics.h"

namespace galley::rpc {
namespace {

using HealthResponse = ::grpc::health::v1::HealthCheckResponse;
using ServingStatus = HealthResponse::ServingStatus;
using serve::Endpoint;

constexpr std::string_view kOipService = "inference.GRPCInferenceService";

// The HTTP status whose `outcome` label a gRPC code is counted under, so that both front-ends
// fill the same series (serve/request_metrics.h).
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

std::string_view View(const std::string& s) { return {s.data(), s.size()}; }

std::string UnknownModel(std::string_view name, std::string_view version) {
  if (version.empty()) return StrCat("unknown model '", name, "'");
  return StrCat("unknown model '", name, "' version '", version, "'");
}

// UNAVAILABLE with the reason for a model the server knows but cannot serve (a broken config or
// model file), else NOT_FOUND.
::grpc::Status MissingModel(const serve::InferenceService& service, const std::string& name,
                            const std::string& version) {
  std::string message = service.UnavailableMessage(View(name));
  if (message.empty()) return {::grpc::StatusCode::NOT_FOUND, UnknownModel(name, version)};
  return {::grpc::StatusCode::UNAVAILABLE, std::move(message)};
}

// Claimed by whoever answers a call first: the model's callback or a cancellation. Shared, so
// that a callback arriving after the call ended touches no freed memory.
struct AnswerClaim {
  std::atomic<bool> taken{false};
  bool TryTake() { return !taken.exchange(true); }
};

}  // namespace

::grpc::StatusCode GrpcCodeFor(serve::Outcome outcome) {
  switch (outcome) {
    case serve::Outcome::kOk:
      return ::grpc::StatusCode::OK;
    case serve::Outcome::kInvalidInput:
      return ::grpc::StatusCode::INVALID_ARGUMENT;
    case serve::Outcome::kModelNotFound:
      return ::grpc::StatusCode::NOT_FOUND;
    case serve::Outcome::kModelNotReady:
      return ::grpc::StatusCode::UNAVAILABLE;
    case serve::Outcome::kQueueFull:
      return ::grpc::StatusCode::RESOURCE_EXHAUSTED;
    case serve::Outcome::kDeadlineExceeded:
      return ::grpc::StatusCode::DEADLINE_EXCEEDED;
    case serve::Outcome::kShuttingDown:
      return ::grpc::StatusCode::UNAVAILABLE;
    case serve::Outcome::kInternal:
      return ::grpc::StatusCode::INTERNAL;
  }
  return ::grpc::StatusCode::INTERNAL;
}

class GrpcFrontend::Impl {
 public:
  Impl(serve::InferenceService& service, GrpcOptions options);
  ~Impl() { Shutdown(std::chrono::steady_clock::now()); }

  absl::Status Start();
  int port() const { return port_.load(); }
  void RefreshHealth();
  void SetDraining();
  void Shutdown(TimePoint deadline);

  class OipService;
  class HealthService;
  class InferCall;
  class WatchReactor;

 private:
  // The health status of the server (and of the inference service) now.
  ServingStatus CurrentStatus() const;
  bool ServerReady() const { return !draining_.load() && service_.Ready(); }
  void AddWatcher(WatchReactor* w);
  void RemoveWatcher(WatchReactor* w);
  // Counts a finished call that started at `start`.
  void Record(Endpoint endpoint, std::string_view model, ::grpc::StatusCode code, TimePoint start);
  // Finishes a unary call at once (on gRPC's default reactor) and counts it.
  ::grpc::ServerUnaryReactor* Answer(::grpc::CallbackServerContext* ctx, Endpoint endpoint,
                                     std::string_view model, TimePoint start,
                                     ::grpc::Status status);
  // Offers the server one more ModelInfer call slot, unless the queue is closed.
  void RequestInferCall();
  // Runs on each completion thread: takes ModelInfer events until the queue is shut down.
  void PollCompletions();

  serve::InferenceService& service_;
  const GrpcOptions options_;
  const Clock& clock_;
  std::unique_ptr<serve::RequestMetrics> request_metrics_;  // null: not counted
  std::atomic<bool> draining_{false};
  std::atomic<int> port_{0};

  std::mutex mu_;
  std::set<WatchReactor*> watchers_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  std::mutex lifecycle_mu_;  // serialises Start() and Shutdown(); taken before mu_
  bool shut_down_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  // ModelInfer's completion queue and the threads that poll it. cq_mu_ makes starting an
  // operation on the queue and shutting it down exclusive (gRPC forbids the former after the
  // latter); it is held only for the moment an operation is started. The queue outlives the server
  // (gRPC destroys a server before its queues).
  std::unique_ptr<::grpc::ServerCompletionQueue> cq_;
  std::vector<std::thread> cq_threads_;
  std::mutex cq_mu_;
  bool cq_closed_ ABSL_GUARDED_BY(cq_mu_) = false;
  // The services outlive the server, which refers to them.
  std::unique_ptr<OipService> oip_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<::grpc::Server> server_ ABSL_GUARDED_BY(lifecycle_mu_);
};

// --- GRPCInferenceService

// ModelInfer is served on the asynchronous API (Impl::InferCall), the rest on the callback API.
// (A method turns asynchronous only from the synchronous default, so the asynchronous wrapper
// goes innermost.)
using GIS = inference::GRPCInferenceService;
using OipServiceBase = GIS::WithCallbackMethod_ServerLive<GIS::WithCallbackMethod_ServerReady<
    GIS::WithCallbackMethod_ModelReady<GIS::WithCallbackMethod_ServerMetadata<
        GIS::WithCallbackMethod_ModelMetadata<GIS::WithAsyncMethod_ModelInfer<GIS::Service>>>>>>;

class GrpcFrontend::Impl::OipService final : public OipServiceBase {
 public:
  explicit OipService(Impl& impl) : impl_(impl) {}

  ::grpc::ServerUnaryReactor* ServerLive(::grpc::CallbackServerContext* ctx,
                                         const inference::ServerLiveRequest*,
                                         inference::ServerLiveResponse* resp) override {
    const TimePoint start = impl_.clock_.Now();
    resp->set_live(true);
    return impl_.Answer(ctx, Endpoint::kHealthLive, "", start, ::grpc::Status::OK);
  }

  ::grpc::ServerUnaryReactor* ServerReady(::grpc::CallbackServerContext* ctx,
                                          const inference::ServerReadyRequest*,
                                          inference::ServerReadyResponse* resp) override {
    const TimePoint start = impl_.clock_.Now();
    resp->set_ready(impl_.ServerReady());
    return impl_.Answer(ctx, Endpoint::kHealthReady, "", start, ::grpc::Status::OK);
  }

  ::grpc::ServerUnaryReactor* ModelReady(::grpc::CallbackServerContext* ctx,
                                         const inference::ModelReadyRequest* req,
                                         inference::ModelReadyResponse* resp) override {
    const TimePoint start = impl_.clock_.Now();
    // An unknown model or version is not ready, with an OK status, as Triton answers
    // (TRITONSERVER_ServerModelIsReady; triton-inference-server/core#508); the REST twin is a 404.
    if (!impl_.service_.FindModel(View(req->name()), View(req->version()))) {
      resp->set_ready(false);
      return impl_.Answer(ctx, Endpoint::kModelReady, "", start, ::grpc::Status::OK);
    }
    resp->set_ready(impl_.service_.ModelReady(View(req->name()), View(req->version())));
    return impl_.Answer(ctx, Endpoint::kModelReady, req->name(), start, ::grpc::Status::OK);
  }

  ::grpc::ServerUnaryReactor* ServerMetadata(::grpc::CallbackServerContext* ctx,
                                             const inference::ServerMetadataRequest*,
                                             inference::ServerMetadataResponse* resp) override {
    const TimePoint start = impl_.clock_.Now();
    resp->set_name(impl_.options_.server_name);
    resp->set_version(impl_.options_.server_version);
    return impl_.Answer(ctx, Endpoint::kServerMetadata, "", start, ::grpc::Status::OK);
  }

  ::grpc::ServerUnaryReactor* ModelMetadata(::grpc::CallbackServerContext* ctx,
                                            const inference::ModelMetadataRequest* req,
                                            inference::ModelMetadataResponse* resp) override {
    const TimePoint start = impl_.clock_.Now();
    auto md = impl_.service_.FindModel(View(req->name()), View(req->version()));
    if (!md) {
      return impl_.Answer(ctx, Endpoint::kModelMetadata, "", start,
                          MissingModel(impl_.service_, req->name(), req->version()));
    }
    *resp = EncodeModelMetadata(*md);
    return impl_.Answer(ctx, Endpoint::kModelMetadata, req->name(), start, ::grpc::Status::OK);
  }

 private:
  Impl& impl_;
};

// One ModelInfer call on gRPC's asynchronous API, from the slot offered to the server to its last
// event. Its events come to the completion threads as the call's address with the event in the
// low bits. The call is answered once, by the model's callback or by its cancellation (the client
// went away, its deadline passed, or Shutdown's deadline passed), whichever takes the claim first;
// it is deleted when both its done event and the end of its answer have come (two references;
// three, while its arrival is handled). The model's callback may come after that: it then
// touches only the shared claim.
class GrpcFrontend::Impl::InferCall {
 public:
  enum Event : uintptr_t { kArrived = 0, kDone = 1, kSent = 2 };
  static constexpr uintptr_t kEventBits = 3;

  explicit InferCall(Impl& impl) : impl_(impl), responder_(&ctx_) {}

  // Offers the slot to the server. Only with impl.cq_mu_ held and the queue open.
  void Offer(::grpc::ServerCompletionQueue* cq) {
    ctx_.AsyncNotifyWhenDone(Tag(kDone));
    impl_.oip_->RequestModelInfer(&ctx_, &request_, &responder_, cq, cq, Tag(kArrived));
  }

  // Hands a completion-queue event to its call.
  static void Dispatch(void* tag, bool ok) {
    const auto bits = reinterpret_cast<uintptr_t>(tag);
    auto* call = reinterpret_cast<InferCall*>(bits & ~kEventBits);
    call->On(static_cast<Event>(bits & kEventBits), ok);
  }

 private:
  void* Tag(Event e) { return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(this) | e); }

  void On(Event e, bool ok) {
    switch (e) {
      case kArrived:
        if (!ok) {  // the server is shutting down; no call came, and no done event will
          delete this;
          return;
        }
        impl_.RequestInferCall();  // the next call's slot first
        Serve();
        Release();  // the arrival's reference
        return;
      case kDone:
        if (claim_->TryTake()) {  // not answered: cancelled (a passed deadline cancels too)
          const bool expired = ctx_.deadline() <= std::chrono::system_clock::now();
          impl_.Record(Endpoint::kInfer, request_.model_name(),
                       expired ? ::grpc::StatusCode::DEADLINE_EXCEEDED
                               : ::grpc::StatusCode::CANCELLED,
                       start_);
          Release();  // the answer's reference: there will be none
        }
        Release();
        return;
      case kSent:
        Release();
        return;
    }
  }

  void Release() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Checks the request and queues it for its model, or answers at once.
  void Serve();

  // Counts and sends the answer. Only the holder of the claim calls it, once.
  void Reply(const ::grpc::Status& status) {
    impl_.Record(Endpoint::kInfer, request_.model_name(), status.error_code(), start_);
    {
      std::lock_guard<std::mutex> l(impl_.cq_mu_);
      if (!impl_.cq_closed_) {
        if (status.ok()) {
          responder_.Finish(response_, status, Tag(kSent));
        } else {
          responder_.FinishWithError(status, Tag(kSent));
        }
        return;
      }
    }
    Release();  // the queue is closed: nothing can be sent
  }

  // Replies with an error if the claim is still free (it is, before the request is queued).
  void Fail(::grpc::StatusCode code, std::string message) {
    if (claim_->TryTake()) Reply(::grpc::Status(code, std::move(message)));
  }

  Impl& impl_;
  ::grpc::ServerContext ctx_;
  inference::ModelInferRequest request_;
  inference::ModelInferResponse response_;
  ::grpc::ServerAsyncResponseWriter<inference::ModelInferResponse> responder_;
  TimePoint start_{};
  // The done event's, the answer's, and the arrival's: gRPC starts watching for the done event
  // as it hands out the arrival, so on another completion thread the done event (a cancelled
  // call) can come while the arrival is still being handled.
  std::atomic<int> refs_{3};
  const std::shared_ptr<AnswerClaim> claim_ = std::make_shared<AnswerClaim>();
};

void GrpcFrontend::Impl::InferCall::Serve() {
  start_ = impl_.clock_.Now();
  const inference::ModelInferRequest& req = request_;
  auto md = impl_.service_.FindModel(View(req.model_name()), View(req.model_version()));
  if (!md) {
    ::grpc::Status st = MissingModel(impl_.service_, req.model_name(), req.model_version());
    return Fail(st.error_code(), st.error_message());
  }
  auto decoded = DecodeInferRequest(req, *md);
  if (!decoded.ok()) {
    return Fail(::grpc::StatusCode::INVALID_ARGUMENT, std::string(decoded.status().message()));
  }
  std::optional<Duration> client_left;
  if (const auto dl = ctx_.deadline(); dl != std::chrono::system_clock::time_point::max()) {
    client_left = std::chrono::duration_cast<Duration>(dl - std::chrono::system_clock::now());
    if (*client_left <= Duration::zero()) {
      return Fail(::grpc::StatusCode::DEADLINE_EXCEEDED,
                  "the deadline passed before the request was queued");
    }
  }
  serve::InferRequest ir;
  ir.model = req.model_name();
  ir.version = req.model_version();
  ir.deadline =
      RequestDeadline(client_left, decoded->timeout_us, impl_.options_.default_timeout, start_);
  ir.arrival = start_;
  ir.input = std::move(decoded->input);
  auto shared_md = std::make_shared<const model::ModelMetadata>(std::move(*md));
  impl_.service_.Infer(std::move(ir), [this, claim = claim_, shared_md,
                                       id = std::move(decoded->id),
                                       outputs = std::move(decoded->outputs)](
                                          serve::InferResult&& r) {
    // Whoever takes the claim answers; the call lives until it has.
    if (!claim->TryTake()) return;
    if (r.outcome != serve::Outcome::kOk) {
      return Reply(::grpc::Status(GrpcCodeFor(r.outcome), std::move(r.message)));
    }
    response_ = EncodeInferResponse(*shared_md, id, r.output, outputs);
    Reply(::grpc::Status::OK);
  });
}

void GrpcFrontend::Impl::RequestInferCall() {
  auto* call = new InferCall(*this);
  {
    std::lock_guard<std::mutex> l(cq_mu_);
    if (!cq_closed_) {
      call->Offer(cq_.get());
      return;
    }
  }
  delete call;
}

void GrpcFrontend::Impl::PollCompletions() {
  void* tag = nullptr;
  bool ok = false;
  while (cq_->Next(&tag, &ok)) InferCall::Dispatch(tag, ok);
}

// --- grpc.health.v1.Health

// One Watch stream: sends the status now, then each change, until the client cancels or the
// server shuts down. Writes go one at a time; a change during a write is sent after it (only the
// latest status: intermediate ones are skipped, as the health protocol allows).
class GrpcFrontend::Impl::WatchReactor final : public ::grpc::ServerWriteReactor<HealthResponse> {
 public:
  // `known`: whether the client asked about a service this server has (else SERVICE_UNKNOWN).
  WatchReactor(Impl& impl, bool known)
      : impl_(impl),
        known_(known),
        latest_(known ? HealthResponse::NOT_SERVING : HealthResponse::SERVICE_UNKNOWN) {}

  bool known() const { return known_; }
  // Sends `status` unless it was the last sent (ignored for an unknown service).
  void Update(ServingStatus status) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (known_) latest_ = status;
    }
    Pump();
  }
  // Sends `status` if needed, then ends the stream with UNAVAILABLE.
  void End(ServingStatus status) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (known_) latest_ = status;
      ending_ = true;
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      writing_ = false;
      if (!ok) cancelled_ = true;
    }
    Pump();
  }
  void OnCancel() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      cancelled_ = true;
    }
    Pump();
  }
  void OnDone() override {
    impl_.RemoveWatcher(this);
    delete this;
  }

 private:
  // Starts the next write, or finishes, if there is something to do and no write in flight.
  void Pump() {
    bool write = false;
    ::grpc::Status status;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finished_ || writing_) return;
      if (!cancelled_ && (!sent_ || *sent_ != latest_)) {
        msg_.set_status(latest_);
        sent_ = latest_;
        writing_ = write = true;
      } else if (cancelled_ || ending_) {
        finished_ = true;
        status = cancelled_ ? ::grpc::Status::CANCELLED
                            : ::grpc::Status(::grpc::StatusCode::UNAVAILABLE,
                                             "the server is shutting down");
      } else {
        return;
      }
    }
    // Not under mu_: gRPC may run reactions on other threads meanwhile.
    if (write) {
      StartWrite(&msg_);
    } else {
      Finish(std::move(status));
    }
  }

  Impl& impl_;
  const bool known_;
  std::mutex mu_;
  ServingStatus latest_ ABSL_GUARDED_BY(mu_);
  std::optional<ServingStatus> sent_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a write is in flight; msg_ is gRPC's
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  HealthResponse msg_;
};

class GrpcFrontend::Impl::HealthService final : public ::grpc::health::v1::Health::CallbackService {
 public:
  explicit HealthService(Impl& impl) : impl_(impl) {}

  static bool Known(const std::string& service) {
    return service.empty() || service == kOipService;
  }

  ::grpc::ServerUnaryReactor* Check(::grpc::CallbackServerContext* ctx,
                                    const ::grpc::health::v1::HealthCheckRequest* req,
                                    HealthResponse* resp) override {
    const TimePoint start = impl_.clock_.Now();
    if (!Known(req->service())) {
      return impl_.Answer(
          ctx, Endpoint::kHealthReady, "", start,
          {::grpc::StatusCode::NOT_FOUND, StrCat("unknown service '", req->service(), "'")});
    }
    resp->set_status(impl_.CurrentStatus());
    return impl_.Answer(ctx, Endpoint::kHealthReady, "", start, ::grpc::Status::OK);
  }

  ::grpc::ServerWriteReactor<HealthResponse>* Watch(
      ::grpc::CallbackServerContext*, const ::grpc::health::v1::HealthCheckRequest* req) override {
    auto* w = new WatchReactor(impl_, Known(req->service()));
    impl_.AddWatcher(w);
    return w;
  }

 private:
  Impl& impl_;
};

// --- Impl

GrpcFrontend::Impl::Impl(serve::InferenceService& service, GrpcOptions options)
    : service_(service),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SteadyClock::Get()),
      oip_(std::make_unique<OipService>(*this)),
      health_(std::make_unique<HealthService>(*this)) {
  if (options_.metrics != nullptr) {
    std::vector<std::string> names;
    for (const auto& md : service_.Models()) names.push_back(md.name);
    request_metrics_ = std::make_unique<serve::RequestMetrics>(*options_.metrics, std::move(names));
  }
}

ServingStatus GrpcFrontend::Impl::CurrentStatus() const {
  return ServerReady() ? HealthResponse::SERVING : HealthResponse::NOT_SERVING;
}

void GrpcFrontend::Impl::AddWatcher(WatchReactor* w) {
  std::lock_guard<std::mutex> l(mu_);
  watchers_.insert(w);
  // Under mu_, so that no change between reading the status and registering is missed.
  if (shutting_down_) {
    w->End(HealthResponse::NOT_SERVING);
  } else {
    w->Update(CurrentStatus());
  }
}

void GrpcFrontend::Impl::RemoveWatcher(WatchReactor* w) {
  std::lock_guard<std::mutex> l(mu_);
  watchers_.erase(w);
}

void GrpcFrontend::Impl::RefreshHealth() {
  std::lock_guard<std::mutex> l(mu_);
  if (shutting_down_) return;
  const ServingStatus status = CurrentStatus();
  for (WatchReactor* w : watchers_) w->Update(status);
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
                           {"endpoint", serve::EndpointName(endpoint)},
                           {"model", model},
                           {"grpc_code", static_cast<int>(code)},
                           {"duration_s", secs}});
  }
}

::grpc::ServerUnaryReactor* GrpcFrontend::Impl::Answer(::grpc::CallbackServerContext* ctx,
                                                       Endpoint endpoint, std::string_view model,
                                                       TimePoint start, ::grpc::Status status) {
  Record(endpoint, model, status.error_code(), start);
  ::grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

absl::Status GrpcFrontend::Impl::Start() {
  std::lock_guard<std::mutex> l(lifecycle_mu_);
  if (server_ || shut_down_)
    return absl::FailedPreconditionError("the gRPC front-end was started before");
  const std::string address = options_.host.find(':') != std::string::npos
                                  ? StrCat("[", options_.host, "]:", options_.port)
                                  : StrCat(options_.host, ":", options_.port);
  ::grpc::ServerBuilder builder;
  int selected = 0;
  builder.AddListeningPort(address, ::grpc::InsecureServerCredentials(), &selected);
  builder.RegisterService(oip_.get());
  builder.RegisterService(health_.get());
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
      std::lock_guard<std::mutex> l(cq_mu_);
      cq_closed_ = true;
    }
    cq_->Shutdown();
    PollCompletions();  // drains the queue, which gRPC requires before destroying it
    return absl::UnavailableError(StrCat("cannot listen for gRPC on ", address));
  }
  port_.store(selected);
  // A few slots offered ahead; each call that arrives offers the next.
  for (int i = 0; i < options_.completion_threads * 2; ++i) RequestInferCall();
  for (int i = 0; i < options_.completion_threads; ++i) {
    cq_threads_.emplace_back([this] { PollCompletions(); });
  }
  return absl::OkStatus();
}

void GrpcFrontend::Impl::Shutdown(TimePoint deadline) {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    shutting_down_ = true;
    for (WatchReactor* w : watchers_) w->End(HealthResponse::NOT_SERVING);
  }
  if (server_ == nullptr) return;
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
    std::lock_guard<std::mutex> l(cq_mu_);
    cq_closed_ = true;
  }
  cq_->Shutdown();
  for (std::thread& t : cq_threads_) t.join();
  cq_threads_.clear();
}

// --- GrpcFrontend

absl::StatusOr<std::unique_ptr<GrpcFrontend>> GrpcFrontend::Create(serve::InferenceService& service,
                                                                   GrpcOptions options) {
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
  return std::unique_ptr<GrpcFrontend>(
      new GrpcFrontend(std::make_unique<Impl>(service, std::move(options))));
}

GrpcFrontend::GrpcFrontend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcFrontend::~GrpcFrontend() = default;

absl::Status GrpcFrontend::Start() { return impl_->Start(); }
int GrpcFrontend::port() const { return impl_->port(); }
void GrpcFrontend::RefreshHealth() { impl_->RefreshHealth(); }
void GrpcFrontend::SetDraining() { impl_->SetDraining(); }
void GrpcFrontend::Shutdown(TimePoint deadline) { impl_->Shutdown(deadline); }

}  // namespace galley::rpc
