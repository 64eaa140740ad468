// The calls of the gRPC front-end (grpc_frontend.h) other than Watch: the unary methods answered
// at once, and ModelInfer, answered by its model or forwarded in proxy mode.
#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/strings.h"
#include "grpc/grpc_frontend_impl.h"
#include "grpc/oip_proto.h"
#include "grpc/oip_rest.h"
#include "inference/infer_spans.h"
#include "tracing/span.h"
#include "tracing/trace_context.h"

namespace galley::rpc {
namespace {

constexpr std::string_view kOipService = "inference.GRPCInferenceService";

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

bool KnownHealthService(const std::string& service) {
  return service.empty() || service == kOipService;
}

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
  std::optional<tracing::Span> span;
  tracing::Tracer* tracer = impl_.options_.tracer;
  if (tracer != nullptr) {
    const auto& client = ctx_.client_metadata();
    const auto tp = client.find("traceparent");
    const std::string_view value = tp == client.end()
                                       ? std::string_view()
                                       : std::string_view(tp->second.data(), tp->second.size());
    span = tracing::StartSpan(StrCat("infer ", ir.model), tracing::SpanKind::kServer,
                              tracing::ParseTraceparent(value), ir.arrival);
    span->Set("galley.model", ir.model);
    span->Set("rpc.system", "grpc");
  }
  impl_.service_->Infer(std::move(ir), [this, claim = claim_, tracer, span = std::move(span),
                                        clock = &impl_.clock_](inference::InferResult&& r) mutable {
    // The span ends with the model's answer, whether or not the call is still there to take it.
    if (span) {
      for (auto& sp : inference::FinishInferSpans(std::move(*span), r, clock->Now())) {
        tracer->Record(std::move(sp));
      }
    }
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

}  // namespace galley::rpc
