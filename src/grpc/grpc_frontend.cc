#include "grpc/grpc_frontend.h"

#include <atomic>
#include <cctype>
#include <climits>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/thread_name.h"
#include "grpc/conn_acceptor.h"
#include "grpc/oip_proto.h"
#include "grpc/oip_rest.h"
#include "grpc/support/log.h"
#include "grpc/tls_relay.h"
#include "grpc_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_posix.h"
#include "health.grpc.pb.h"
#include "protocol/request_metrics.h"

namespace galley::rpc {
namespace {

using HealthResponse = ::grpc::health::v1::HealthCheckResponse;
using ServingStatus = HealthResponse::ServingStatus;
using protocol::Endpoint;

constexpr std::string_view kOipService = "inference.GRPCInferenceService";

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

std::string_view View(const std::string& s) { return {s.data(), s.size()}; }

std::string UnknownModel(std::string_view name, std::string_view version) {
  if (version.empty()) return StrCat("unknown model '", name, "'");
  return StrCat("unknown model '", name, "' version '", version, "'");
}

// UNAVAILABLE with the reason for a model the server knows but cannot serve (a broken config or
// model file), else NOT_FOUND.
::grpc::Status MissingModel(const inference::InferenceService& service, const std::string& name,
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

class GrpcFrontend::Impl {
 public:
  // `service` null: proxy mode, calls go to `proxy`.
  Impl(inference::InferenceService* service, GrpcProxy proxy, GrpcOptions options);
  ~Impl() { Shutdown(std::chrono::steady_clock::now()); }

  absl::Status Start();
  int port() const { return port_.load(); }
  void RefreshHealth();
  void SetDraining();
  void Shutdown(TimePoint deadline);

  class Op;
  class InferCall;
  template <class Service, class Req, class Resp>
  class UnaryCall;
  template <class Service, class Req, class Resp>
  struct UnaryMethod;
  class WatchCall;

 private:
  // The health status of the server (and of the inference service) now.
  ServingStatus CurrentStatus() const;
  bool ServerReady() const {
    return !draining_.load() && (service_ != nullptr ? service_->Ready() : proxy_.ready());
  }
  // Proxy mode: hands `request` to the proxy, with the API key metadata of `ctx` as its headers;
  // `done` gets the answer. Shutdown() waits for every answer, so `done` may touch the front-end.
  void Forward(const ::grpc::ServerContext& ctx, http::Request&& request,
               std::function<void(http::Response&&)> done);
  void AddWatcher(WatchCall* w);
  void RemoveWatcher(WatchCall* w);
  // Counts a finished call that started at `start`.
  void Record(Endpoint endpoint, std::string_view model, ::grpc::StatusCode code, TimePoint start);
  // Runs `start` (which starts an operation on the completion queue) unless the queue is closed;
  // whether it ran.
  template <class F>
  bool OnQueue(F&& start) {
    std::lock_guard<std::mutex> l(cq_mu_);
    if (cq_closed_) return false;
    start();
    return true;
  }
  // Offers the server one more slot for a call of type Call (made with *this and `args`), unless
  // the queue is closed.
  template <class Call, class... Args>
  void OfferSlot(const Args&... args) {
    auto* call = new Call(*this, args...);
    if (!OnQueue([call] { call->Offer(); })) delete call;
  }
  // A slot of every kind, at start.
  void OfferSlots();
  // Runs on each completion thread: hands out events until the queue is shut down.
  void PollCompletions();

  inference::InferenceService* const service_;  // null: proxy mode
  const GrpcProxy proxy_;
  std::mutex forward_mu_;
  std::condition_variable forward_cv_;
  int forwards_ ABSL_GUARDED_BY(forward_mu_) = 0;  // forwarded requests not answered yet
  const GrpcOptions options_;
  const Clock& clock_;
  std::unique_ptr<protocol::RequestMetrics> request_metrics_;  // null: not counted
  std::atomic<bool> draining_{false};
  std::atomic<int> port_{0};

  std::mutex mu_;
  std::set<WatchCall*> watchers_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  std::mutex lifecycle_mu_;  // serialises Start() and Shutdown(); taken before mu_
  bool shut_down_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  // The completion queue of every call and the threads that poll it. cq_mu_ makes starting an
  // operation on the queue and shutting it down exclusive (gRPC forbids the former after the
  // latter); it is held only for the moment an operation is started, after mu_ if both. The
  // queue outlives the server (gRPC destroys a server before its queues).
  std::unique_ptr<::grpc::ServerCompletionQueue> cq_;
  std::vector<std::thread> cq_threads_;
  std::mutex cq_mu_;
  bool cq_closed_ ABSL_GUARDED_BY(cq_mu_) = false;
  // The services outlive the server, which refers to them. ModelInfer's messages arrive as bytes
  // and are parsed here, so that one that cannot be parsed is the client's INVALID_ARGUMENT (gRPC
  // itself would answer INTERNAL).
  ::inference::GRPCInferenceService::WithRawMethod_ModelInfer<
      ::inference::GRPCInferenceService::AsyncService>
      oip_;
  ::grpc::health::v1::Health::AsyncService health_;
  std::unique_ptr<::grpc::Server> server_ ABSL_GUARDED_BY(lifecycle_mu_);
  std::unique_ptr<ConnectionAcceptor> acceptor_ ABSL_GUARDED_BY(lifecycle_mu_);
  std::unique_ptr<TlsRelay> relay_ ABSL_GUARDED_BY(lifecycle_mu_);  // with TLS on
};

// Every call is served on gRPC's asynchronous API, on completion threads of ours: with no method
// on the callback API, gRPC 1.51 starts none of its callback-queue threads, which otherwise take
// part in polling the sockets and add a hand-off per call (bench/RESULTS.md).
//
// An operation on the completion queue: its events come to the completion threads as its address
// with the event's number in the low bits. It deletes itself when its last reference is released
// (each call says what its references are).
class GrpcFrontend::Impl::Op {
 public:
  explicit Op(int refs) : refs_(refs) {}
  virtual ~Op() = default;
  static constexpr uintptr_t kEventBits = 3;  // free in the address of anything `new` makes
  static_assert(alignof(std::max_align_t) > kEventBits);

  // Every call's first event: its call came, or (not ok) never will.
  static constexpr int kArrived = 0;

  // Hands a completion-queue event to its operation. An arrival first offers the server a slot
  // for the next call of its kind.
  static void Dispatch(void* tag, bool ok) {
    const auto bits = reinterpret_cast<uintptr_t>(tag);
    auto* op = reinterpret_cast<Op*>(bits & ~kEventBits);
    const int event = static_cast<int>(bits & kEventBits);
    if (event == kArrived) {
      if (!ok) {  // the server is shutting down: no call came, and no other event will
        delete op;
        return;
      }
      op->OfferNext();
    }
    op->On(event, ok);
  }

 protected:
  virtual void OfferNext() = 0;
  void* Tag(int event) {
    return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(this) |
                                   static_cast<uintptr_t>(event));
  }
  virtual void On(int event, bool ok) = 0;
  void Release() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  std::atomic<int> refs_;
};

// --- The unary methods answered at once (all but ModelInfer)

// How to offer a slot for one kind of unary call (the service and its generated RequestX), and
// how to answer it (filling the response; `model` is what the call is counted under).
template <class Service, class Req, class Resp>
struct GrpcFrontend::Impl::UnaryMethod {
  using Writer = ::grpc::ServerAsyncResponseWriter<Resp>;
  Service Impl::*service;
  void (Service::*request)(::grpc::ServerContext*, Req*, Writer*, ::grpc::CompletionQueue*,
                           ::grpc::ServerCompletionQueue*, void*);
  ::grpc::Status (*answer)(Impl& impl, const Req& req, Resp& resp, std::string& model);
  Endpoint endpoint;
  // Proxy mode: forwards the call, and calls `done` with its status once `resp` is filled.
  // Null: answered by `answer` in both modes.
  void (*forward)(Impl& impl, const ::grpc::ServerContext& ctx, const Req& req, Resp& resp,
                  std::function<void(::grpc::Status)> done) = nullptr;
};

// One such call, from its slot to the end of its answer.
template <class Service, class Req, class Resp>
class GrpcFrontend::Impl::UnaryCall final : public Op {
 public:
  // One reference: the answer's end.
  UnaryCall(Impl& impl, const UnaryMethod<Service, Req, Resp>& method)
      : Op(1), impl_(impl), method_(method), writer_(&ctx_) {}

  // Offers the slot to the server. Only with impl.cq_mu_ held and the queue open.
  void Offer() {
    ::grpc::ServerCompletionQueue* cq = impl_.cq_.get();
    ((impl_.*method_.service).*method_.request)(&ctx_, &request_, &writer_, cq, cq, Tag(kArrived));
  }

 private:
  enum Event { kSent = 1 };

  void OfferNext() override { impl_.OfferSlot<UnaryCall>(method_); }

  void On(int event, bool) override {
    if (event == kSent) {
      Release();
      return;
    }
    const TimePoint start = impl_.clock_.Now();
    if (impl_.service_ == nullptr && method_.forward != nullptr) {
      // The call keeps its reference until the answer is sent.
      method_.forward(impl_, ctx_, request_, response_,
                      [this, start](::grpc::Status status) { Send(status, "", start); });
      return;
    }
    std::string model;
    const ::grpc::Status status = method_.answer(impl_, request_, response_, model);
    Send(status, model, start);
  }

  void Send(const ::grpc::Status& status, std::string_view model, TimePoint start) {
    impl_.Record(method_.endpoint, model, status.error_code(), start);
    const bool sending = impl_.OnQueue([&] {
      if (status.ok()) {
        writer_.Finish(response_, status, Tag(kSent));
      } else {
        writer_.FinishWithError(status, Tag(kSent));
      }
    });
    if (!sending) Release();
  }

  Impl& impl_;
  const UnaryMethod<Service, Req, Resp>& method_;
  ::grpc::ServerContext ctx_;
  Req request_;
  Resp response_;
  ::grpc::ServerAsyncResponseWriter<Resp> writer_;
};

namespace {

using HealthRequest = ::grpc::health::v1::HealthCheckRequest;

bool KnownHealthService(const std::string& service) {
  return service.empty() || service == kOipService;
}

}  // namespace

void GrpcFrontend::Impl::OfferSlots() {
  using ::grpc::Status;
  using Oip = decltype(oip_);  // ModelInfer raw, the other methods typed
  using Health = ::grpc::health::v1::Health::AsyncService;
  namespace pb = ::inference;
  static const UnaryMethod<Oip, pb::ServerLiveRequest, pb::ServerLiveResponse> kLive{
      &Impl::oip_, &Oip::RequestServerLive,
      [](Impl&, const auto&, auto& resp, std::string&) {
        resp.set_live(true);
        return Status::OK;
      },
      Endpoint::kHealthLive};
  static const UnaryMethod<Oip, pb::ServerReadyRequest, pb::ServerReadyResponse> kReady{
      &Impl::oip_, &Oip::RequestServerReady,
      [](Impl& impl, const auto&, auto& resp, std::string&) {
        resp.set_ready(impl.ServerReady());
        return Status::OK;
      },
      Endpoint::kHealthReady};
  static const UnaryMethod<Oip, pb::ModelReadyRequest, pb::ModelReadyResponse> kModelReady{
      &Impl::oip_, &Oip::RequestModelReady,
      [](Impl& impl, const auto& req, auto& resp, std::string& model) {
        // An unknown model or version is not ready, with an OK status, as Triton answers
        // (TRITONSERVER_ServerModelIsReady; triton-inference-server/core#508); the REST twin
        // is a 404.
        if (!impl.service_->FindModel(View(req.name()), View(req.version()))) {
          resp.set_ready(false);
          return Status::OK;
        }
        resp.set_ready(impl.service_->ModelReady(View(req.name()), View(req.version())));
        model = req.name();
        return Status::OK;
      },
      Endpoint::kModelReady,
      [](Impl& impl, const ::grpc::ServerContext& ctx, const pb::ModelReadyRequest& req,
         pb::ModelReadyResponse& resp, std::function<void(Status)> done) {
        // Ready when the gateway says 200; not ready (OK status) when it says anything else.
        auto rest = RestModelRequest(req.name(), req.version(), "/ready");
        if (!rest.ok())
          return done(
              Status(::grpc::StatusCode::INVALID_ARGUMENT, std::string(rest.status().message())));
        impl.Forward(ctx, std::move(*rest), [&resp, done = std::move(done)](http::Response&& res) {
          if (res.result_int() == 401 || res.result_int() == 403) return done(GrpcErrorFor(res));
          resp.set_ready(res.result_int() == 200);
          done(Status::OK);
        });
      }};
  static const UnaryMethod<Oip, pb::ServerMetadataRequest, pb::ServerMetadataResponse>
      kServerMetadata{&Impl::oip_, &Oip::RequestServerMetadata,
                      [](Impl& impl, const auto&, auto& resp, std::string&) {
                        resp.set_name(impl.options_.server_name);
                        resp.set_version(impl.options_.server_version);
                        return Status::OK;
                      },
                      Endpoint::kServerMetadata};
  static const UnaryMethod<Oip, pb::ModelMetadataRequest, pb::ModelMetadataResponse> kModelMetadata{
      &Impl::oip_, &Oip::RequestModelMetadata,
      [](Impl& impl, const auto& req, auto& resp, std::string& model) {
        auto md = impl.service_->FindModel(View(req.name()), View(req.version()));
        if (!md) return MissingModel(*impl.service_, req.name(), req.version());
        resp = EncodeModelMetadata(*md);
        model = req.name();
        return Status::OK;
      },
      Endpoint::kModelMetadata,
      [](Impl& impl, const ::grpc::ServerContext& ctx, const pb::ModelMetadataRequest& req,
         pb::ModelMetadataResponse& resp, std::function<void(Status)> done) {
        auto rest = RestModelRequest(req.name(), req.version(), "");
        if (!rest.ok())
          return done(
              Status(::grpc::StatusCode::INVALID_ARGUMENT, std::string(rest.status().message())));
        impl.Forward(ctx, std::move(*rest), [&resp, done = std::move(done)](http::Response&& res) {
          done(GrpcModelMetadata(res, &resp));
        });
      }};
  static const UnaryMethod<Health, HealthRequest, HealthResponse> kCheck{
      &Impl::health_, &Health::RequestCheck,
      [](Impl& impl, const auto& req, auto& resp, std::string&) {
        if (!KnownHealthService(req.service())) {
          return Status(::grpc::StatusCode::NOT_FOUND,
                        StrCat("unknown service '", req.service(), "'"));
        }
        resp.set_status(impl.CurrentStatus());
        return Status::OK;
      },
      Endpoint::kHealthReady};
  OfferSlot<UnaryCall<Oip, pb::ServerLiveRequest, pb::ServerLiveResponse>>(kLive);
  OfferSlot<UnaryCall<Oip, pb::ServerReadyRequest, pb::ServerReadyResponse>>(kReady);
  OfferSlot<UnaryCall<Oip, pb::ModelReadyRequest, pb::ModelReadyResponse>>(kModelReady);
  OfferSlot<UnaryCall<Oip, pb::ServerMetadataRequest, pb::ServerMetadataResponse>>(kServerMetadata);
  OfferSlot<UnaryCall<Oip, pb::ModelMetadataRequest, pb::ModelMetadataResponse>>(kModelMetadata);
  OfferSlot<UnaryCall<Health, HealthRequest, HealthResponse>>(kCheck);
  OfferSlot<WatchCall>();
  // ModelInfer: a few slots ahead, as its calls come many at a time.
  for (int i = 0; i < options_.completion_threads * 2; ++i) OfferSlot<InferCall>();
}

// One ModelInfer call on gRPC's asynchronous API, from the slot offered to the server to its last
// event. The call is answered once, by the model's callback or by its cancellation (the client
// went away, its deadline passed, or Shutdown's deadline passed), whichever takes the claim first;
// it is deleted when both its done event and the end of its answer have come (two references;
// three, while its arrival is handled). The model's callback may come after that: it then
// touches only the shared claim.
class GrpcFrontend::Impl::InferCall final : public Op {
 public:
  // Three references: the done event's, the answer's, and the arrival's (gRPC starts watching for
  // the done event as it hands out the arrival, so on another completion thread the done event of
  // a cancelled call can come while the arrival is still being handled).
  explicit InferCall(Impl& impl) : Op(3), impl_(impl), responder_(&ctx_) {}

  // Offers the slot to the server. Only with impl.cq_mu_ held and the queue open.
  void Offer() {
    ctx_.AsyncNotifyWhenDone(Tag(kDone));
    impl_.oip_.RequestModelInfer(&ctx_, &raw_request_, &responder_, impl_.cq_.get(),
                                 impl_.cq_.get(), Tag(kArrived));
  }

 private:
  enum Event { kDone = 1, kSent = 2 };

  void OfferNext() override { impl_.OfferSlot<InferCall>(); }

  void On(int event, bool) override {
    switch (event) {
      case kArrived:
        Serve();
        Release();  // the arrival's reference
        return;
      case kDone:
        if (claim_->TryTake()) {  // not answered: cancelled (a passed deadline cancels too)
          const bool expired = ctx_.deadline() <= std::chrono::system_clock::now();
          impl_.Record(
              Endpoint::kInfer, request_.model_name(),
              expired ? ::grpc::StatusCode::DEADLINE_EXCEEDED : ::grpc::StatusCode::CANCELLED,
              start_);
          Release();  // the answer's reference: there will be none
        }
        Release();
        return;
      default:  // kSent
        Release();
        return;
    }
  }

  // Checks the request and queues it for its model, or answers at once.
  void Serve();
  // Proxy mode: forwards the request (as REST) and answers from the REST answer.
  void Forward();

  // Counts and sends the answer. Only the holder of the claim calls it, once.
  void Reply(const ::grpc::Status& status) {
    impl_.Record(Endpoint::kInfer, request_.model_name(), status.error_code(), start_);
    const bool sending = impl_.OnQueue([&] {
      if (status.ok()) {
        ::grpc::ByteBuffer out;
        bool own = false;
        ::grpc::Status st = ::grpc::SerializationTraits<::inference::ModelInferResponse>::Serialize(
            response_, &out, &own);
        if (st.ok()) {
          responder_.Finish(out, status, Tag(kSent));
        } else {
          responder_.FinishWithError(st, Tag(kSent));
        }
      } else {
        responder_.FinishWithError(status, Tag(kSent));
      }
    });
    if (!sending) Release();  // the queue is closed: nothing can be sent
  }

  // Replies with an error if the claim is still free (it is, before the request is queued).
  void Fail(::grpc::StatusCode code, std::string message) {
    if (claim_->TryTake()) Reply(::grpc::Status(code, std::move(message)));
  }

  Impl& impl_;
  ::grpc::ServerContext ctx_;
  ::grpc::ByteBuffer raw_request_;
  ::inference::ModelInferRequest request_;
  ::inference::ModelInferResponse response_;
  ::grpc::ServerAsyncResponseWriter<::grpc::ByteBuffer> responder_;
  TimePoint start_{};
  // What the answer needs, kept from the request (the call lives until it is answered).
  const model::ModelMetadata* metadata_ = nullptr;  // the service's, valid while it lives
  std::string id_;
  std::vector<std::string> requested_outputs_;
  const std::shared_ptr<AnswerClaim> claim_ = std::make_shared<AnswerClaim>();
};

void GrpcFrontend::Impl::InferCall::Serve() {
  start_ = impl_.clock_.Now();
  if (::grpc::Status parsed =
          ::grpc::SerializationTraits<::inference::ModelInferRequest>::Deserialize(&raw_request_,
                                                                                   &request_);
      !parsed.ok()) {
    return Fail(
        ::grpc::StatusCode::INVALID_ARGUMENT,
        StrCat("the request is not a valid ModelInferRequest message: ", parsed.error_message()));
  }
  if (impl_.service_ == nullptr) return Forward();
  const ::inference::ModelInferRequest& req = request_;
  auto md = impl_.service_->FindModel(View(req.model_name()), View(req.model_version()));
  if (!md) {
    ::grpc::Status st = MissingModel(*impl_.service_, req.model_name(), req.model_version());
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
  inference::InferRequest ir;
  ir.model = req.model_name();
  ir.version = req.model_version();
  ir.deadline =
      RequestDeadline(client_left, decoded->timeout_us, impl_.options_.default_timeout, start_);
  ir.arrival = start_;
  ir.input = std::move(decoded->input);
  metadata_ = md;
  id_ = std::move(decoded->id);
  requested_outputs_ = std::move(decoded->outputs);
  impl_.service_->Infer(std::move(ir), [this, claim = claim_](inference::InferResult&& r) {
    // Whoever takes the claim answers; the call lives until it has (and only then may this be
    // touched).
    if (!claim->TryTake()) return;
    if (r.outcome != inference::Outcome::kOk) {
      return Reply(::grpc::Status(GrpcCodeFor(r.outcome), std::move(r.message)));
    }
    response_ = EncodeInferResponse(*metadata_, id_, r.output, requested_outputs_);
    Reply(::grpc::Status::OK);
  });
}

namespace {

// The metadata a proxied call passes on as REST headers of the same names: the API key, and the
// W3C trace context (https://www.w3.org/TR/trace-context/ names the same `traceparent` and
// `tracestate` for every carrier).
constexpr std::string_view kForwardedMetadata[] = {"authorization", "x-api-key", "traceparent",
                                                   "tracestate"};

// Whether `v` can be sent as a gRPC metadata value (printable ASCII).
bool PrintableAscii(std::string_view v) {
  for (char c : v) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

void GrpcFrontend::Impl::InferCall::Forward() {
  auto rest = RestInferRequest(request_);
  if (!rest.ok())
    return Fail(::grpc::StatusCode::INVALID_ARGUMENT, std::string(rest.status().message()));
  // The client's gRPC deadline becomes the REST request's timeout (as the REST front-end reads
  // it); without one the gateway's default applies, or parameter "timeout" at the replica.
  if (const auto dl = ctx_.deadline(); dl != std::chrono::system_clock::time_point::max()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        dl - std::chrono::system_clock::now());
    if (left.count() <= 0) {
      return Fail(::grpc::StatusCode::DEADLINE_EXCEEDED,
                  "the deadline passed before the request was forwarded");
    }
    rest->set("X-Request-Timeout-Ms", std::to_string(left.count()));
  }
  impl_.Forward(ctx_, std::move(*rest), [this, claim = claim_](http::Response&& res) {
    if (!claim->TryTake()) return;  // cancelled: the call may be gone
    const ::grpc::Status status = GrpcInferResponse(res, &response_);
    // What the gateway tells about the answer (X-Galley-Fallback, ...) as initial metadata.
    for (const auto& field : res) {
      std::string key(field.name_string());
      for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const std::string_view value(field.value().data(), field.value().size());
      if (key.rfind("x-galley-", 0) == 0 && PrintableAscii(value)) {
        ctx_.AddInitialMetadata(key, std::string(value));
      }
    }
    Reply(status);
  });
}

void GrpcFrontend::Impl::PollCompletions() {
  void* tag = nullptr;
  bool ok = false;
  while (cq_->Next(&tag, &ok)) Op::Dispatch(tag, ok);
}

// --- grpc.health.v1.Health Watch

// One Watch stream: sends the status now, then each change, until the client cancels or the
// server shuts down. Writes go one at a time; a change during a write is sent after it (only the
// latest status: intermediate ones are skipped, as the health protocol allows). Deleted when its
// done event and the end of the stream have come (and its arrival has been handled).
class GrpcFrontend::Impl::WatchCall final : public Op {
 public:
  // Three references: the done event's, the stream end's, and the arrival's (as InferCall's).
  explicit WatchCall(Impl& impl) : Op(3), impl_(impl), writer_(&ctx_) {}

  // Offers the slot to the server. Only with impl.cq_mu_ held and the queue open.
  void Offer() {
    ctx_.AsyncNotifyWhenDone(Tag(kDone));
    impl_.health_.RequestWatch(&ctx_, &request_, &writer_, impl_.cq_.get(), impl_.cq_.get(),
                               Tag(kArrived));
  }

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

 private:
  enum Event { kDone = 1, kWritten = 2, kFinished = 3 };

  void OfferNext() override { impl_.OfferSlot<WatchCall>(); }

  void On(int event, bool ok) override {
    switch (event) {
      case kArrived: {
        std::lock_guard<std::mutex> l(mu_);
        known_ = KnownHealthService(request_.service());
        latest_ = known_ ? HealthResponse::NOT_SERVING : HealthResponse::SERVICE_UNKNOWN;
      }
        impl_.AddWatcher(this);  // sends the status now
        Release();
        return;
      case kDone: {
        std::lock_guard<std::mutex> l(mu_);
        cancelled_ = true;  // the stream is over either way: nothing more to send
      }
        Pump();
        Release();
        return;
      case kWritten: {
        std::lock_guard<std::mutex> l(mu_);
        writing_ = false;
        if (!ok) cancelled_ = true;
      }
        Pump();
        return;
      default:  // kFinished
        EndStream();
        return;
    }
  }

  // The stream is over: no status change is for it any more; its reference goes.
  void EndStream() {
    impl_.RemoveWatcher(this);
    Release();
  }

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
    // Not under mu_: the write's completion may come on another thread meanwhile.
    const bool started = impl_.OnQueue([&] {
      if (write) {
        writer_.Write(msg_, Tag(kWritten));
      } else {
        writer_.Finish(status, Tag(kFinished));
      }
    });
    if (!started && !write) EndStream();  // the queue is closed: the stream ends here
  }

  Impl& impl_;
  ::grpc::ServerContext ctx_;
  HealthRequest request_;
  ::grpc::ServerAsyncWriter<HealthResponse> writer_;
  std::mutex mu_;
  bool known_ ABSL_GUARDED_BY(mu_) = false;
  ServingStatus latest_ ABSL_GUARDED_BY(mu_) = HealthResponse::NOT_SERVING;
  std::optional<ServingStatus> sent_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a write is in flight; msg_ is gRPC's
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  HealthResponse msg_;
};

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
  std::lock_guard<std::mutex> l(mu_);
  watchers_.insert(w);
  // Under mu_, so that no change between reading the status and registering is missed.
  if (shutting_down_) {
    w->End(HealthResponse::NOT_SERVING);
  } else {
    w->Update(CurrentStatus());
  }
}

void GrpcFrontend::Impl::RemoveWatcher(WatchCall* w) {
  std::lock_guard<std::mutex> l(mu_);
  watchers_.erase(w);
}

void GrpcFrontend::Impl::RefreshHealth() {
  std::lock_guard<std::mutex> l(mu_);
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
  std::lock_guard<std::mutex> l(lifecycle_mu_);
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
      std::lock_guard<std::mutex> l(cq_mu_);
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
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
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
    std::lock_guard<std::mutex> l(cq_mu_);
    cq_closed_ = true;
  }
  cq_->Shutdown();
  for (std::thread& t : cq_threads_) t.join();
  cq_threads_.clear();
  if (relay_) relay_->Stop();  // after gRPC: its calls ran over the relay's connections
  // A forwarded request's answer may still come (its call was cancelled): it touches this.
  std::unique_lock<std::mutex> l(forward_mu_);
  forward_cv_.wait(l, [this] { return forwards_ == 0; });
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
    std::lock_guard<std::mutex> l(forward_mu_);
    ++forwards_;
  }
  proxy_.forward(std::move(request), [this, done = std::move(done)](http::Response&& res) {
    done(std::move(res));
    std::lock_guard<std::mutex> l(forward_mu_);
    if (--forwards_ == 0) forward_cv_.notify_all();
  });
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
