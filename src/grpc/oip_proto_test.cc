#include "grpc/oip_proto.h"

#include <cstring>
#include <functional>

#include "grpc_service.pb.h"
#include "gtest/gtest.h"
#include "protocol/oip_json.h"

namespace galley::rpc {
namespace {

using model::DataType;
using Request = ::inference::ModelInferRequest;

// Inputs "a" FP32 [-1,3], "b" INT8 [-1], "text" BYTES [-1]; outputs "y" FP32, "z" BYTES.
model::ModelMetadata Model() {
  model::ModelMetadata md;
  md.name = "m";
  md.version = "1";
  md.platform = "test";
  md.max_batch_size = 4;
  md.inputs = {{"a", DataType::kFp32, {-1, 3}},
               {"b", DataType::kInt8, {-1}},
               {"text", DataType::kBytes, {-1}}};
  md.outputs = {{"y", DataType::kFp32, {-1}}, {"z", DataType::kBytes, {-1}}};
  return md;
}

std::string RawFloats(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// A valid request with typed contents: a = [[1,2,3]], b = [-5], text = ["hi"].
Request Typed() {
  Request r;
  r.set_model_name("m");
  auto* a = r.add_inputs();
  a->set_name("a");
  a->set_datatype("FP32");
  a->add_shape(1);
  a->add_shape(3);
  for (float f : {1.f, 2.f, 3.f}) a->mutable_contents()->add_fp32_contents(f);
  auto* b = r.add_inputs();
  b->set_name("b");
  b->set_datatype("INT8");
  b->add_shape(1);
  b->mutable_contents()->add_int_contents(-5);
  auto* t = r.add_inputs();
  t->set_name("text");
  t->set_datatype("BYTES");
  t->add_shape(1);
  t->mutable_contents()->add_bytes_contents("hi");
  return r;
}

// The same request with raw contents, inputs in another order than the model's.
Request Raw() {
  Request r;
  r.set_model_name("m");
  auto* t = r.add_inputs();
  t->set_name("text");
  t->set_datatype("BYTES");
  t->add_shape(2);
  auto* a = r.add_inputs();
  a->set_name("a");
  a->set_datatype("FP32");
  a->add_shape(1);
  a->add_shape(3);
  auto* b = r.add_inputs();
  b->set_name("b");
  b->set_datatype("INT8");
  b->add_shape(1);
  std::string text;
  protocol::AppendRawBytes({"hi", ""}, text);
  r.add_raw_input_contents(text);
  r.add_raw_input_contents(RawFloats({1, 2, 3}));
  r.add_raw_input_contents(std::string(1, static_cast<char>(-5)));
  return r;
}

TEST(DecodeInferRequestTest, TypedContents) {
  Request req = Typed();
  req.set_id("42");
  (*req.mutable_parameters())["timeout"].set_int64_param(1500);
  req.add_outputs()->set_name("z");
  auto d = DecodeInferRequest(req, Model());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->id, "42");
  EXPECT_EQ(d->timeout_us, 1500);
  EXPECT_EQ(d->outputs, std::vector<std::string>{"z"});
  ASSERT_EQ(d->input.inputs.size(), 3u);
  const auto& a = d->input.inputs[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{1, 3}));
  EXPECT_FLOAT_EQ(a.At<float>(2), 3.f);
  EXPECT_EQ(d->input.inputs[1].At<int8_t>(0), -5);
  EXPECT_EQ(d->input.inputs[2].bytes, std::vector<std::string>{"hi"});
}

TEST(DecodeInferRequestTest, RawContentsInRequestOrder) {
  auto d = DecodeInferRequest(Raw(), Model());
  // shape [2] for text but [1] for the others: the batch dimensions differ.
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("same batch dimension"), std::string_view::npos)
      << d.status();
  Request req = Raw();
  req.mutable_inputs(0)->set_shape(0, 1);
  std::string one;
  protocol::AppendRawBytes({std::string("h\0i", 3)}, one);
  req.set_raw_input_contents(0, one);
  d = DecodeInferRequest(req, Model());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FLOAT_EQ(d->input.inputs[0].At<float>(1), 2.f);
  EXPECT_EQ(d->input.inputs[1].At<int8_t>(0), -5);
  EXPECT_EQ(d->input.inputs[2].bytes, std::vector<std::string>{std::string("h\0i", 3)});
}

struct BadCase {
  const char* what;
  std::function<void(Request&)> change;
  const char* expect;  // substring of the error
};

TEST(DecodeInferRequestTest, RejectsWithClearErrors) {
  const std::vector<BadCase> typed = {
      {"unknown input", [](Request& r) { r.mutable_inputs(0)->set_name("nope"); },
       "unknown input 'nope'"},
      {"missing input", [](Request& r) { r.mutable_inputs()->RemoveLast(); },
       "missing input 'text'"},
      {"twice", [](Request& r) { *r.add_inputs() = r.inputs(0); }, "given more than once"},
      {"datatype", [](Request& r) { r.mutable_inputs(0)->set_datatype("INT32"); },
       "input 'a': datatype INT32 does not match the model's FP32"},
      {"unknown datatype", [](Request& r) { r.mutable_inputs(0)->set_datatype("FP8"); },
       "unknown datatype 'FP8'"},
      {"shape", [](Request& r) { r.mutable_inputs(0)->set_shape(1, 4); },
       "input 'a': shape [1,4] does not match the model's [-1,3]"},
      {"negative", [](Request& r) { r.mutable_inputs(1)->set_shape(0, -1); }, "negative dimension"},
      {"batch", [](Request& r) { r.mutable_inputs(1)->set_shape(0, 5); },
       "exceeds the model's maximum of 4"},
      {"count", [](Request& r) { r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(4); },
       "has 4 data elements but shape [1,3] needs 3"},
      {"wrong field",
       [](Request& r) { r.mutable_inputs(0)->mutable_contents()->add_int_contents(4); },
       "takes its elements in 'fp32_contents'"},
      {"range",
       [](Request& r) { r.mutable_inputs(1)->mutable_contents()->set_int_contents(0, 300); },
       "300 is out of range for INT8"},
      {"output", [](Request& r) { r.add_outputs()->set_name("zzz"); }, "unknown output 'zzz'"},
      {"timeout", [](Request& r) { (*r.mutable_parameters())["timeout"].set_string_param("soon"); },
       "'timeout' must be"},
      {"mixed",
       [](Request& r) {
         r.add_raw_input_contents(RawFloats({1, 2, 3}));
         r.add_raw_input_contents("x");
         r.add_raw_input_contents("x");
       },
       "do not mix"},
      {"raw count", [](Request& r) { r.add_raw_input_contents("x"); },
       "raw_input_contents has 1 entries"},
  };
  for (const BadCase& c : typed) {
    Request req = Typed();
    c.change(req);
    auto d = DecodeInferRequest(req, Model());
    ASSERT_FALSE(d.ok()) << c.what;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(d.status().message().find(c.expect), std::string_view::npos)
        << c.what << " -> " << d.status().message();
  }
  const std::vector<BadCase> raw = {
      {"raw size",
       [](Request& r) {
         r.set_raw_input_contents(1, RawFloats({1, 2}));
       },
       "raw_input_contents holds 8 bytes but shape [1,3] of FP32 needs 12"},
      {"bytes cut in length",
       [](Request& r) { r.set_raw_input_contents(0, std::string("\2\0\0", 3)); },
       "cut off inside its 4-byte length"},
      {"bytes cut in data",
       [](Request& r) { r.set_raw_input_contents(0, std::string("\5\0\0\0ab", 6)); },
       "claims 5 bytes but only 2 remain"},
      {"bytes too many",
       [](Request& r) {
         std::string s;
         protocol::AppendRawBytes({"a", "b", "c"}, s);
         r.set_raw_input_contents(0, s);
       },
       "more elements than shape [2] needs"},
      {"bytes too few",
       [](Request& r) {
         std::string s;
         protocol::AppendRawBytes({"a"}, s);
         r.set_raw_input_contents(0, s);
       },
       "has 1 data elements but shape [2] needs 2"},
  };
  for (const BadCase& c : raw) {
    Request req = Raw();
    c.change(req);
    auto d = DecodeInferRequest(req, Model());
    ASSERT_FALSE(d.ok()) << c.what;
    EXPECT_NE(d.status().message().find(c.expect), std::string_view::npos)
        << c.what << " -> " << d.status().message();
  }
}

TEST(EncodeTest, InferResponseUsesRawContentsAndFiltersOutputs) {
  model::InferOutput out;
  model::Tensor y{"y", DataType::kFp32, {2}, {}, {}};
  y.Append<float>(0.5f);
  y.Append<float>(-1.f);
  model::Tensor z{"z", DataType::kBytes, {2}, {}, {"ab", ""}};
  out.outputs = {y, z};
  auto resp = EncodeInferResponse(Model(), "7", out, {});
  EXPECT_EQ(resp.model_name(), "m");
  EXPECT_EQ(resp.model_version(), "1");
  EXPECT_EQ(resp.id(), "7");
  ASSERT_EQ(resp.outputs_size(), 2);
  ASSERT_EQ(resp.raw_output_contents_size(), 2);
  EXPECT_EQ(resp.outputs(0).datatype(), "FP32");
  EXPECT_EQ(resp.outputs(0).shape(0), 2);
  EXPECT_FALSE(resp.outputs(0).has_contents());
  EXPECT_EQ(resp.raw_output_contents(0), RawFloats({0.5f, -1.f}));
  EXPECT_EQ(resp.raw_output_contents(1), std::string("\2\0\0\0ab\0\0\0\0", 10));
  auto only_z = EncodeInferResponse(Model(), "", out, {"z"});
  ASSERT_EQ(only_z.outputs_size(), 1);
  EXPECT_EQ(only_z.outputs(0).name(), "z");
  EXPECT_EQ(only_z.raw_output_contents_size(), 1);
  EXPECT_TRUE(only_z.id().empty());
}

TEST(EncodeTest, ModelMetadata) {
  auto md = EncodeModelMetadata(Model());
  EXPECT_EQ(md.name(), "m");
  ASSERT_EQ(md.versions_size(), 1);
  EXPECT_EQ(md.versions(0), "1");
  EXPECT_EQ(md.platform(), "test");
  ASSERT_EQ(md.inputs_size(), 3);
  EXPECT_EQ(md.inputs(0).datatype(), "FP32");
  EXPECT_EQ(md.inputs(0).shape(0), -1);
  EXPECT_EQ(md.inputs(0).shape(1), 3);
  EXPECT_EQ(md.outputs(1).name(), "z");
}

TEST(RequestDeadlineTest, ClientDeadlineThenTimeoutParameterThenDefault) {
  const TimePoint now = TimePoint{} + std::chrono::hours(1);
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  EXPECT_EQ(RequestDeadline(milliseconds(250), 9'000'000, milliseconds(30'000), now),
            now + milliseconds(250));
  EXPECT_EQ(RequestDeadline(std::nullopt, 1500, milliseconds(30'000), now),
            now + microseconds(1500));
  EXPECT_EQ(RequestDeadline(std::nullopt, 0, milliseconds(30'000), now),
            now + milliseconds(30'000));
  EXPECT_EQ(RequestDeadline(std::nullopt, std::nullopt, milliseconds(0), now), TimePoint::max());
  EXPECT_EQ(RequestDeadline(std::chrono::hours(24 * 400), std::nullopt, milliseconds(0), now),
            now + std::chrono::hours(24));
}

}  // namespace
}  // namespace galley::rpc
