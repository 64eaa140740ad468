#include "serve/oip_json.h"

#include "boost/json/parse.hpp"
#include "gtest/gtest.h"

namespace galley::serve {
namespace {

using model::DataType;

model::ModelMetadata TextModel() {
  model::ModelMetadata md;
  md.name = "vader";
  md.version = "1";
  md.max_batch_size = 4;
  md.inputs = {{"text", DataType::kBytes, {-1}}};
  md.outputs = {{"label", DataType::kBytes, {-1}}, {"probability", DataType::kFp32, {-1}}};
  return md;
}

model::ModelMetadata MatrixModel() {
  model::ModelMetadata md;
  md.name = "mat";
  md.version = "1";
  md.max_batch_size = 0;
  md.inputs = {{"a", DataType::kFp32, {2, 3}}, {"b", DataType::kInt8, {-1}}, {"c", DataType::kBool, {1}}};
  md.outputs = {{"out", DataType::kFp64, {2}}};
  return md;
}

TEST(DecodeInferRequestTest, BytesInput) {
  auto r = DecodeInferRequest(
      R"({"id":"r1","inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["good","bad"]}]})",
      TextModel());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->id, "r1");
  ASSERT_EQ(r->input.inputs.size(), 1u);
  EXPECT_EQ(r->input.inputs[0].bytes, (std::vector<std::string>{"good", "bad"}));
  EXPECT_EQ(r->input.inputs[0].shape, (std::vector<int64_t>{2}));
}

TEST(DecodeInferRequestTest, NestedAndFlatDataAndTypes) {
  auto r = DecodeInferRequest(R"({"inputs":[
      {"name":"c","shape":[1],"datatype":"BOOL","data":[true]},
      {"name":"a","shape":[2,3],"datatype":"FP32","data":[[1,2.5,-3],[4e2,5,6]]},
      {"name":"b","shape":[3],"datatype":"INT8","data":[-128,0,127]}],
      "outputs":[{"name":"out"}], "parameters":{"timeout":1500}})",
                              MatrixModel());
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& a = r->input.inputs[0];  // model order, not request order
  EXPECT_EQ(a.name, "a");
  EXPECT_FLOAT_EQ(a.At<float>(1), 2.5f);
  EXPECT_FLOAT_EQ(a.At<float>(3), 400.0f);
  EXPECT_EQ(r->input.inputs[1].At<int8_t>(0), -128);
  EXPECT_EQ(r->input.inputs[2].At<uint8_t>(0), 1);
  EXPECT_EQ(r->outputs, (std::vector<std::string>{"out"}));
  EXPECT_EQ(r->timeout_us, 1500);
}

struct BadCase {
  const char* body;
  const char* expect;  // substring of the error
};

TEST(DecodeInferRequestTest, RejectsWithClearErrors) {
  const std::vector<BadCase> cases = {
      {R"({"inputs":[)", "malformed JSON"},
      {R"([1,2])", "must be a JSON object"},
      {R"({})", "'inputs' must be an array"},
      {R"({"inputs":[{"name":"nope","shape":[1],"datatype":"BYTES","data":["x"]}]})", "unknown input 'nope'"},
      {R"({"inputs":[]})", "missing input 'text'"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"FP32","data":[1]}]})", "datatype FP32 does not match the model's BYTES"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"FOO","data":[1]}]})", "unknown datatype 'FOO'"},
      {R"({"inputs":[{"name":"text","shape":[1,1],"datatype":"BYTES","data":["x"]}]})", "shape [1,1] does not match the model's [-1]"},
      {R"({"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["x"]}]})", "has 1 data elements but shape [2] needs 2"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["x","y"]}]})", "more data elements than the shape holds"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":[5]}]})", "expected a string"},
      {R"({"inputs":[{"name":"text","shape":[5],"datatype":"BYTES","data":["a","b","c","d","e"]}]})", "exceeds the model's maximum of 4"},
      {R"({"inputs":[{"name":"text","shape":[-1],"datatype":"BYTES","data":[]}]})", "non-negative integers"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES"}]})", "'data' is missing"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]},{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}]})", "given more than once"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}],"outputs":[{"name":"zzz"}]})", "unknown output 'zzz'"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}],"parameters":{"timeout":"soon"}})", "'timeout' must be"},
      {R"({"id":7,"inputs":[]})", "'id' must be a string"},
  };
  for (const BadCase& c : cases) {
    auto r = DecodeInferRequest(c.body, TextModel());
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_NE(r.status().message().find(c.expect), std::string_view::npos)
        << c.body << " -> " << r.status().message();
  }
}

TEST(DecodeInferRequestTest, RangeChecks) {
  const std::vector<BadCase> cases = {
      {R"({"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,1e39]},{"name":"b","shape":[1],"datatype":"INT8","data":[1]},{"name":"c","shape":[1],"datatype":"BOOL","data":[true]}]})", "out of range for FP32"},
      {R"({"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]},{"name":"b","shape":[1],"datatype":"INT8","data":[128]},{"name":"c","shape":[1],"datatype":"BOOL","data":[true]}]})", "out of range"},
      {R"({"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]},{"name":"b","shape":[1],"datatype":"INT8","data":[1.5]},{"name":"c","shape":[1],"datatype":"BOOL","data":[true]}]})", "expected an integer"},
      {R"({"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]},{"name":"b","shape":[1],"datatype":"INT8","data":[1]},{"name":"c","shape":[1],"datatype":"BOOL","data":[1]}]})", "expected true or false"},
      {R"({"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,"x"]},{"name":"b","shape":[1],"datatype":"INT8","data":[1]},{"name":"c","shape":[1],"datatype":"BOOL","data":[true]}]})", "expected a number"},
  };
  for (const BadCase& c : cases) {
    auto r = DecodeInferRequest(c.body, MatrixModel());
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_NE(r.status().message().find(c.expect), std::string_view::npos) << r.status().message();
  }
}

TEST(EncodeTest, InferResponseFiltersOutputsAndRoundsFloats) {
  model::InferOutput out;
  model::Tensor label{"label", DataType::kBytes, {1}, {}, {"Positive"}};
  model::Tensor prob{"probability", DataType::kFp32, {1}, {}, {}};
  prob.Append<float>(0.8316f);
  out.outputs = {label, prob};
  auto all = boost::json::parse(EncodeInferResponse(TextModel(), "id9", out, {}));
  EXPECT_EQ(all.at("model_name").as_string(), "vader");
  EXPECT_EQ(all.at("id").as_string(), "id9");
  ASSERT_EQ(all.at("outputs").as_array().size(), 2u);
  EXPECT_DOUBLE_EQ(all.at("outputs").at(1).at("data").at(0).as_double(), 0.8316);
  auto some = boost::json::parse(EncodeInferResponse(TextModel(), "", out, {"label"}));
  ASSERT_EQ(some.at("outputs").as_array().size(), 1u);
  EXPECT_EQ(some.at("outputs").at(0).at("data").at(0).as_string(), "Positive");
  EXPECT_EQ(some.as_object().if_contains("id"), nullptr);
}

TEST(EncodeTest, Metadata) {
  auto md = boost::json::parse(EncodeModelMetadata(TextModel()));
  EXPECT_EQ(md.at("name").as_string(), "vader");
  EXPECT_EQ(md.at("versions").at(0).as_string(), "1");
  EXPECT_EQ(md.at("inputs").at(0).at("datatype").as_string(), "BYTES");
  EXPECT_EQ(md.at("inputs").at(0).at("shape").at(0).as_int64(), -1);
  auto srv = boost::json::parse(EncodeServerMetadata("galley", "0.1.0"));
  EXPECT_EQ(srv.at("name").as_string(), "galley");
  EXPECT_TRUE(srv.at("extensions").is_array());
}

TEST(AnalyzeTest, DecodeAndErrors) {
  auto ok = DecodeAnalyzeRequest(R"({"text":"I love it"})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "I love it");
  const std::vector<BadCase> cases = {
      {R"({"text":""})", "must not be empty"},
      {R"({"text":"  \t\n "})", "must not be empty"},
      {R"({"text":42})", "'text' must be a string"},
      {R"({"txt":"x"})", "missing field 'text'"},
      {R"("text")", "must be a JSON object"},
      {R"({"text":"x")", "malformed JSON"},
      {"", "malformed JSON"},
  };
  for (const BadCase& c : cases) {
    auto r = DecodeAnalyzeRequest(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_NE(r.status().message().find(c.expect), std::string_view::npos) << r.status().message();
  }
  auto enc = boost::json::parse(EncodeAnalyzeResponse("Negative", 0.75f, "vader"));
  EXPECT_EQ(enc.at("sentiment").as_string(), "Negative");
  EXPECT_DOUBLE_EQ(enc.at("confidence").as_double(), 0.75);
}

}  // namespace
}  // namespace galley::serve
