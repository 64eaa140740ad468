// The gRPC front-end end to end: a real gRPC client stub (generated from the same protos) against
// GrpcFrontend on 127.0.0.1 port 0, in front of a real inference::ModelService whose models run
// FakeBackend (and a small BYTES model) in ModelRunners.
#include "grpc/grpc_frontend.h"

#include <cstring>
#include <deque>
#include <future>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/strings.h"
#include "grpc/oip_proto.h"
#include "grpc_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "inference/model_service.h"
#include "model/testing/fake_backend.h"
#include "protocol/oip_json.h"

namespace galley::rpc {
namespace {

using ::grpc::StatusCode;
using HealthResponse = ::grpc::health::v1::HealthCheckResponse;
using ::inference::ModelInferRequest;
using ::inference::ModelInferResponse;
using model::DataType;
using model::testing::FakeBackend;
using namespace std::chrono_literals;

// "reverse": BYTES "text" [-1] -> BYTES "reversed" and INT64 "length", element by element.
class ReverseBackend final : public model::Backend {
 public:
  ReverseBackend() {
    md_.name = "reverse";
    md_.version = "1";
    md_.platform = "test";
    md_.inputs = {{"text", DataType::kBytes, {-1}}};
    md_.outputs = {{"reversed", DataType::kBytes, {-1}}, {"length", DataType::kInt64, {-1}}};
  }
  const model::ModelMetadata& Metadata() const override { return md_; }
  absl::Status Load() override { return absl::OkStatus(); }
  std::vector<absl::StatusOr<model::InferOutput>> Infer(
      absl::Span<const model::InferInput* const> batch) override {
    std::vector<absl::StatusOr<model::InferOutput>> out;
    for (const model::InferInput* in : batch) {
      const model::Tensor& text = in->inputs.at(0);
      model::InferOutput o;
      o.outputs = {{"reversed", DataType::kBytes, text.shape, {}, {}},
                   {"length", DataType::kInt64, text.shape, {}, {}}};
      for (const std::string& s : text.bytes) {
        o.outputs[0].bytes.emplace_back(s.rbegin(), s.rend());
        o.outputs[1].Append<int64_t>(static_cast<int64_t>(s.size()));
      }
      out.push_back(std::move(o));
    }
    return out;
  }

 private:
  model::ModelMetadata md_;
};

// "fake" with input x = xs (FP32, shape [n]) in typed contents.
ModelInferRequest FakeRequest(const std::vector<float>& xs) {
  ModelInferRequest r;
  r.set_model_name("fake");
  auto* x = r.add_inputs();
  x->set_name("x");
  x->set_datatype("FP32");
  x->add_shape(static_cast<int64_t>(xs.size()));
  for (float f : xs) x->mutable_contents()->add_fp32_contents(f);
  return r;
}

std::vector<float> Floats(const std::string& raw) {
  std::vector<float> v(raw.size() / sizeof(float));
  std::memcpy(v.data(), raw.data(), v.size() * sizeof(float));
  return v;
}

// BYTES raw contents as tritonclient's deserialize_bytes_tensor reads them.
std::vector<std::string> ParseRawBytes(const std::string& raw) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos + 4 <= raw.size()) {
    uint32_t len = 0;
    std::memcpy(&len, raw.data() + pos, 4);  // little-endian host
    out.push_back(raw.substr(pos + 4, len));
    pos += 4 + len;
  }
  return out;
}

void SetDeadline(::grpc::ClientContext& ctx, std::chrono::milliseconds in) {
  ctx.set_deadline(std::chrono::system_clock::now() + in);
}

// Tags of asynchronous calls in the order they completed.
class Completions {
 public:
  void Add(int tag) {
    absl::MutexLock l(&mu_);
    done_.push_back(tag);
    cv_.SignalAll();
  }
  int Next() {
    absl::MutexLock l(&mu_);
    while (done_.empty()) cv_.Wait(&mu_);
    const int tag = done_.front();
    done_.pop_front();
    return tag;
  }

 private:
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<int> done_ ABSL_GUARDED_BY(mu_);
};

struct AsyncCall {
  ::grpc::ClientContext ctx;
  ModelInferRequest req;
  ModelInferResponse resp;
  std::promise<::grpc::Status> promise;
  std::future<::grpc::Status> status = promise.get_future();
};

struct ServerSetup {
  size_t queue_capacity = 16;
  bool load = true;  // load and start the "fake" model before serving
  GrpcOptions options;
};

class GrpcFrontendTest : public ::testing::Test {
 protected:
  void Start(ServerSetup setup = {}) {
    auto fake = std::make_unique<FakeBackend>("fake", 8);
    fake_ = fake.get();
    inference::RunnerOptions ro;
    ro.queue_capacity = setup.queue_capacity;
    ro.batch.max_batch_size = 8;
    std::vector<std::unique_ptr<model::Backend>> v;
    v.push_back(std::move(fake));
    auto runner =
        std::make_unique<inference::ModelRunner>(std::move(v), ro, clock_, &model_metrics_);
    fake_runner_ = runner.get();
    if (setup.load) {
      ASSERT_TRUE(runner->Load({}).ok());
      runner->Start();
    }
    service_.AddModel(std::move(runner));

    inference::RunnerOptions rro;
    rro.batch.max_batch_size = 1;
    std::vector<std::unique_ptr<model::Backend>> rv;
    rv.push_back(std::make_unique<ReverseBackend>());
    auto reverse =
        std::make_unique<inference::ModelRunner>(std::move(rv), rro, clock_, &model_metrics_);
    ASSERT_TRUE(reverse->Load({}).ok());
    reverse->Start();
    service_.AddModel(std::move(reverse));

    GrpcOptions o = std::move(setup.options);
    o.host = "127.0.0.1";
    o.port = 0;
    o.metrics = &metrics_;
    o.clock = &clock_;
    o.server_version = "test-version";
    auto fe = GrpcFrontend::Create(service_, std::move(o));
    ASSERT_TRUE(fe.ok()) << fe.status();
    frontend_ = std::move(fe).value();
    ASSERT_TRUE(frontend_->Start().ok());
    ASSERT_GT(frontend_->port(), 0);
    channel_ = ::grpc::CreateChannel(StrCat("127.0.0.1:", frontend_->port()),
                                     ::grpc::InsecureChannelCredentials());
    stub_ = ::inference::GRPCInferenceService::NewStub(channel_);
    health_ = ::grpc::health::v1::Health::NewStub(channel_);
  }

  void TearDown() override {
    if (fake_ != nullptr) fake_->Unblock();
    if (frontend_) frontend_->Shutdown(std::chrono::steady_clock::now() + 10s);
    service_.Stop();
  }

  ::grpc::Status Infer(const ModelInferRequest& req, ModelInferResponse& resp,
                       std::chrono::milliseconds deadline = 30s) {
    ::grpc::ClientContext ctx;
    SetDeadline(ctx, deadline);
    return stub_->ModelInfer(&ctx, req, &resp);
  }

  // Starts ModelInfer without waiting; `completions` (if any) is told `tag` when it ends.
  std::unique_ptr<AsyncCall> InferAsync(ModelInferRequest req, Completions* completions = nullptr,
                                        int tag = 0) {
    auto call = std::make_unique<AsyncCall>();
    call->req = std::move(req);
    SetDeadline(call->ctx, 30s);
    stub_->async()->ModelInfer(&call->ctx, &call->req, &call->resp,
                               [p = &call->promise, completions, tag](::grpc::Status s) {
                                 if (completions != nullptr) completions->Add(tag);
                                 p->set_value(std::move(s));
                               });
    return call;
  }

  HealthResponse::ServingStatus Check(const std::string& service = "") {
    ::grpc::ClientContext ctx;
    SetDeadline(ctx, 30s);
    ::grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    HealthResponse resp;
    ::grpc::Status st = health_->Check(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.status();
  }

  bool ServerReady() {
    ::grpc::ClientContext ctx;
    SetDeadline(ctx, 30s);
    ::inference::ServerReadyResponse resp;
    EXPECT_TRUE(stub_->ServerReady(&ctx, {}, &resp).ok());
    return resp.ready();
  }

  // Deadlines are on this clock (the runners' and the front-end's); it moves only when told.
  ManualClock clock_{TimePoint{} + std::chrono::hours(1)};
  metrics::Registry registry_;
  inference::ModelMetrics model_metrics_{registry_};
  protocol::FrontendMetrics metrics_{registry_};
  inference::ModelService service_;  // before frontend_: outlives it
  FakeBackend* fake_ = nullptr;
  inference::ModelRunner* fake_runner_ = nullptr;
  std::unique_ptr<GrpcFrontend> frontend_;
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<::inference::GRPCInferenceService::Stub> stub_;
  std::unique_ptr<::grpc::health::v1::Health::Stub> health_;
};

TEST_F(GrpcFrontendTest, LiveReadyAndMetadata) {
  Start();
  {
    ::grpc::ClientContext ctx;
    ::inference::ServerLiveResponse resp;
    ASSERT_TRUE(stub_->ServerLive(&ctx, {}, &resp).ok());
    EXPECT_TRUE(resp.live());
  }
  EXPECT_TRUE(ServerReady());
  {
    ::grpc::ClientContext ctx;
    ::inference::ModelReadyRequest req;
    req.set_name("fake");
    ::inference::ModelReadyResponse resp;
    ASSERT_TRUE(stub_->ModelReady(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.ready());
  }
  {
    ::grpc::ClientContext ctx;
    ::inference::ModelReadyRequest req;
    req.set_name("nope");
    ::inference::ModelReadyResponse resp;
    resp.set_ready(true);
    ::grpc::Status st = stub_->ModelReady(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();  // as Triton: not ready, not an error
    EXPECT_FALSE(resp.ready());
  }
  {
    ::grpc::ClientContext ctx;
    ::inference::ServerMetadataResponse resp;
    ASSERT_TRUE(stub_->ServerMetadata(&ctx, {}, &resp).ok());
    EXPECT_EQ(resp.name(), "galley");
    EXPECT_EQ(resp.version(), "test-version");
    EXPECT_EQ(resp.extensions_size(), 0);
  }
  {
    ::grpc::ClientContext ctx;
    ::inference::ModelMetadataRequest req;
    req.set_name("fake");
    req.set_version("1");
    ::inference::ModelMetadataResponse resp;
    ASSERT_TRUE(stub_->ModelMetadata(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.name(), "fake");
    ASSERT_EQ(resp.versions_size(), 1);
    EXPECT_EQ(resp.versions(0), "1");
    EXPECT_EQ(resp.platform(), "fake");
    ASSERT_EQ(resp.inputs_size(), 1);
    EXPECT_EQ(resp.inputs(0).name(), "x");
    EXPECT_EQ(resp.inputs(0).datatype(), "FP32");
    ASSERT_EQ(resp.inputs(0).shape_size(), 1);
    EXPECT_EQ(resp.inputs(0).shape(0), -1);
    ASSERT_EQ(resp.outputs_size(), 1);
    EXPECT_EQ(resp.outputs(0).name(), "y");
  }
  {
    ::grpc::ClientContext ctx;
    ::inference::ModelMetadataRequest req;
    req.set_name("fake");
    req.set_version("2");
    ::inference::ModelMetadataResponse resp;
    ::grpc::Status st = stub_->ModelMetadata(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), StatusCode::NOT_FOUND);
    EXPECT_EQ(st.error_message(), "unknown model 'fake' version '2'");
  }
}

TEST_F(GrpcFrontendTest, InferWithTypedContents) {
  Start();
  ModelInferRequest req = FakeRequest({1, 2, 3});
  req.set_id("req-1");
  ModelInferResponse resp;
  ::grpc::Status st = Infer(req, resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.model_name(), "fake");
  EXPECT_EQ(resp.model_version(), "1");
  EXPECT_EQ(resp.id(), "req-1");
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "y");
  EXPECT_EQ(resp.outputs(0).datatype(), "FP32");
  ASSERT_EQ(resp.outputs(0).shape_size(), 1);
  EXPECT_EQ(resp.outputs(0).shape(0), 3);
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_EQ(Floats(resp.raw_output_contents(0)), (std::vector<float>{2, 4, 6}));
}

TEST_F(GrpcFrontendTest, InferWithRawContents) {
  Start();
  ModelInferRequest req = FakeRequest({});
  req.mutable_inputs(0)->clear_contents();
  req.mutable_inputs(0)->set_shape(0, 2);
  const float xs[2] = {1.5f, -0.25f};
  req.add_raw_input_contents(std::string(reinterpret_cast<const char*>(xs), sizeof(xs)));
  ModelInferResponse resp;
  ::grpc::Status st = Infer(req, resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_EQ(Floats(resp.raw_output_contents(0)), (std::vector<float>{3.f, -0.5f}));
  EXPECT_TRUE(resp.id().empty());
}

TEST_F(GrpcFrontendTest, BytesRawContentsAndRequestedOutputs) {
  Start();
  ModelInferRequest req;
  req.set_model_name("reverse");
  auto* in = req.add_inputs();
  in->set_name("text");
  in->set_datatype("BYTES");
  in->add_shape(3);
  std::string raw;
  protocol::AppendRawBytes({"abc", "", std::string("x\0y", 3)}, raw);
  req.add_raw_input_contents(raw);
  ModelInferResponse all;
  ::grpc::Status st = Infer(req, all);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(all.outputs_size(), 2);
  ASSERT_EQ(all.raw_output_contents_size(), 2);
  EXPECT_EQ(all.outputs(0).datatype(), "BYTES");
  EXPECT_EQ(ParseRawBytes(all.raw_output_contents(0)),
            (std::vector<std::string>{"cba", "", std::string("y\0x", 3)}));
  // Only "length", as raw INT64.
  req.add_outputs()->set_name("length");
  ModelInferResponse some;
  st = Infer(req, some);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(some.outputs_size(), 1);
  EXPECT_EQ(some.outputs(0).name(), "length");
  EXPECT_EQ(some.outputs(0).datatype(), "INT64");
  ASSERT_EQ(some.raw_output_contents_size(), 1);
  int64_t lengths[3];
  ASSERT_EQ(some.raw_output_contents(0).size(), sizeof(lengths));
  std::memcpy(lengths, some.raw_output_contents(0).data(), sizeof(lengths));
  EXPECT_EQ(lengths[0], 3);
  EXPECT_EQ(lengths[1], 0);
  EXPECT_EQ(lengths[2], 3);
}

TEST_F(GrpcFrontendTest, InvalidRequestsAreRefusedWithClearMessages) {
  Start();
  struct Case {
    const char* what;
    ModelInferRequest req;
    StatusCode code;
    const char* expect;  // substring of the message
  };
  std::vector<Case> cases;
  {
    ModelInferRequest r = FakeRequest({1});
    r.set_model_name("nope");
    cases.push_back({"unknown model", r, StatusCode::NOT_FOUND, "unknown model 'nope'"});
  }
  {
    ModelInferRequest r = FakeRequest({1});
    r.mutable_inputs(0)->set_datatype("INT32");
    cases.push_back({"datatype", r, StatusCode::INVALID_ARGUMENT,
                     "input 'x': datatype INT32 does not match the model's FP32"});
  }
  {
    ModelInferRequest r = FakeRequest({1, 2, 3});
    r.mutable_inputs(0)->set_shape(0, 1);
    r.mutable_inputs(0)->add_shape(3);
    cases.push_back({"shape", r, StatusCode::INVALID_ARGUMENT,
                     "input 'x': shape [1,3] does not match the model's [-1]"});
  }
  {
    ModelInferRequest r = FakeRequest({1, 2});
    r.mutable_inputs(0)->set_shape(0, 3);
    cases.push_back(
        {"count", r, StatusCode::INVALID_ARGUMENT, "has 2 data elements but shape [3] needs 3"});
  }
  {
    ModelInferRequest r = FakeRequest({1});
    const float one = 1;
    r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(&one), sizeof(one)));
    cases.push_back({"mixed", r, StatusCode::INVALID_ARGUMENT, "do not mix"});
  }
  {
    ModelInferRequest r = FakeRequest(std::vector<float>(9, 1.f));
    cases.push_back({"batch", r, StatusCode::INVALID_ARGUMENT, "exceeds the model's maximum of 8"});
  }
  {
    ModelInferRequest r = FakeRequest({1});
    r.add_outputs()->set_name("zzz");
    cases.push_back(
        {"output", r, StatusCode::INVALID_ARGUMENT, "unknown output 'zzz' for model 'fake'"});
  }
  {
    ModelInferRequest r = FakeRequest({1});
    r.clear_inputs();
    cases.push_back({"missing", r, StatusCode::INVALID_ARGUMENT, "missing input 'x'"});
  }
  // The model refuses it (FakeBackend fails negative inputs): kInvalidInput from the backend.
  cases.push_back({"backend", FakeRequest({-1}), StatusCode::INVALID_ARGUMENT, "negative input"});
  for (const Case& c : cases) {
    ModelInferResponse resp;
    ::grpc::Status st = Infer(c.req, resp);
    EXPECT_EQ(st.error_code(), c.code) << c.what << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.expect), std::string::npos)
        << c.what << ": " << st.error_message();
  }
}

TEST_F(GrpcFrontendTest, FullQueueIsResourceExhausted) {
  ServerSetup setup;
  setup.queue_capacity = 1;
  Start(setup);
  fake_->Block();
  Completions completions;
  auto running = InferAsync(FakeRequest({1}), &completions, 0);
  fake_->WaitEntered(1);
  // The worker is busy: of the next two, one takes the only queue slot and one is refused at once.
  auto b = InferAsync(FakeRequest({2}), &completions, 1);
  auto c = InferAsync(FakeRequest({3}), &completions, 2);
  const int refused_tag = completions.Next();
  ASSERT_NE(refused_tag, 0);
  AsyncCall& refused = *(refused_tag == 1 ? b : c);
  AsyncCall& queued = *(refused_tag == 1 ? c : b);
  ::grpc::Status st = refused.status.get();
  EXPECT_EQ(st.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find("queue is full"), std::string::npos) << st.error_message();
  fake_->Unblock();
  EXPECT_TRUE(running->status.get().ok());
  ASSERT_TRUE(queued.status.get().ok());
  EXPECT_EQ(Floats(queued.resp.raw_output_contents(0)),
            std::vector<float>{2 * queued.req.inputs(0).contents().fp32_contents(0)});
}

TEST_F(GrpcFrontendTest, ClientDeadlineIsDeadlineExceededAndTheRequestNeverRuns) {
  Start();
  fake_->Block();
  auto running = InferAsync(FakeRequest({1}));
  fake_->WaitEntered(1);
  // Waits in the queue behind the blocked batch until the client gives up. (-1 would fail if run.)
  ModelInferResponse resp;
  ::grpc::Status st = Infer(FakeRequest({-1}), resp, 300ms);
  EXPECT_EQ(st.error_code(), StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  // The server learns the deadline as a timeout, so on the server it passes a little later than
  // on the client; move the runners' clock past it rather than wait for that.
  clock_.Advance(std::chrono::hours(1));
  fake_->Unblock();
  EXPECT_TRUE(running->status.get().ok());
  frontend_->Shutdown(std::chrono::steady_clock::now() + 10s);  // every call has been answered
  service_.Stop();
  EXPECT_EQ(fake_->batch_sizes(), std::vector<size_t>{1});
}

// More calls in flight at once than the front-end offers the server slots for ahead: every one
// gets its own answer.
TEST_F(GrpcFrontendTest, ManyConcurrentCallsEachGetTheirOwnAnswer) {
  ServerSetup setup;
  setup.queue_capacity = 64;
  setup.options.completion_threads = 1;
  Start(setup);
  fake_->Block();
  std::vector<std::unique_ptr<AsyncCall>> calls;
  calls.push_back(InferAsync(FakeRequest({0})));
  fake_->WaitEntered(1);
  for (int i = 1; i < 40; ++i) calls.push_back(InferAsync(FakeRequest({static_cast<float>(i)})));
  fake_->Unblock();
  for (int i = 0; i < 40; ++i) {
    ::grpc::Status st = calls[i]->status.get();
    ASSERT_TRUE(st.ok()) << i << ": " << st.error_message();
    EXPECT_EQ(Floats(calls[i]->resp.raw_output_contents(0)), std::vector<float>{2.f * i}) << i;
  }
}

// Calls cancelled as soon as they are sent: their done events race their arrivals on the
// completion threads (under ASan, a call freed too early shows here). The server keeps serving.
// The queue holds every call the test makes, so none is shed: each ends cancelled or answered.
TEST_F(GrpcFrontendTest, CallsCancelledAsTheyArriveLeaveTheServerServing) {
  ServerSetup setup;
  setup.queue_capacity = 512;
  Start(setup);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::unique_ptr<AsyncCall>> calls;
    for (int i = 0; i < 20; ++i) {
      calls.push_back(InferAsync(FakeRequest({static_cast<float>(i)})));
      calls.back()->ctx.TryCancel();
    }
    for (auto& call : calls) {
      const StatusCode code = call->status.get().error_code();
      EXPECT_TRUE(code == StatusCode::CANCELLED || code == StatusCode::OK) << code;
    }
  }
  ModelInferResponse resp;
  ASSERT_TRUE(Infer(FakeRequest({4}), resp).ok());
  EXPECT_EQ(Floats(resp.raw_output_contents(0)), std::vector<float>{8});
}

TEST_F(GrpcFrontendTest, ClientCancellationIsCountedAsSuch) {
  Start();
  fake_->Block();
  auto running = InferAsync(FakeRequest({1}));
  fake_->WaitEntered(1);
  auto cancelled = InferAsync(FakeRequest({2}));
  // Cancel only once the server has queued the call (a call cancelled before it is sent never
  // reaches the server). A condition polled with a deadline, not a sleep.
  const auto limit = std::chrono::steady_clock::now() + 30s;
  while (fake_runner_->inflight() < 2 && std::chrono::steady_clock::now() < limit) {
    std::this_thread::yield();
  }
  ASSERT_EQ(fake_runner_->inflight(), 2);
  cancelled->ctx.TryCancel();
  EXPECT_EQ(cancelled->status.get().error_code(), StatusCode::CANCELLED);
  // The server hears of it a little later than the client; it counts the call as the client's
  // doing at once, while the model still holds the request.
  const std::string cancelled_series =
      R"(galley_requests_total{endpoint="infer",model="fake",outcome="client_error"} 1)";
  while (registry_.Exposition().find(cancelled_series) == std::string::npos &&
         std::chrono::steady_clock::now() < limit) {
    std::this_thread::yield();
  }
  fake_->Unblock();
  EXPECT_TRUE(running->status.get().ok());
  // Shutdown returns once the server is done with every call; the model's late answer to the
  // cancelled one is dropped, not counted again.
  frontend_->Shutdown(std::chrono::steady_clock::now() + 10s);
  const std::string text = registry_.Exposition();
  for (const std::string& series : {
           std::string(R"(galley_requests_total{endpoint="infer",model="fake",outcome="ok"} 1)"),
           cancelled_series,
       }) {
    EXPECT_NE(text.find(series), std::string::npos) << series << "\n" << text;
  }
}

TEST_F(GrpcFrontendTest, HealthCheckTurnsNotServingWhenDraining) {
  Start();
  EXPECT_EQ(Check(), HealthResponse::SERVING);
  EXPECT_EQ(Check("inference.GRPCInferenceService"), HealthResponse::SERVING);
  {
    ::grpc::ClientContext ctx;
    ::grpc::health::v1::HealthCheckRequest req;
    req.set_service("nope");
    HealthResponse resp;
    EXPECT_EQ(health_->Check(&ctx, req, &resp).error_code(), StatusCode::NOT_FOUND);
  }
  frontend_->SetDraining();
  EXPECT_EQ(Check(), HealthResponse::NOT_SERVING);
  EXPECT_FALSE(ServerReady());
  // Still serving while draining.
  ModelInferResponse resp;
  EXPECT_TRUE(Infer(FakeRequest({1}), resp).ok());
}

TEST_F(GrpcFrontendTest, HealthWatchStreamsChanges) {
  ServerSetup setup;
  setup.load = false;
  Start(setup);
  ::grpc::ClientContext ctx;
  SetDeadline(ctx, 30s);
  ::grpc::health::v1::HealthCheckRequest req;
  auto watch = health_->Watch(&ctx, req);
  HealthResponse msg;
  ASSERT_TRUE(watch->Read(&msg));
  EXPECT_EQ(msg.status(), HealthResponse::NOT_SERVING);  // the model is not loaded yet
  EXPECT_FALSE(ServerReady());
  ModelInferResponse resp;
  EXPECT_EQ(Infer(FakeRequest({1}), resp).error_code(), StatusCode::UNAVAILABLE);

  ASSERT_TRUE(fake_runner_->Load({}).ok());
  fake_runner_->Start();
  frontend_->RefreshHealth();
  ASSERT_TRUE(watch->Read(&msg));
  EXPECT_EQ(msg.status(), HealthResponse::SERVING);

  frontend_->SetDraining();
  ASSERT_TRUE(watch->Read(&msg));
  EXPECT_EQ(msg.status(), HealthResponse::NOT_SERVING);

  // An unknown service is reported, not refused, on Watch.
  ::grpc::ClientContext ctx2;
  SetDeadline(ctx2, 30s);
  req.set_service("nope");
  auto unknown = health_->Watch(&ctx2, req);
  ASSERT_TRUE(unknown->Read(&msg));
  EXPECT_EQ(msg.status(), HealthResponse::SERVICE_UNKNOWN);

  frontend_->Shutdown(std::chrono::steady_clock::now() + 10s);
  EXPECT_FALSE(watch->Read(&msg));
  EXPECT_EQ(watch->Finish().error_code(), StatusCode::UNAVAILABLE);
  EXPECT_FALSE(unknown->Read(&msg));
  EXPECT_EQ(unknown->Finish().error_code(), StatusCode::UNAVAILABLE);
}

TEST_F(GrpcFrontendTest, ShutdownLetsTheRequestInFlightFinish) {
  Start();
  ::grpc::ClientContext ctx;
  SetDeadline(ctx, 30s);
  auto watch = health_->Watch(&ctx, {});
  HealthResponse msg;
  ASSERT_TRUE(watch->Read(&msg));
  ASSERT_EQ(msg.status(), HealthResponse::SERVING);

  fake_->Block();
  auto in_flight = InferAsync(FakeRequest({21}));
  fake_->WaitEntered(1);
  std::thread stopper([&] { frontend_->Shutdown(std::chrono::steady_clock::now() + 30s); });
  // Shutdown has begun once the Watch stream hears NOT_SERVING.
  ASSERT_TRUE(watch->Read(&msg));
  EXPECT_EQ(msg.status(), HealthResponse::NOT_SERVING);
  fake_->Unblock();
  stopper.join();
  ::grpc::Status st = in_flight->status.get();
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(Floats(in_flight->resp.raw_output_contents(0)), std::vector<float>{42});
  // Nothing is accepted afterwards.
  ModelInferResponse resp;
  EXPECT_EQ(Infer(FakeRequest({1}), resp, 5s).error_code(), StatusCode::UNAVAILABLE);
}

TEST_F(GrpcFrontendTest, RequestsAreCountedInTheServeMetrics) {
  Start();
  ModelInferResponse resp;
  ASSERT_TRUE(Infer(FakeRequest({1}), resp).ok());
  ModelInferRequest unknown = FakeRequest({1});
  unknown.set_model_name("nope");
  EXPECT_EQ(Infer(unknown, resp).error_code(), StatusCode::NOT_FOUND);
  EXPECT_TRUE(ServerReady());
  const std::string text = registry_.Exposition();
  for (const char* series : {
           R"(galley_requests_total{endpoint="infer",model="fake",outcome="ok"} 1)",
           R"(galley_requests_total{endpoint="infer",model="",outcome="not_found"} 1)",
           R"(galley_requests_total{endpoint="health_ready",model="",outcome="ok"} 1)",
       }) {
    EXPECT_NE(text.find(series), std::string::npos) << series << "\n" << text;
  }
}

TEST_F(GrpcFrontendTest, OversizedMessageIsRefused) {
  ServerSetup setup;
  setup.options.max_receive_message_bytes = 1024;
  Start(setup);
  ModelInferResponse resp;
  ::grpc::Status st = Infer(FakeRequest(std::vector<float>(8, 1.f)), resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  ModelInferRequest big = FakeRequest({});
  big.mutable_inputs(0)->clear_contents();
  big.mutable_inputs(0)->set_shape(0, 8);
  big.add_raw_input_contents(std::string(2048, '\0'));
  EXPECT_EQ(Infer(big, resp).error_code(), StatusCode::RESOURCE_EXHAUSTED);
}

// A service that records what the front-end hands it, on a manual clock.
class RecordingService final : public inference::InferenceService {
 public:
  RecordingService() : md_(FakeBackend().Metadata()) {}
  std::vector<model::ModelMetadata> Models() const override { return {md_}; }
  const model::ModelMetadata* FindModel(std::string_view name, std::string_view) const override {
    return name == md_.name ? &md_ : nullptr;
  }
  bool ModelReady(std::string_view, std::string_view) const override { return true; }
  bool Ready() const override { return true; }
  void Infer(inference::InferRequest&& request, inference::InferCallback done) override {
    {
      absl::MutexLock l(&mu_);
      deadlines_.push_back(request.deadline);
    }
    done(inference::InferResult{inference::Outcome::kOk, "", {}});
  }
  TimePoint last_deadline() {
    absl::MutexLock l(&mu_);
    return deadlines_.back();
  }

 private:
  model::ModelMetadata md_;
  absl::Mutex mu_;
  std::vector<TimePoint> deadlines_ ABSL_GUARDED_BY(mu_);
};

TEST(GrpcFrontendDeadlineTest, ClientDeadlineOverridesTheDefault) {
  RecordingService service;
  ManualClock clock(TimePoint{} + std::chrono::hours(5));
  GrpcOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.clock = &clock;
  o.default_timeout = 1234ms;
  auto fe = GrpcFrontend::Create(service, std::move(o));
  ASSERT_TRUE(fe.ok()) << fe.status();
  ASSERT_TRUE((*fe)->Start().ok());
  auto stub = ::inference::GRPCInferenceService::NewStub(::grpc::CreateChannel(
      StrCat("127.0.0.1:", (*fe)->port()), ::grpc::InsecureChannelCredentials()));
  const TimePoint now = clock.Now();
  ModelInferResponse resp;
  {
    ::grpc::ClientContext ctx;  // no deadline: the default
    ASSERT_TRUE(stub->ModelInfer(&ctx, FakeRequest({1}), &resp).ok());
    EXPECT_EQ(service.last_deadline(), now + 1234ms);
  }
  {
    ::grpc::ClientContext ctx;  // parameter "timeout" (microseconds), as Triton
    ModelInferRequest req = FakeRequest({1});
    (*req.mutable_parameters())["timeout"].set_int64_param(5000);
    ASSERT_TRUE(stub->ModelInfer(&ctx, req, &resp).ok());
    EXPECT_EQ(service.last_deadline(), now + 5ms);
  }
  {
    ::grpc::ClientContext ctx;  // the client's deadline wins over both
    SetDeadline(ctx, 60s);
    ModelInferRequest req = FakeRequest({1});
    (*req.mutable_parameters())["timeout"].set_int64_param(5000);
    ASSERT_TRUE(stub->ModelInfer(&ctx, req, &resp).ok());
    // The server learns the deadline as a timeout that gRPC rounds up in transit.
    const TimePoint d = service.last_deadline();
    EXPECT_LE(d, now + 61s);
    EXPECT_GT(d, now + 50s);
  }
  (*fe)->Shutdown(std::chrono::steady_clock::now() + 10s);
}

TEST(GrpcFrontendOptionsTest, CreateChecksOptionsAndStartReportsABusyPort) {
  RecordingService service;
  GrpcOptions bad;
  bad.port = 70000;
  EXPECT_EQ(GrpcFrontend::Create(service, bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.max_receive_message_bytes = 0;
  EXPECT_EQ(GrpcFrontend::Create(service, bad).status().code(), absl::StatusCode::kInvalidArgument);
  for (int threads : {0, 65}) {
    bad = {};
    bad.completion_threads = threads;
    auto created = GrpcFrontend::Create(service, bad);
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument) << threads;
    EXPECT_NE(created.status().message().find("completion_threads"), std::string::npos);
  }

  GrpcOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  auto first = GrpcFrontend::Create(service, o);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->Start().ok());
  EXPECT_EQ((*first)->Start().code(), absl::StatusCode::kFailedPrecondition);
  o.port = (*first)->port();
  auto second = GrpcFrontend::Create(service, o);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->Start().code(), absl::StatusCode::kUnavailable);
}

// Proxy mode: calls reach the handler as REST requests (with the API key metadata as headers),
// answered from another thread; answers and X-Galley-* headers come back; Shutdown waits for an
// answer still owed.
TEST(GrpcProxyTest, CallsReachTheHandlerAsRestAndItsAnswersComeBack) {
  absl::Mutex mu;
  std::vector<std::string> targets, keys;
  std::vector<std::future<void>> answering;
  std::promise<http::Responder> held;  // the answer the handler owes when Shutdown starts
  bool hold_next = false;
  GrpcProxy proxy;
  proxy.ready = [] { return true; };
  proxy.forward = [&](http::Request&& req, http::Responder respond) {
    absl::MutexLock l(&mu);
    targets.emplace_back(req.target());
    keys.emplace_back(req["x-api-key"]);
    if (hold_next) {
      held.set_value(std::move(respond));
      return;
    }
    const bool ready = req.target().ends_with("/ready");
    answering.push_back(std::async(std::launch::async, [respond = std::move(respond), ready] {
      http::Response res{ready ? http::Status::service_unavailable : http::Status::ok, 11};
      res.set("X-Galley-Replica", "127.0.0.1:9");
      if (!ready) {
        res.body() =
            R"({"model_name":"m","id":"x","outputs":[{"name":"n","datatype":"INT64","shape":[1],"data":[7]}]})";
      }
      res.prepare_payload();
      respond(std::move(res));
    }));
  };
  GrpcOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  EXPECT_EQ(GrpcFrontend::CreateProxy(GrpcProxy{}, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto fe = GrpcFrontend::CreateProxy(proxy, o);
  ASSERT_TRUE(fe.ok()) << fe.status();
  ASSERT_TRUE((*fe)->Start().ok());
  auto stub = ::inference::GRPCInferenceService::NewStub(::grpc::CreateChannel(
      StrCat("127.0.0.1:", (*fe)->port()), ::grpc::InsecureChannelCredentials()));
  ModelInferRequest req;
  req.set_model_name("m");
  auto* in = req.add_inputs();
  in->set_name("t");
  in->set_datatype("INT64");
  in->add_shape(1);
  in->mutable_contents()->add_int64_contents(3);
  {
    ::grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", "k1");
    ModelInferResponse resp;
    ASSERT_TRUE(stub->ModelInfer(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.raw_output_contents_size(), 1);
    int64_t v = 0;
    std::memcpy(&v, resp.raw_output_contents(0).data(), sizeof v);
    EXPECT_EQ(v, 7);
    EXPECT_EQ(resp.id(), "x");
    auto it = ctx.GetServerInitialMetadata().find("x-galley-replica");
    ASSERT_NE(it, ctx.GetServerInitialMetadata().end());
    EXPECT_EQ(std::string(it->second.data(), it->second.size()), "127.0.0.1:9");
  }
  {
    ::grpc::ClientContext ctx;
    ::inference::ModelReadyRequest r;
    r.set_name("m");
    ::inference::ModelReadyResponse resp;
    ASSERT_TRUE(stub->ModelReady(&ctx, r, &resp).ok());
    EXPECT_FALSE(resp.ready());  // the handler said 503
  }
  {
    absl::MutexLock l(&mu);
    EXPECT_EQ(targets, (std::vector<std::string>{"/v2/models/m/infer", "/v2/models/m/ready"}));
    EXPECT_EQ(keys, (std::vector<std::string>{"k1", ""}));
    hold_next = true;
  }
  // A call whose answer is owed when Shutdown starts: Shutdown cancels it at its deadline and
  // returns only once the handler has answered (the answer then goes nowhere).
  ::grpc::ClientContext owed_ctx;
  ModelInferResponse owed_resp;
  std::future<::grpc::Status> owed =
      std::async(std::launch::async, [&] { return stub->ModelInfer(&owed_ctx, req, &owed_resp); });
  http::Responder respond = held.get_future().get();
  std::atomic<bool> shut{false};
  std::thread shutdown([&] {
    (*fe)->Shutdown(std::chrono::steady_clock::now() + 100ms);
    shut.store(true);
  });
  EXPECT_FALSE(owed.get().ok());  // the call ended with the server, at the deadline
  EXPECT_FALSE(shut.load());      // ... but Shutdown still waits for the handler's answer
  http::Response late{http::Status::ok, 11};
  late.prepare_payload();
  respond(std::move(late));
  shutdown.join();
  EXPECT_TRUE(shut.load());
  for (auto& f : answering) f.get();
}

TEST(GrpcCodeForTest, MapsEveryOutcome) {
  using inference::Outcome;
  EXPECT_EQ(GrpcCodeFor(Outcome::kOk), StatusCode::OK);
  EXPECT_EQ(GrpcCodeFor(Outcome::kInvalidInput), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(GrpcCodeFor(Outcome::kModelNotFound), StatusCode::NOT_FOUND);
  EXPECT_EQ(GrpcCodeFor(Outcome::kModelNotReady), StatusCode::UNAVAILABLE);
  EXPECT_EQ(GrpcCodeFor(Outcome::kQueueFull), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(GrpcCodeFor(Outcome::kDeadlineExceeded), StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(GrpcCodeFor(Outcome::kShuttingDown), StatusCode::UNAVAILABLE);
  EXPECT_EQ(GrpcCodeFor(Outcome::kInternal), StatusCode::INTERNAL);
}

}  // namespace
}  // namespace galley::rpc
