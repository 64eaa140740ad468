#include "protocol/oip_json.h"

#include "boost/json/parse.hpp"
#include "gtest/gtest.h"

namespace galley::protocol {
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
  md.inputs = {
      {"a", DataType::kFp32, {2, 3}}, {"b", DataType::kInt8, {-1}}, {"c", DataType::kBool, {1}}};
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
      {R"({"inputs":[{"name":"nope","shape":[1],"datatype":"BYTES","data":["x"]}]})",
       "unknown input 'nope'"},
      {R"({"inputs":[]})", "missing input 'text'"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"FP32","data":[1]}]})",
       "datatype FP32 does not match the model's BYTES"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"FOO","data":[1]}]})",
       "unknown datatype 'FOO'"},
      {R"({"inputs":[{"name":"text","shape":[1,1],"datatype":"BYTES","data":["x"]}]})",
       "shape [1,1] does not match the model's [-1]"},
      {R"({"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["x"]}]})",
       "has 1 data elements but shape [2] needs 2"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["x","y"]}]})",
       "more data elements than the shape holds"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":[5]}]})",
       "expected a string"},
      {R"({"inputs":[{"name":"text","shape":[5],"datatype":"BYTES","data":["a","b","c","d","e"]}]})",
       "exceeds the model's maximum of 4"},
      {R"({"inputs":[{"name":"text","shape":[-1],"datatype":"BYTES","data":[]}]})",
       "non-negative integers"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES"}]})", "'data' is missing"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]},{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}]})",
       "given more than once"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}],"outputs":[{"name":"zzz"}]})",
       "unknown output 'zzz'"},
      {R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}],"parameters":{"timeout":"soon"}})",
       "'timeout' must be"},
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
      {R"({"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,1e39]},{"name":"b","shape":[1],"datatype":"INT8","data":[1]},{"name":"c","shape":[1],"datatype":"BOOL","data":[true]}]})",
       "out of range for FP32"},
      {R"({"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]},{"name":"b","shape":[1],"datatype":"INT8","data":[128]},{"name":"c","shape":[1],"datatype":"BOOL","data":[true]}]})",
       "out of range"},
      {R"({"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]},{"name":"b","shape":[1],"datatype":"INT8","data":[1.5]},{"name":"c","shape":[1],"datatype":"BOOL","data":[true]}]})",
       "expected an integer"},
      {R"({"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]},{"name":"b","shape":[1],"datatype":"INT8","data":[1]},{"name":"c","shape":[1],"datatype":"BOOL","data":[1]}]})",
       "expected true or false"},
      {R"({"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,"x"]},{"name":"b","shape":[1],"datatype":"INT8","data":[1]},{"name":"c","shape":[1],"datatype":"BOOL","data":[true]}]})",
       "expected a number"},
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
  // Byte for byte what clients (and bench/serve's nginx) see.
  EXPECT_EQ(EncodeAnalyzeResponse("Positive", 0.9614f, "vader"),
            R"({"sentiment":"Positive","confidence":0.9614,"model":"vader"})");
  EXPECT_EQ(EncodeAnalyzeResponse("Neutral", 1.0f, "my \"model\""),
            R"({"sentiment":"Neutral","confidence":1,"model":"my \"model\""})");
}

}  // namespace
}  // namespace galley::protocol

namespace galley::protocol {
namespace {

model::ModelMetadata TwoInputModel() {
  model::ModelMetadata md;
  md.name = "m";
  md.version = "1";
  md.max_batch_size = 8;
  md.inputs = {{"x", model::DataType::kFp32, {-1, 2}}, {"s", model::DataType::kBytes, {-1}}};
  md.outputs = {{"y", model::DataType::kFp32, {-1, 2}}, {"t", model::DataType::kBytes, {-1}}};
  return md;
}

std::string Floats(std::initializer_list<float> v) {
  return std::string(reinterpret_cast<const char*>(std::data(v)), v.size() * sizeof(float));
}

TEST(BinaryDataExtensionTest, InputsTakeTheirBytesInOrder) {
  const std::string json =
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"parameters":{"binary_data_size":8}},)"
      R"({"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":7}}],)"
      R"("outputs":[{"name":"y","parameters":{"binary_data":true}},{"name":"t"}]})";
  std::string bytes;
  AppendRawBytes({"abc"}, bytes);
  const std::string body = json + Floats({1.5f, -2.0f}) + bytes;
  auto r = DecodeInferRequest(body, TwoInputModel(), json.size());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FLOAT_EQ(r->input.inputs[0].At<float>(1), -2.0f);
  EXPECT_EQ(r->input.inputs[1].bytes, (std::vector<std::string>{"abc"}));
  EXPECT_EQ(r->binary_outputs, (std::vector<std::string>{"y"}));
}

TEST(BinaryDataExtensionTest, RejectsWithClearErrors) {
  const std::string x8 =
      R"({"name":"x","datatype":"FP32","shape":[1,2],"parameters":{"binary_data_size":8}})";
  const std::string s_json = R"({"name":"s","datatype":"BYTES","shape":[1],"data":["a"]})";
  struct Case {
    std::string json;
    std::string binary;
    bool header;
    const char* error;
  };
  const std::vector<Case> cases = {
      {R"({"inputs":[)" + x8 + "," + s_json + "]}", "", false,
       "needs the Inference-Header-Content-Length header"},
      {R"({"inputs":[)" + x8 + "," + s_json + "]}", Floats({1}), true, "only 4 bytes"},
      {R"({"inputs":[)" + x8 + "," + s_json + "]}", Floats({1, 2, 3}), true,
       "4 bytes of binary data follow the JSON but no input claims them"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2],)"
       R"("parameters":{"binary_data_size":8}},)" +
           s_json + "]}",
       Floats({1, 2}), true, "both 'data' and binary_data_size"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"parameters":{"binary_data_size":4}},)" +
           s_json + "]}",
       Floats({1}), true, "binary data holds 4 bytes but shape [1,2]"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]},)"
       R"({"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]})",
       std::string("\x09\x00\x00\x00"
                   "ab",
                   6),
       true, "claims 9 bytes"},
  };
  for (const Case& c : cases) {
    const std::string body = c.json + c.binary;
    auto r = DecodeInferRequest(body, TwoInputModel(),
                                c.header ? std::optional<size_t>(c.json.size()) : std::nullopt);
    ASSERT_FALSE(r.ok()) << c.error;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(r.status().message()).find(c.error), std::string::npos)
        << r.status().message() << " vs " << c.error;
  }
  auto too_long = DecodeInferRequest("{}", TwoInputModel(), 10);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(std::string(too_long.status().message()).find("only 2 bytes"), std::string::npos);
}

TEST(BinaryDataExtensionTest, OutputsAfterTheJson) {
  model::InferOutput out;
  model::Tensor y{"y", model::DataType::kFp32, {1, 2}, {}, {}};
  y.Append<float>(3.0f);
  y.Append<float>(4.0f);
  model::Tensor t{"t", model::DataType::kBytes, {1}, {}, {"hi"}};
  out.outputs = {y, t};
  EncodedInferResponse r = EncodeInferResponse(TwoInputModel(), "", out, {}, {"t"}, false);
  ASSERT_TRUE(r.header_length.has_value());
  const std::string json = r.body.substr(0, *r.header_length);
  auto doc = boost::json::parse(json).as_object();
  auto outs = doc["outputs"].as_array();
  EXPECT_EQ(outs[0].as_object()["data"].as_array().size(), 2u);  // y stays JSON
  EXPECT_EQ(outs[1].as_object()["parameters"].as_object()["binary_data_size"].to_number<int>(), 6);
  EXPECT_EQ(r.body.substr(*r.header_length), std::string("\x02\x00\x00\x00"
                                                         "hi",
                                                         6));
  EncodedInferResponse all = EncodeInferResponse(TwoInputModel(), "", out, {}, {}, true);
  EXPECT_EQ(all.body.substr(*all.header_length), Floats({3, 4}) + std::string("\x02\x00\x00\x00"
                                                                              "hi",
                                                                              6));
  EXPECT_FALSE(EncodeInferResponse(TwoInputModel(), "", out, {}, {}, false).header_length);
}

}  // namespace
}  // namespace galley::protocol
