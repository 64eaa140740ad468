#include "grpc/oip_rest.h"

#include <cstring>

#include "grpc_service.pb.h"
#include "gtest/gtest.h"
#include "protocol/http_util.h"
#include "protocol/oip_json.h"

namespace galley::rpc {
namespace {

using model::DataType;
using Request = ::inference::ModelInferRequest;

// Inputs "a" FP32 [-1,3] and "text" BYTES [-1]; outputs "y" FP32 and "z" BYTES.
model::ModelMetadata Model() {
  model::ModelMetadata md;
  md.name = "m";
  md.version = "1";
  md.platform = "test";
  md.max_batch_size = 4;
  md.inputs = {{"a", DataType::kFp32, {-1, 3}}, {"text", DataType::kBytes, {-1}}};
  md.outputs = {{"y", DataType::kFp32, {-1}}, {"z", DataType::kBytes, {-1}}};
  return md;
}

std::string RawFloats(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// a = [[1,2,3],[4,5,6]], text = ["hi", ""], typed contents.
Request Typed() {
  Request r;
  r.set_model_name("m");
  r.set_id("req-1");
  auto* a = r.add_inputs();
  a->set_name("a");
  a->set_datatype("FP32");
  a->add_shape(2);
  a->add_shape(3);
  for (float f : {1.f, 2.f, 3.f, 4.f, 5.f, 6.f}) a->mutable_contents()->add_fp32_contents(f);
  auto* t = r.add_inputs();
  t->set_name("text");
  t->set_datatype("BYTES");
  t->add_shape(2);
  t->mutable_contents()->add_bytes_contents("hi");
  t->mutable_contents()->add_bytes_contents("");
  return r;
}

std::optional<size_t> HeaderLength(const http::Request& req) {
  auto it = req.find(protocol::kInferenceHeaderLength);
  if (it == req.end()) return std::nullopt;
  return std::stoul(std::string(it->value()));
}

// What the replica's REST front-end makes of the request.
absl::StatusOr<protocol::DecodedInferRequest> AsReplicaSees(const http::Request& req) {
  return protocol::DecodeInferRequest(req.body(), Model(), HeaderLength(req));
}

TEST(RestInferRequest, TypedContentsArriveAsTheReplicaDecodesThem) {
  auto rest = RestInferRequest(Typed());
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->method(), http::Verb::post);
  EXPECT_EQ(rest->target(), "/v2/models/m/infer");
  auto decoded = AsReplicaSees(*rest);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->id, "req-1");
  const model::Tensor* a = nullptr;
  const model::Tensor* text = nullptr;
  for (const auto& t : decoded->input.inputs) {
    if (t.name == "a") a = &t;
    if (t.name == "text") text = &t;
  }
  ASSERT_NE(a, nullptr);
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a->raw.data()), a->raw.size()),
            RawFloats({1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(text->bytes, (std::vector<std::string>{"hi", ""}));
}

TEST(RestInferRequest, RawContentsPassAsTheyAre) {
  Request r;
  r.set_model_name("m");
  r.set_model_version("1");
  auto* a = r.add_inputs();
  a->set_name("a");
  a->set_datatype("FP32");
  a->add_shape(2);
  a->add_shape(3);
  auto* t = r.add_inputs();
  t->set_name("text");
  t->set_datatype("BYTES");
  t->add_shape(2);
  r.add_raw_input_contents(RawFloats({1, 2, 3, 4, 5, 6}));
  std::string text;
  protocol::AppendRawBytes({"hello", ""}, text);
  r.add_raw_input_contents(text);
  r.add_outputs()->set_name("z");
  auto rest = RestInferRequest(r);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->target(), "/v2/models/m/versions/1/infer");
  auto decoded = AsReplicaSees(*rest);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->outputs, (std::vector<std::string>{"z"}));
  EXPECT_EQ(decoded->input.inputs.size(), 2u);
  // The requested output is asked for in binary.
  EXPECT_NE(rest->body().find("\"binary_data\":true"), std::string::npos);
}

TEST(RestInferRequest, WithoutRequestedOutputsAllAreAskedInBinary) {
  auto rest = RestInferRequest(Typed());
  ASSERT_TRUE(rest.ok());
  EXPECT_NE(rest->body().find("\"binary_data_output\":true"), std::string::npos);
}

TEST(RestInferRequest, NamesAreEscapedSoNoneReachesAnotherEndpoint) {
  Request r = Typed();
  r.set_model_name("../health/ready?x=#");
  auto rest = RestInferRequest(r);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->target(), "/v2/models/..%2Fhealth%2Fready%3Fx%3D%23/infer");
  r.set_model_name("..");
  EXPECT_EQ(RestInferRequest(r).status().code(), absl::StatusCode::kInvalidArgument);
  r.set_model_name("");
  EXPECT_EQ(RestInferRequest(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RestInferRequest, BadRequestsAreRefusedWithTheReason) {
  Request mixed = Typed();
  mixed.add_raw_input_contents(RawFloats({1, 2, 3}));
  mixed.add_raw_input_contents("xx");
  auto st = RestInferRequest(mixed).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("do not mix"), std::string_view::npos) << st;

  Request short_raw = Typed();
  short_raw.clear_raw_input_contents();
  for (auto& in : *short_raw.mutable_inputs()) in.clear_contents();
  short_raw.add_raw_input_contents("x");
  st = RestInferRequest(short_raw).status();
  EXPECT_NE(st.message().find("one entry per input"), std::string_view::npos) << st;

  Request bad_type = Typed();
  bad_type.mutable_inputs(0)->set_datatype("FLOAT");
  st = RestInferRequest(bad_type).status();
  EXPECT_NE(st.message().find("unknown datatype 'FLOAT'"), std::string_view::npos) << st;

  Request wrong_count = Typed();
  wrong_count.mutable_inputs(0)->mutable_contents()->add_fp32_contents(4);
  st = RestInferRequest(wrong_count).status();
  EXPECT_NE(st.message().find("input 'a'"), std::string_view::npos) << st;
}

http::Response Answer(unsigned status, std::string body) {
  http::Response res{static_cast<http::Status>(status), 11};
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

TEST(GrpcInferResponse, ReadsBinaryOutputs) {
  const std::string json =
      R"({"model_name":"m","model_version":"1","id":"req-1","parameters":{"fallback":true},)"
      R"("outputs":[{"name":"y","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},)"
      R"({"name":"z","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":7}}]})";
  std::string bytes;
  protocol::AppendRawBytes({"pos"}, bytes);
  http::Response res = Answer(200, json + RawFloats({0.5f, 2}) + bytes);
  res.set(protocol::kInferenceHeaderLength, std::to_string(json.size()));
  ::inference::ModelInferResponse out;
  ASSERT_TRUE(GrpcInferResponse(res, &out).ok());
  EXPECT_EQ(out.model_name(), "m");
  EXPECT_EQ(out.id(), "req-1");
  EXPECT_TRUE(out.parameters().at("fallback").bool_param());
  ASSERT_EQ(out.outputs_size(), 2);
  EXPECT_EQ(out.outputs(0).shape(0), 2);
  EXPECT_EQ(out.raw_output_contents(0), RawFloats({0.5f, 2}));
  EXPECT_EQ(out.raw_output_contents(1), bytes);
}

TEST(GrpcInferResponse, ConvertsJsonData) {
  http::Response res = Answer(
      200,
      R"({"model_name":"m","outputs":[{"name":"y","datatype":"FP32","shape":[1,2],"data":[[1.5,-2]]},)"
      R"({"name":"z","datatype":"BYTES","shape":[1],"data":["neg"]}]})");
  ::inference::ModelInferResponse out;
  ASSERT_TRUE(GrpcInferResponse(res, &out).ok());
  EXPECT_EQ(out.raw_output_contents(0), RawFloats({1.5f, -2}));
  std::string bytes;
  protocol::AppendRawBytes({"neg"}, bytes);
  EXPECT_EQ(out.raw_output_contents(1), bytes);
}

TEST(GrpcInferResponse, AnAnswerThatCannotBeReadIsInternalAndSaysWhy) {
  ::inference::ModelInferResponse out;
  auto st = GrpcInferResponse(Answer(200, "{not json"), &out);
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::INTERNAL);
  EXPECT_NE(st.error_message().find("malformed JSON"), std::string::npos);
  http::Response extra = Answer(200, R"({"outputs":[]})"
                                     "junk");
  extra.set(protocol::kInferenceHeaderLength, "14");
  st = GrpcInferResponse(extra, &out);
  EXPECT_NE(st.error_message().find("4 bytes of binary data no output claims"), std::string::npos)
      << st.error_message();
  http::Response beyond = Answer(200, R"({"outputs":[]})");
  beyond.set(protocol::kInferenceHeaderLength, "99");
  EXPECT_EQ(GrpcInferResponse(beyond, &out).error_code(), ::grpc::StatusCode::INTERNAL);
}

TEST(GrpcInferResponse, ErrorsKeepTheirMessageAndMapToGrpcCodes) {
  ::inference::ModelInferResponse out;
  auto st = GrpcInferResponse(Answer(400, R"({"error":"input 'a' is missing"})"), &out);
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "input 'a' is missing");
  EXPECT_EQ(GrpcInferResponse(Answer(401, "{}"), &out).error_code(),
            ::grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GrpcInferResponse(Answer(404, ""), &out).error_code(), ::grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(GrpcInferResponse(Answer(429, ""), &out).error_code(),
            ::grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(GrpcInferResponse(Answer(503, ""), &out).error_code(), ::grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(GrpcInferResponse(Answer(504, ""), &out).error_code(),
            ::grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(GrpcInferResponse(Answer(500, ""), &out).error_code(), ::grpc::StatusCode::INTERNAL);
  EXPECT_EQ(GrpcInferResponse(Answer(302, ""), &out).error_code(), ::grpc::StatusCode::UNKNOWN);
  EXPECT_NE(GrpcInferResponse(Answer(503, ""), &out).error_message().find("503"),
            std::string::npos);
}

TEST(GrpcModelMetadata, ReadsTheRestMetadata) {
  ::inference::ModelMetadataResponse out;
  ASSERT_TRUE(GrpcModelMetadata(Answer(200, protocol::EncodeModelMetadata(Model())), &out).ok());
  EXPECT_EQ(out.name(), "m");
  EXPECT_EQ(out.platform(), "test");
  ASSERT_EQ(out.inputs_size(), 2);
  EXPECT_EQ(out.inputs(0).name(), "a");
  EXPECT_EQ(out.inputs(0).datatype(), "FP32");
  EXPECT_EQ(out.inputs(0).shape_size(), 2);
  ASSERT_EQ(out.outputs_size(), 2);
  EXPECT_EQ(out.outputs(1).datatype(), "BYTES");
  EXPECT_EQ(GrpcModelMetadata(Answer(404, R"({"error":"unknown model"})"), &out).error_code(),
            ::grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace galley::rpc
