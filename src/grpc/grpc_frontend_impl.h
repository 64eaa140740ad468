// The private parts of the gRPC front-end (grpc_frontend.h) that its source files share:
// GrpcFrontend::Impl, the completion-queue operation that every call is (Op), and the health
// Watch stream (WatchCall), which the front-end tells of each status change. Impl's lifecycle,
// health and forwarding are in grpc_frontend_impl.cc, the unary calls and ModelInfer in
// grpc_frontend_calls.cc, and GrpcFrontend itself in grpc_frontend.cc, the only files that
// include this one.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "grpc/conn_acceptor.h"
#include "grpc/grpc_frontend.h"
#include "grpc/tls_relay.h"
#include "grpc_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "health.grpc.pb.h"
#include "protocol/request_metrics.h"

namespace galley::rpc {

using HealthResponse = ::grpc::health::v1::HealthCheckResponse;
using ServingStatus = HealthResponse::ServingStatus;
using protocol::Endpoint;
using HealthRequest = ::grpc::health::v1::HealthCheckRequest;

// Whether a health request's `service` is one this server answers for: the server as a whole
// ("") or the Open Inference Protocol service.
bool KnownHealthService(const std::string& service);

class GrpcFrontend::Impl {
 public:
  // `service` null: proxy mode, calls go to `proxy`.
  Impl(inference::InferenceService* service, GrpcProxy proxy, GrpcOptions options);
  ~Impl() { Shutdown(std::chrono::steady_clock::now()); }

  absl::Status Start() ABSL_LOCKS_EXCLUDED(lifecycle_mu_, cq_mu_);
  int port() const { return port_.load(); }
  void RefreshHealth() ABSL_LOCKS_EXCLUDED(mu_);
  void SetDraining() ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown(TimePoint deadline) ABSL_LOCKS_EXCLUDED(lifecycle_mu_, mu_, cq_mu_, forward_mu_);

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
               std::function<void(http::Response&&)> done) ABSL_LOCKS_EXCLUDED(forward_mu_);
  void AddWatcher(WatchCall* w) ABSL_LOCKS_EXCLUDED(mu_);
  void RemoveWatcher(WatchCall* w) ABSL_LOCKS_EXCLUDED(mu_);
  // Counts a finished call that started at `start`.
  void Record(Endpoint endpoint, std::string_view model, ::grpc::StatusCode code, TimePoint start);
  // Runs `start` (which starts an operation on the completion queue) unless the queue is closed;
  // whether it ran.
  template <class F>
  bool OnQueue(F&& start) ABSL_LOCKS_EXCLUDED(cq_mu_) {
    absl::MutexLock l(&cq_mu_);
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
  absl::Mutex forward_mu_;
  absl::CondVar forward_cv_;
  int forwards_ ABSL_GUARDED_BY(forward_mu_) = 0;  // forwarded requests not answered yet
  const GrpcOptions options_;
  const Clock& clock_;
  std::unique_ptr<protocol::RequestMetrics> request_metrics_;  // null: not counted
  std::atomic<bool> draining_{false};
  std::atomic<int> port_{0};

  absl::Mutex mu_;
  std::set<WatchCall*> watchers_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex lifecycle_mu_;  // serialises Start() and Shutdown(); taken before mu_
  bool shut_down_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  // The completion queue of every call and the threads that poll it. cq_mu_ makes starting an
  // operation on the queue and shutting it down exclusive (gRPC forbids the former after the
  // latter); it is held only for the moment an operation is started, after mu_ if both. The
  // queue outlives the server (gRPC destroys a server before its queues).
  std::unique_ptr<::grpc::ServerCompletionQueue> cq_;
  std::vector<std::thread> cq_threads_;
  absl::Mutex cq_mu_;
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
  void Update(ServingStatus status) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock l(&mu_);
      if (known_) latest_ = status;
    }
    Pump();
  }
  // Sends `status` if needed, then ends the stream with UNAVAILABLE.
  void End(ServingStatus status) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock l(&mu_);
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
        absl::MutexLock l(&mu_);
        known_ = KnownHealthService(request_.service());
        latest_ = known_ ? HealthResponse::NOT_SERVING : HealthResponse::SERVICE_UNKNOWN;
      }
        impl_.AddWatcher(this);  // sends the status now
        Release();
        return;
      case kDone: {
        absl::MutexLock l(&mu_);
        cancelled_ = true;  // the stream is over either way: nothing more to send
      }
        Pump();
        Release();
        return;
      case kWritten: {
        absl::MutexLock l(&mu_);
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
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    bool write = false;
    ::grpc::Status status;
    {
      absl::MutexLock l(&mu_);
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
  absl::Mutex mu_;
  bool known_ ABSL_GUARDED_BY(mu_) = false;
  ServingStatus latest_ ABSL_GUARDED_BY(mu_) = HealthResponse::NOT_SERVING;
  std::optional<ServingStatus> sent_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a write is in flight; msg_ is gRPC's
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  HealthResponse msg_;
};

}  // namespace galley::rpc
